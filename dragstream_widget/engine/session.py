"""A streaming session: generate block after block, take drags at any time, undo exactly.

State is a chain of immutable snapshots (committed blocks, cache state, decoder state, running
animation); every action pushes one, so undo restores latents, cache and decoder bit for bit.
Instructions may be submitted from any thread; they are applied at the next block boundary.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch

from ..models.base import VideoBackend, token_grid
from ..models.kv_cache import CacheState
from ..models.sampler import add_noise
from ..ops import DragInstruction, InvalidInstruction, Mode
from .config import DragConfig
from .control import RunControl
from .drag import ResolvedDrag, trajectory_segments, uses_rotation_term
from .events import EventBus
from .presets import drag_config_of
from .reference import ReferenceFeatures, ReferenceSettings
from .rollout import BlockOutput, block_noise, generate_block, keep_x0, neighbour_latents, rectify_x0
from .targets import BlockPlan, animation_plan, edit_plan


@dataclass(frozen=True)
class BlockRecord:
    """One committed block and what is needed to revisit it."""

    index: int
    z0: torch.Tensor  # [1, C, F, h, w]
    step_latents: torch.Tensor  # [steps, C, F, h, w]
    frames: np.ndarray  # uint8 [frames, H, W, 3]
    cache_before: CacheState | None  # None once the block is older than the undo depth
    decoder_before: object
    instruction: DragInstruction | None = None
    losses: tuple[dict, ...] = ()
    given: bool = False  # opening frames supplied by the user, not generated


@dataclass(frozen=True)
class Animation:
    """A running animation: the instruction, the reference features, and the next trajectory step."""

    instruction: DragInstruction
    reference: dict[float, torch.Tensor]
    next_step: int
    reference_x0: torch.Tensor | None = None  # x0 prediction of the reference frame, for rotations


@dataclass(frozen=True)
class PreparedReference:
    """Reference features computed ahead of a drag (:meth:`StreamSession.prepare_drag`): valid while
    ``block`` is the block on screen and the settings they depend on are unchanged."""

    block: BlockRecord
    settings: ReferenceSettings
    reference: ReferenceFeatures


@dataclass(frozen=True)
class SessionState:
    blocks: tuple[BlockRecord, ...]
    cache: CacheState
    decoder: object
    animation: Animation | None
    action: str


class StreamSession:
    """Streams ``prompt`` from ``backend``; see the module docstring. ``config`` defaults to the backend's
    own drag settings (the paper's where it has none)."""

    def __init__(
        self,
        backend: VideoBackend,
        prompt: str,
        seed: int = 0,
        config: DragConfig | None = None,
        events: EventBus | None = None,
        start_frames: np.ndarray | None = None,
        undo_depth: int = 16,
    ):
        self.backend = backend
        self.config = config or drag_config_of(backend)
        self.events = events or EventBus()
        self.prompt = prompt
        self.seed = seed
        self.prompt_embeds = backend.encode_prompt(prompt)
        self.cache = backend.new_cache()
        self.decoder = backend.new_decoder()
        self._pending: queue.Queue[DragInstruction] = queue.Queue()
        if undo_depth < 1:
            raise ValueError(f"undo_depth must be >= 1, got {undo_depth}")
        self.undo_depth = undo_depth
        self._history: list[SessionState] = []
        self._blocks: tuple[BlockRecord, ...] = ()
        self._animation: Animation | None = None
        self._prepared: PreparedReference | None = None
        self._stop_requested = False
        self._interrupt_requested = False
        if start_frames is not None:
            self._commit_given_frames(start_frames)

    # ----- state -------------------------------------------------------------------------------

    @property
    def blocks(self) -> tuple[BlockRecord, ...]:
        return self._blocks

    @property
    def num_blocks(self) -> int:
        return len(self._blocks)

    @property
    def animating(self) -> bool:
        return self._animation is not None

    def frames(self) -> np.ndarray:
        """Every decoded frame so far, ``uint8 [N, H, W, 3]``."""
        if not self._blocks:
            h, w = self.backend.layout.pixel_size
            return np.zeros((0, h, w, 3), np.uint8)
        return np.concatenate([b.frames for b in self._blocks])

    def latents(self) -> torch.Tensor:
        """Every committed latent frame, ``[1, C, F, h, w]``."""
        return torch.cat([b.z0 for b in self._blocks], dim=2)

    def _state(self, action: str) -> SessionState:
        return SessionState(
            self._blocks, self.cache.snapshot(), self.decoder.snapshot(), self._animation, action
        )

    def _push(self, action: str) -> None:
        """Remember the state before an action. Only the last ``undo_depth`` actions are kept, and blocks
        older than that forget their cache snapshot, so memory stays bounded on long streams (each
        snapshot pins its blocks' keys and values)."""
        self._history.append(self._state(action))
        del self._history[: -self.undo_depth]
        horizon = len(self._blocks) - self.undo_depth
        if horizon > 0 and self._blocks[horizon - 1].cache_before is not None:
            self._blocks = forget_snapshots(self._blocks, horizon)
            self._history = [replace(h, blocks=forget_snapshots(h.blocks, horizon)) for h in self._history]

    def undo(self) -> str:
        """Undo the last action (a block, an edit or the start of an animation); returns its name."""
        if not self._history:
            raise IndexError("nothing to undo")
        state = self._history.pop()
        self._restore(state)
        return state.action

    def fork(self) -> Callable[[], None]:
        """Remember the whole session now; the returned function puts it back exactly (blocks, cache,
        decoder, running animation, undo history, config), whatever was done in between."""
        state, history, config = self._state("fork"), list(self._history), self.config

        def restore() -> None:
            self._restore(state)
            self._history = list(history)
            self.config = config

        return restore

    def rewind(self, num_blocks: int) -> None:
        """Undo actions until the session holds ``num_blocks`` blocks."""
        if not 0 <= num_blocks <= len(self._blocks):
            raise IndexError(f"cannot rewind to {num_blocks} blocks: the session has {len(self._blocks)}")
        while len(self._blocks) > num_blocks:
            self.undo()

    def _restore(self, state: SessionState) -> None:
        self._prepared = None
        self._blocks = state.blocks
        self.cache.restore(state.cache)
        self.decoder.restore(state.decoder)
        self._animation = state.animation

    # ----- instructions ------------------------------------------------------------------------

    def submit(self, instruction: DragInstruction) -> None:
        """Queue an instruction from any thread; it is validated now and applied at the next block boundary."""
        self._check(instruction)
        self._pending.put(instruction)

    def request_stop(self) -> None:
        """Ask a running optimisation to stop early (from another thread)."""
        self._stop_requested = True

    def request_interrupt(self) -> None:
        """Ask the block under way, if it has no drag, to be abandoned before its next denoising step
        (from another thread): ``step`` then raises ``BlockInterrupted`` and the session is as it was
        before that step, so an edit of the block on screen can run at once."""
        self._interrupt_requested = True

    def _check(self, instruction: DragInstruction) -> None:
        instruction.validate()
        expected = self.backend.layout.pixel_size
        if tuple(instruction.frame_size) != tuple(expected):
            raise InvalidInstruction(
                f"the instruction was drawn on a {instruction.frame_size[1]}x{instruction.frame_size[0]} frame, "
                f"but the model makes {expected[1]}x{expected[0]} frames"
            )

    def apply(self, instruction: DragInstruction) -> BlockRecord | None:
        """Apply now: an edit re-denoises the block on screen; an animation drives the blocks to come."""
        self._check(instruction)
        return self._apply_checked(instruction)

    def _apply_checked(self, instruction: DragInstruction) -> BlockRecord | None:
        if instruction.mode == Mode.EDIT:
            return self._edit(instruction)
        self._animate(instruction)
        return None

    def process_pending(self) -> list[BlockRecord | None]:
        done = []
        while True:
            try:
                instruction = self._pending.get_nowait()
            except queue.Empty:
                return done
            done.append(self._apply_checked(instruction))  # checked when it was submitted

    def edit(self, instruction: DragInstruction) -> BlockRecord:
        """Re-denoise the last block with the drag applied (same noise, same context)."""
        self._check(instruction)
        return self._edit(instruction)

    def _edit(self, instruction: DragInstruction) -> BlockRecord:
        if not self._blocks:
            raise InvalidInstruction("there is no frame on screen to edit yet: generate a block first")
        last = self._blocks[-1]
        if last.given:
            raise InvalidInstruction("the opening frames were given, not generated, and cannot be edited")
        self._push("edit")
        layout = self.backend.layout
        plan = edit_plan(
            instruction,
            layout.frames_per_block,
            self.config.edit_frames,
            layout.latent_size,
            self.backend.device,
        )
        self.cache.restore(last.cache_before)
        self.decoder.restore(last.decoder_before)
        segments = trajectory_segments(self.backend, plan, self.config)
        config = self.config.for_edits(segments)
        reference = self._drag_reference(last, config)
        self._announce_drag(last.index, instruction, reference)
        # An undragged block entered steps 0..T' with exactly the latents the edit would recompute: the
        # optimisation then starts from the reference latent itself.
        known = None if last.instruction is not None else last.step_latents[: config.optimize_step + 1]
        drag = self._resolve(plan, segments, config, reference, self._blocks[:-1], known is not None)
        try:
            record = self._generate(last.index, drag, instruction, self._blocks[:-1], known)
        except BaseException:
            self._restore(self._history.pop())
            raise
        self._blocks = self._blocks[:-1] + (record,)
        return record

    def prepare_drag(self) -> bool:
        """Compute the reference features the next drag of the block on screen will read, for every
        cutoff in one batched pass, so that the drag starts optimising at once (what the widget asks for
        while a person draws one). An edit uses them if that block is still on screen and the settings
        they depend on (the edit settings) are unchanged, an animation likewise (the shared settings);
        any other action drops them. Returns False, having done nothing, when no block is on screen."""
        if not self._blocks or self._blocks[-1].cache_before is None:
            return False
        block = self._blocks[-1]
        settings = ReferenceSettings.of(self.config.for_edits(), self.backend)
        if not self._prepared_for(block, settings):
            self._prepared = PreparedReference(block, settings, self.reference_with(block, settings))
        self._prepared.reference.compute()
        return True

    def _prepared_for(self, block: BlockRecord, settings: ReferenceSettings) -> bool:
        prepared = self._prepared
        return prepared is not None and prepared.block is block and prepared.settings == settings

    def _drag_reference(self, block: BlockRecord, cfg: DragConfig) -> ReferenceFeatures:
        """The reference features of a drag of ``block`` with ``cfg``: the prepared ones where they
        still hold, otherwise computed on demand. A drag uses up the prepared ones."""
        settings = ReferenceSettings.of(cfg, self.backend)
        fresh = not self._prepared_for(block, settings)
        reference = self.reference_with(block, settings) if fresh else self._prepared.reference
        self._prepared = None
        return reference

    def animate(self, instruction: DragInstruction) -> None:
        """Start an animation: each new frame follows the next point of the trajectory."""
        self._check(instruction)
        self._animate(instruction)

    def _animate(self, instruction: DragInstruction) -> None:
        if not self._blocks:
            raise InvalidInstruction("there is no frame on screen to drag yet: generate a block first")
        self._push("animate")
        reference = self._drag_reference(self._blocks[-1], self.config)
        self._announce_drag(self._blocks[-1].index + 1, instruction, reference)
        reference.compute()  # the animation's blocks draw from every cutoff
        last = {c: f[:, -1:] for c, f in reference.items()}
        first = self._animation_plan(instruction, 0)
        # The reference x0 is taken now, while the context it needs is at hand, if the blocks will use it.
        rotates = first is not None and uses_rotation_term(first, self.config)
        self._animation = Animation(instruction, last, 0, reference.x0()[:, -1:] if rotates else None)

    def _animation_plan(self, instruction: DragInstruction, first_step: int) -> BlockPlan | None:
        layout = self.backend.layout
        return animation_plan(
            instruction, first_step, layout.frames_per_block, layout.latent_size, self.backend.device
        )

    def _announce_drag(self, block: int, instruction: DragInstruction, reference: ReferenceFeatures) -> None:
        """The "drag" event: what the live probes need, read from the context the drag will see."""
        self.events.emit(
            "drag",
            lambda: {
                "block": block,
                "instruction": instruction,
                "reference": reference,
                "context": self.cache.context(min(reference.layers)),
                "token_grid": token_grid(self.backend),
            },
        )

    def reference_of(
        self,
        block: BlockRecord,
        cfg: DragConfig,
        cutoffs: Sequence[float] | None = None,
        scope: str | None = None,
    ) -> ReferenceFeatures:
        """Reference features of a committed block at step T' of ``cfg`` against the context it saw,
        computed per cutoff when first read; ``cutoffs`` and ``scope`` default to those of ``cfg``."""
        settings = ReferenceSettings.of(cfg, self.backend)
        chosen = replace(
            settings,
            cutoffs=settings.cutoffs if cutoffs is None else tuple(float(c) for c in cutoffs),
            scope=settings.scope if scope is None else scope,
        )
        return self.reference_with(block, chosen)

    def reference_with(self, block: BlockRecord, settings: ReferenceSettings) -> ReferenceFeatures:
        """Reference features of a committed block with ``settings``, against the context it saw."""
        if block.cache_before is None:
            raise ValueError(f"block {block.index} has no cache snapshot left (it is beyond the undo depth)")
        context = self.backend.new_cache()
        context.restore(block.cache_before)
        return ReferenceFeatures(
            self.backend,
            block.step_latents[settings.step].unsqueeze(0),
            settings.step,
            context,
            self.prompt_embeds,
            settings.layers,
            settings.cutoffs,
            settings.scope,
        )

    def _resolve(
        self,
        plan: BlockPlan,
        segments: int,
        cfg: DragConfig,
        reference,
        previous_blocks,
        starts_at_reference: bool = False,
        reference_x0: torch.Tensor | None = None,
    ) -> ResolvedDrag:
        """The drag of the next block resolved whole: with the ADSR neighbours and the cutoff switch's
        generator of its place in the stream."""
        if cfg.optimize_step >= self.backend.sampler.num_steps:
            raise ValueError(
                f"optimize_step {cfg.optimize_step} is past the sampler's {self.backend.sampler.num_steps} steps"
            )
        latents = [b.step_latents for b in previous_blocks]
        neighbours = neighbour_latents(latents, cfg.optimize_step, cfg.adsr_frames)
        generator = torch.Generator().manual_seed(self.seed * 31 + len(previous_blocks))
        return ResolvedDrag(
            plan, cfg, segments, reference, neighbours, generator, starts_at_reference, reference_x0
        )

    # ----- generation --------------------------------------------------------------------------

    def step(self) -> BlockRecord:
        """Apply queued instructions, then generate the next block (following a running animation)."""
        self.process_pending()
        self._prepared = None  # the block on screen changes
        self._push("block")
        try:
            drag, animation = None, self._animation
            if animation is not None:
                plan = self._animation_plan(animation.instruction, animation.next_step)
                if plan is None:
                    animation = None
                else:
                    segments = trajectory_segments(self.backend, plan, self.config)
                    drag = self._resolve(
                        plan,
                        segments,
                        self.config,
                        animation.reference,
                        self._blocks,
                        reference_x0=animation.reference_x0,
                    )
                    step = animation.next_step + self.backend.layout.frames_per_block
                    animation = replace(animation, next_step=step)
            index = self._blocks[-1].index + 1 if self._blocks else 0
            record = self._generate(index, drag, animation.instruction if drag else None, self._blocks)
        except BaseException:
            self._restore(self._history.pop())
            raise
        self._blocks = self._blocks + (record,)
        self._animation = animation
        return record

    def _generate(self, index, drag, instruction, previous_blocks, known_steps=None) -> BlockRecord:
        cache_before = self.cache.snapshot()
        decoder_before = self.decoder.snapshot()
        layout = self.backend.layout
        noise = block_noise(self.seed, index, self.backend.sampler.num_steps, layout.block_shape)
        self._stop_requested = self._interrupt_requested = False
        control = RunControl(
            self.events,
            index,
            should_stop=lambda: self._stop_requested,
            should_abandon=lambda: self._interrupt_requested,
        )
        postprocess_x0 = keep_x0
        if self.config.x0_rectify:
            postprocess_x0 = partial(rectify_x0, self._previous_clean(previous_blocks))
        output: BlockOutput = generate_block(
            self.backend, self.cache, self.prompt_embeds, noise, drag, control, known_steps, postprocess_x0
        )
        frames = self.decoder.decode(output.z0)
        losses = tuple(output.optimization.losses) if output.optimization else ()
        record = BlockRecord(
            index, output.z0, output.step_latents, frames, cache_before, decoder_before, instruction, losses
        )
        self.events.emit(
            "block",
            lambda: {"index": index, "frames": frames, "z0": output.z0, "edited": instruction is not None},
        )
        self.events.emit("latent_stats", lambda: latent_statistics(index, output.z0))
        return record

    def _previous_clean(self, previous_blocks) -> torch.Tensor | None:
        """Clean latents of the previous two blocks, block 0 excluded (the released x0 rectification)."""
        pool = [b.z0 for b in previous_blocks[-2:] if b.index > 0]
        return torch.cat(pool, dim=2) if pool else None

    def _commit_given_frames(self, frames: np.ndarray) -> None:
        """Start from given frames (image-to-video): encode, commit to the cache, keep as block 0.."""
        latents = self.backend.encode_frames(frames)
        per_block = self.backend.layout.frames_per_block
        if latents.shape[2] % per_block:
            raise ValueError(f"{latents.shape[2]} latent frames do not fill whole blocks of {per_block}")
        sampler = self.backend.sampler
        for start in range(0, latents.shape[2], per_block):
            z0 = latents[:, :, start : start + per_block].to(self.backend.device)
            index = len(self._blocks)
            noise = block_noise(self.seed, index, sampler.num_steps, self.backend.layout.block_shape).to(z0)
            step_latents = torch.stack(
                [add_noise(z0[0], noise[i], sampler.sigma(i)) for i in range(sampler.num_steps)]
            )
            cache_before, decoder_before = self.cache.snapshot(), self.decoder.snapshot()
            self.backend.commit(z0, self.cache, self.prompt_embeds, noise[-1:])
            decoded = self.decoder.decode(z0)
            self._blocks += (
                BlockRecord(index, z0, step_latents, decoded, cache_before, decoder_before, given=True),
            )


def forget_snapshots(blocks: tuple[BlockRecord, ...], horizon: int) -> tuple[BlockRecord, ...]:
    """The blocks with the cache and decoder snapshots of those before ``horizon`` dropped."""
    return tuple(
        replace(b, cache_before=None, decoder_before=None)
        if i < horizon and b.cache_before is not None
        else b
        for i, b in enumerate(blocks)
    )


def latent_statistics(index: int, z0: torch.Tensor) -> dict:
    """Mean, std, min and max of each latent frame of a block."""
    flat = z0[0].transpose(0, 1).flatten(1).float()
    return {
        "block": index,
        "stage": "committed",
        "mean": flat.mean(1).tolist(),
        "std": flat.std(1).tolist(),
        "min": flat.amin(1).tolist(),
        "max": flat.amax(1).tolist(),
    }
