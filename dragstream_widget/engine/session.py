"""A streaming session: generate block after block, take drags at any time, undo and redo exactly.

State is a chain of immutable snapshots (committed blocks, cache state, decoder state, running
animation, prompt); every action remembers the state before it (``history.py``), so undo and redo
restore latents, cache and decoder bit for bit. An animation is one action with every block it drives.
Every action is also written to the session's log, from which ``session_file.py`` saves the session
and replays it exactly. Memory stays bounded on long streams: only the last blocks of each remembered
state keep their snapshots and latents; older blocks keep their frames (or drop them, ``keep_frames``).
Instructions may be submitted from any thread; they are applied at the next block boundary. The
actions themselves (apply, step, undo, redo, reset) run one at a time: a second caller waits.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial, wraps
from pathlib import Path

import numpy as np
import torch

from ..models.base import VideoBackend, token_grid
from ..models.kv_cache import CacheState
from ..models.sampler import add_noise
from ..ops import DragInstruction, InvalidInstruction, Mode, check_prompt, check_seed
from .config import DragConfig
from .control import RunControl
from .drag import ResolvedDrag, trajectory_segments, uses_rotation_term
from .events import EventBus
from .history import PLAIN, History, SessionState
from .presets import drag_config_of
from .reference import ReferenceFeatures, ReferenceSettings
from .rollout import BlockOutput, block_noise, generate_block, keep_x0, neighbour_latents, rectify_x0
from .targets import BlockPlan, animation_plan, edit_plan


@dataclass(frozen=True)
class BlockRecord:
    """One committed block and what is needed to revisit it."""

    index: int
    z0: torch.Tensor | None  # [1, C, F, h, w]; None once the block is older than ``latent_blocks``
    step_latents: torch.Tensor | None  # [steps, C, F, h, w]; likewise
    frames: np.ndarray  # uint8 [frames, H, W, 3]; no frames once old, where the session drops them
    cache_before: CacheState | None  # None once the block is older than the undo depth
    decoder_before: object
    instruction: DragInstruction | None = None
    losses: tuple[dict, ...] = ()
    given: bool = False  # opening frames supplied by the user, not generated
    num_frames: int = -1  # frames the block made (kept when its frames are dropped)

    def __post_init__(self) -> None:
        if self.num_frames < 0:
            object.__setattr__(self, "num_frames", len(self.frames))


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


# Blocks at the end of each remembered state that keep their latents: ADSR's neighbours (6 latent
# frames by default) and the x0 rectification's two blocks.
REMEMBERED_LATENT_BLOCKS = 4


def one_writer(method):
    """Run a session action under the session's lock: actions from several threads run one at a time."""

    @wraps(method)
    def locked(self, *args, **kwargs):
        with self._writer:
            return method(self, *args, **kwargs)

    return locked


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
        latent_blocks: int = 64,
        keep_frames: bool = True,
    ):
        """``undo_depth``: actions remembered for undo (and plain blocks, counted apart), and blocks at
        the end of each remembered state that keep their cache snapshot (plus one). ``latent_blocks``:
        blocks at the end that keep their latents; older ones keep only their frames, or nothing but
        their frame count when ``keep_frames`` is False (the log replays them, ``session_file.py``)."""
        self.backend = backend
        self.config = config or drag_config_of(backend)
        self.events = events or EventBus()
        self.prompt = check_prompt(prompt)
        self.seed = check_seed(seed)
        self.prompt_embeds = backend.encode_prompt(prompt)
        self.cache = backend.new_cache()
        self.decoder = backend.new_decoder()
        self._pending: queue.Queue[DragInstruction] = queue.Queue()
        self._history = History(undo_depth)
        if latent_blocks < max(undo_depth + 1, REMEMBERED_LATENT_BLOCKS):
            raise ValueError(
                f"latent_blocks must be > undo_depth ({undo_depth}) and >= {REMEMBERED_LATENT_BLOCKS}, "
                f"got {latent_blocks}"
            )
        self.latent_blocks, self.keep_frames = latent_blocks, keep_frames
        self._writer = threading.RLock()
        self._blocks: tuple[BlockRecord, ...] = ()
        self._animation: Animation | None = None
        self._prepared: PreparedReference | None = None
        self._stop_requested = False
        self._interrupt_requested = False
        self.opening = start_frames  # the opening frames of the stream now on screen
        self.log: list[dict] = []  # every action in order, with what replaying it needs (session_file.py)
        self._logged_config: DragConfig | None = None
        if start_frames is not None:
            self._commit_given_frames(start_frames)
        self._record("start", prompt=self.prompt, seed=self.seed, opening=start_frames)

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

    @property
    def undo_depth(self) -> int:
        return self._history.depth

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo

    def latents(self) -> torch.Tensor:
        """Every committed latent frame, ``[1, C, F, h, w]`` (the blocks must still hold theirs)."""
        if any(b.z0 is None for b in self._blocks):
            raise ValueError(
                f"the blocks before the last {self.latent_blocks} no longer hold latents; "
                "replay the saved session for them"
            )
        return torch.cat([b.z0 for b in self._blocks], dim=2)

    def _state(self) -> SessionState:
        return SessionState(
            self._blocks,
            self.cache.snapshot(),
            self.decoder.snapshot(),
            self._animation,
            self.prompt,
            self.seed,
            self.prompt_embeds,
        )

    def _push(self, action: str) -> None:
        """Remember the state before an action, then let old blocks drop what they no longer need."""
        self._history.push(action, self._state())

    def _cancel(self) -> None:
        """Put back the state before the last pushed action, which failed."""
        self._restore(self._history.cancel())

    def _forget_old(self) -> None:
        """Old blocks drop what they no longer need, so memory stays bounded on long streams: in the
        stream on screen, blocks before the last ``undo_depth + 1`` drop their cache and decoder
        snapshots, those before the last ``latent_blocks`` their latents (and their frames unless
        ``keep_frames``); in each remembered state only the last block keeps its snapshots and the
        last ``REMEMBERED_LATENT_BLOCKS`` their latents (what streaming and dragging on from it need)."""

        def forget(state: SessionState) -> SessionState:
            blocks = forget_old_blocks(state.blocks, 1, REMEMBERED_LATENT_BLOCKS, self.keep_frames)
            return state if blocks is state.blocks else replace(state, blocks=blocks)

        self._blocks = forget_old_blocks(
            self._blocks, self._history.depth + 1, self.latent_blocks, self.keep_frames
        )
        self._history.remap(forget)

    @one_writer
    def undo(self) -> str:
        """Undo the last action (a block, an edit, an animation with all its blocks, a reset or a prompt
        change); returns its name."""
        action, state = self._history.undo(self._state(), by_person=False)
        self._restore(state)
        self._record("undo")
        return action

    @one_writer
    def undo_action(self) -> str:
        """Undo the last drag, reset or prompt change, with the plain blocks streamed since (what a
        person did, as the widget's Undo has it); returns its name."""
        action, state = self._history.undo(self._state(), by_person=True)
        self._restore(state)
        self._record("undo_action")
        return action

    @one_writer
    def redo(self) -> str:
        """Redo what the last undo undid (exactly: the state it left comes back); returns its name."""
        action, state = self._history.redo()
        self._restore(state)
        self._record("redo")
        return action

    @one_writer
    def reset(self, prompt: str | None = None, seed: int | None = None, start_frames=None) -> None:
        """Start the stream again (with a new prompt and/or seed, from ``start_frames`` if given): an
        action like any other, so undo brings the old stream back."""
        prompt = self.prompt if prompt is None else check_prompt(prompt)
        seed = self.seed if seed is None else check_seed(seed)
        embeds = self.backend.encode_prompt(prompt)
        self._push("reset" if prompt == self.prompt else "prompt")
        self._prepared = None
        try:
            self.prompt, self.seed, self.prompt_embeds = prompt, seed, embeds
            self._blocks, self._animation = (), None
            self.cache.clear()
            self.decoder = self.backend.new_decoder()
            if start_frames is not None:
                self._commit_given_frames(start_frames)
        except BaseException:
            self._cancel()
            raise
        self.opening = start_frames
        self._record("reset", prompt=prompt, seed=seed, opening=start_frames)

    def save(self, path) -> Path:
        """Write the session to one JSON file from which :meth:`load` replays it (``session_file.py``)."""
        from .session_file import save_session

        with self._writer:
            return save_session(self, path)

    @classmethod
    def load(cls, path, backend: VideoBackend, events: EventBus | None = None) -> StreamSession:
        """Replay a session saved by :meth:`save` on ``backend`` (which must be the model it was made
        with); it then goes on as the original would. The file holds data only: nothing in it is run."""
        from .session_file import load_session

        return load_session(path, backend, events)

    def fork(self) -> Callable[[], None]:
        """Remember the whole session now; the returned function puts it back exactly (blocks, cache,
        decoder, running animation, prompt, undo history, config, log), whatever was done in between."""
        state, history, config = self._state(), self._history.copy(), self.config
        log, logged_config = len(self.log), self._logged_config

        def restore() -> None:
            self._restore(state)
            self._history = history.copy()
            self.config = config
            del self.log[log:]
            self._logged_config = logged_config

        return restore

    def rewind(self, num_blocks: int) -> None:
        """Undo actions until the session holds at most ``num_blocks`` blocks."""
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
        self.prompt, self.seed, self.prompt_embeds = state.prompt, state.seed, state.prompt_embeds

    def _record(self, action: str, **data) -> None:
        """Write an action to the log, with the drag settings when they changed since the last one."""
        entry = {"action": action, "blocks": len(self._blocks), **data}
        if self.config != self._logged_config:
            entry["config"] = asdict(self.config)
            self._logged_config = self.config
        self.log.append(entry)
        self._forget_old()

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

    def block_of_frame(self, frame_index: int) -> int:
        """The position in :attr:`blocks` of the block that holds frame ``frame_index`` of the stream."""
        first = 0
        for position, block in enumerate(self._blocks):
            if first <= frame_index < first + block.num_frames:
                return position
            first += block.num_frames
        raise InvalidInstruction(f"frame_index {frame_index} is past the {first} frames of the stream")

    def _drawn_on(self, instruction: DragInstruction) -> int | None:
        """Where an instruction with a ``frame_index`` applies: the position of its block, when that is
        not the block on screen (None: the block on screen). A drag drawn on an earlier frame is applied
        to that frame's block, and the blocks after it go (as one action, undone as one); one whose
        block is too old to drag again is refused."""
        if instruction.frame_index is None or not self._blocks:
            return None
        position = self.block_of_frame(instruction.frame_index)
        if position == len(self._blocks) - 1:
            return None
        block = self._blocks[position]
        following = self._blocks[position + 1]
        if block.cache_before is None or following.cache_before is None or block.step_latents is None:
            raise InvalidInstruction(
                f"frame_index {instruction.frame_index} lies in block {block.index}, too old to drag "
                f"(only the last {self._history.depth + 1} blocks can be); draw it on a newer frame"
            )
        return position

    @one_writer
    def apply(self, instruction: DragInstruction) -> BlockRecord | None:
        """Apply now: an edit re-denoises the block on screen; an animation drives the blocks to come.
        An instruction drawn on an earlier frame (its ``frame_index``) applies there (see ``_drawn_on``)."""
        self._check(instruction)
        return self._apply_checked(instruction)

    def _apply_checked(self, instruction: DragInstruction) -> BlockRecord | None:
        if instruction.mode == Mode.EDIT:
            return self._edit(instruction)
        self._animate(instruction)
        return None

    @one_writer
    def process_pending(self) -> list[BlockRecord | None]:
        done = []
        while True:
            try:
                instruction = self._pending.get_nowait()
            except queue.Empty:
                return done
            done.append(self._apply_checked(instruction))  # checked when it was submitted

    @one_writer
    def edit(self, instruction: DragInstruction) -> BlockRecord:
        """Re-denoise the last block with the drag applied (same noise, same context)."""
        self._check(instruction)
        return self._edit(instruction)

    def _edit(self, instruction: DragInstruction) -> BlockRecord:
        if not self._blocks:
            raise InvalidInstruction("there is no frame on screen to edit yet: generate a block first")
        position = self._drawn_on(instruction)
        last = self._blocks[-1 if position is None else position]
        if last.given:
            raise InvalidInstruction("the opening frames were given, not generated, and cannot be edited")
        self._push("edit")
        if position is not None:
            self._blocks, self._animation = self._blocks[: position + 1], None
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
            self._cancel()
            raise
        self._blocks = self._blocks[:-1] + (record,)
        self._record("apply", instruction=instruction.to_json())
        return record

    @one_writer
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
        self._record("prepare")  # a replay prepares too: the batched pass may round differently
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

    @one_writer
    def animate(self, instruction: DragInstruction) -> None:
        """Start an animation: each new frame follows the next point of the trajectory."""
        self._check(instruction)
        self._animate(instruction)

    def _animate(self, instruction: DragInstruction) -> None:
        if not self._blocks:
            raise InvalidInstruction("there is no frame on screen to drag yet: generate a block first")
        position = self._drawn_on(instruction)
        self._push("animate")
        try:
            if position is not None:  # back to the frame it was drawn on: the blocks after it go
                following = self._blocks[position + 1]
                self.cache.restore(following.cache_before)
                self.decoder.restore(following.decoder_before)
                self._blocks, self._prepared = self._blocks[: position + 1], None
            reference = self._drag_reference(self._blocks[-1], self.config)
            self._announce_drag(self._blocks[-1].index + 1, instruction, reference)
            reference.compute()  # the animation's blocks draw from every cutoff
            last = {c: f[:, -1:] for c, f in reference.items()}
            first = self._animation_plan(instruction, 0)
            # The reference x0 is taken now, while the context it needs is at hand, if the blocks use it.
            rotates = first is not None and uses_rotation_term(first, self.config)
            self._animation = Animation(instruction, last, 0, reference.x0()[:, -1:] if rotates else None)
        except BaseException:
            self._cancel()
            raise
        self._record("apply", instruction=instruction.to_json())

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
        latents = [b.step_latents for b in previous_blocks if b.step_latents is not None]
        neighbours = neighbour_latents(latents, cfg.optimize_step, cfg.adsr_frames)
        generator = torch.Generator().manual_seed(self.seed * 31 + len(previous_blocks))
        return ResolvedDrag(
            plan, cfg, segments, reference, neighbours, generator, starts_at_reference, reference_x0
        )

    # ----- generation --------------------------------------------------------------------------

    @one_writer
    def step(self) -> BlockRecord:
        """Apply queued instructions, then generate the next block (following a running animation). A
        block an animation drives belongs to the animation's action: undo takes the animation whole."""
        self.process_pending()
        self._prepared = None  # the block on screen changes
        self._push(PLAIN)
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
            self._cancel()
            raise
        if self._animation is not None:  # part of the animation's action, not one of its own
            self._history.fold()
        self._blocks = self._blocks + (record,)
        self._animation = animation
        self._record("step")
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


def forget_old_blocks(
    blocks: tuple[BlockRecord, ...], keep_snapshots: int, keep_latents: int, keep_frames: bool
) -> tuple[BlockRecord, ...]:
    """``blocks`` with the cache and decoder snapshots of all but the last ``keep_snapshots`` dropped,
    and the latents (and frames, unless ``keep_frames``) of all but the last ``keep_latents``; the
    same tuple when nothing changes. Walks back only to the first block already forgotten."""
    out = list(blocks)
    for i in range(len(blocks) - keep_snapshots - 1, -1, -1):
        if out[i].cache_before is None:
            break
        out[i] = replace(out[i], cache_before=None, decoder_before=None)
    for i in range(len(blocks) - keep_latents - 1, -1, -1):
        block = out[i]
        if block.z0 is None and (keep_frames or len(block.frames) == 0):
            break
        frames = block.frames if keep_frames else np.empty((0, *block.frames.shape[1:]), np.uint8)
        out[i] = replace(block, z0=None, step_latents=None, frames=frames)
    return blocks if all(a is b for a, b in zip(out, blocks)) else tuple(out)


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
