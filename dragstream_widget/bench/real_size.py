"""What a drag costs at real size, counted rather than timed: a Wan-1.3B-shaped causal transformer and
Wan 2.1's VAE at 832x480 on meta tensors (no weights, no memory, no GPU), torch's flop counter over
every pass a block runs, and the engine's own schedule for how many iterations each dragged block of
a reference label's drag runs.

A plain block is its denoising steps, its commit pass and its streaming decode. A dragged block adds
its iterations (a pass to the deepest recorded layer with gradients, and the backward pass to the
latent; a full pass where the rotation term needs the x0 prediction) and its share of the reference
features (one batched pass over the switch set's cutoffs, spread over an animation's blocks); an edit
re-runs only the steps from T' on. Every part is reported with its count and FLOPs, and a ``seconds``
slot that a timed run on a GPU fills in the same schema. The SFS low-pass of the context keys and
values (an FFT at this size) is not a matmul and is not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import AutoencoderKLWan
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from ..engine.config import DragConfig
from ..engine.drag import iteration_segments, trajectory_segments, uses_rotation_term
from ..engine.presets import drag_config_of
from ..engine.reference import feature_layers
from ..engine.targets import BlockPlan, animation_plan, edit_plan
from ..labels import LabelledDrag
from ..models.backend import TransformerBackend
from ..models.random_model import WAN_1_3B_480P, RandomModelSpec, random_transformer
from ..models.wan import SELF_FORCING, assemble_backend
from ..models.wan_vae import WanStreamDecoder
from ..ops import DragInstruction, Mode
from .gpu_pipeline import rescale_instruction

# The rolling KV window of the real-size pipeline (gpu_pipeline's): 21 latent frames, 3 of them sinks.
WINDOW_FRAMES, SINK_FRAMES = 21, 3


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of ``fn()`` as torch's flop counter counts them (matmuls, convolutions,
    attention; forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@dataclass
class MetaPipeline:
    """The streaming backend of ``spec`` and Wan 2.1's VAE with every tensor on the meta device, and an
    encoded prompt's shape. Prompts are encoded once per stream, not per block, so there is no text
    encoder."""

    backend: TransformerBackend
    vae: AutoencoderKLWan
    prompt: torch.Tensor

    @classmethod
    def of(cls, spec: RandomModelSpec = WAN_1_3B_480P) -> MetaPipeline:
        with torch.device("meta"):
            transformer = random_transformer(spec)
            vae = AutoencoderKLWan(base_dim=96).eval()  # Wan 2.1's VAE
        height, width = spec.latent_height * spec.vae_stride, spec.latent_width * spec.vae_stride
        backend = assemble_backend(
            transformer, vae, None, SELF_FORCING, height, width, WINDOW_FRAMES, SINK_FRAMES
        )
        prompt = torch.empty(1, spec.text_tokens, spec.text_dim, device="meta")
        return cls(backend, vae, prompt)


def meta_block(backend: TransformerBackend, batch: int = 1) -> torch.Tensor:
    return torch.empty(batch, *backend.layout.block_shape, device="meta")


@dataclass
class BlockPasses:
    """FLOPs of each kind of pass of one block, in the context of a given number of earlier blocks."""

    denoise_step: int  # one denoising pass, no features recorded
    commit: int  # the pass that writes the block's keys and values
    decode: int  # the streaming VAE decode of the block (not the stream's first)
    iteration: int  # one drag iteration: to the deepest recorded layer and back to the latent
    iteration_x0: int  # the same through every layer (the rotation term needs the x0 prediction)
    reference_per_cutoff: int  # the reference features' batched pass, per cutoff


def count_decode(pipeline: MetaPipeline) -> int:
    """FLOPs of the streaming decode of a block after the stream's first (which decodes one frame less)."""
    decoder = WanStreamDecoder(pipeline.vae)
    decoder.decode_pixels(meta_block(pipeline.backend))
    return flops(lambda: decoder.decode_pixels(meta_block(pipeline.backend)))


def count_passes(pipeline: MetaPipeline, earlier_blocks: int, layers, decode: int) -> BlockPasses:
    """Count every pass of a block that follows ``earlier_blocks`` committed blocks (the window trims
    the context as streaming does); ``decode`` is :func:`count_decode`'s, the same for every block."""
    backend, prompt = pipeline.backend, pipeline.prompt
    cache = backend.new_cache()
    with torch.no_grad():
        for _ in range(earlier_blocks):
            backend.commit(meta_block(backend), cache, prompt)
    step = 1  # the paper's T'; every step costs the same

    def plain() -> None:
        with torch.no_grad():
            backend.denoise(meta_block(backend), step, cache, prompt)

    def iteration(need_x0: bool) -> None:
        z = meta_block(backend).requires_grad_(True)
        result = backend.denoise(z, step, cache, prompt, record_layers=layers, features_only=not need_x0)
        loss = sum(f.sum() for f in result.features.values())
        if need_x0:
            loss = loss + result.x0.sum()
        loss.backward()

    def reference(batch: int) -> None:
        with torch.no_grad():
            backend.denoise(
                meta_block(backend, batch), step, cache, prompt, record_layers=layers, features_only=True
            )

    commit_cache = backend.new_cache()
    commit_cache.restore(cache.snapshot())
    return BlockPasses(
        denoise_step=flops(plain),
        commit=flops(lambda: backend.commit(meta_block(backend), commit_cache, prompt)),
        decode=decode,
        iteration=flops(lambda: iteration(False)),
        iteration_x0=flops(lambda: iteration(True)),
        reference_per_cutoff=flops(lambda: reference(4)) // 4,
    )


def part(count: float, each: int) -> dict:
    """One part of a block's work: how many times it runs, its FLOPs, and the seconds a timed run fills in."""
    return {"count": count, "flops": count * each, "seconds": None}


def plain_parts(passes: BlockPasses, steps: int, from_step: int = 0) -> dict[str, dict]:
    return {
        "denoise_steps": part(steps - from_step, passes.denoise_step),
        "commit": part(1, passes.commit),
        "decode": part(1, passes.decode),
    }


def total(parts: dict[str, dict]) -> int:
    return sum(p["flops"] for p in parts.values())


def block_iterations(backend, plan: BlockPlan, config: DragConfig) -> tuple[int, int]:
    """(segments, iterations) of one dragged block under ``config``, as the engine schedules them."""
    segments = trajectory_segments(backend, plan, config)
    return segments, len(iteration_segments(segments, config.iterations, config.animation_max_iterations))


def drag_blocks(
    backend, instruction: DragInstruction, config: DragConfig
) -> list[tuple[BlockPlan, DragConfig]]:
    """The plan and settings of every block the drag optimises: the edited block, or each animated one."""
    layout = backend.layout
    if instruction.mode == Mode.EDIT:
        plan = edit_plan(instruction, layout.frames_per_block, config.edit_frames, layout.latent_size, "cpu")
        return [(plan, config.for_edits(trajectory_segments(backend, plan, config)))]
    blocks = []
    for first in range(0, instruction.num_targets, layout.frames_per_block):
        plan = animation_plan(instruction, first, layout.frames_per_block, layout.latent_size, "cpu")
        blocks.append((plan, config))
    return blocks


class PassCounter:
    """:func:`count_passes` of a backend, each place in the stream and set of layers counted once."""

    def __init__(self, pipeline: MetaPipeline):
        self.pipeline, self.backend = pipeline, pipeline.backend
        self._counted: dict[tuple, BlockPasses] = {}
        self._decode: int | None = None

    def __call__(self, earlier_blocks: int, layers: tuple[int, ...]) -> BlockPasses:
        key = (earlier_blocks, tuple(layers))
        if self._decode is None:
            self._decode = count_decode(self.pipeline)
        if key not in self._counted:
            self._counted[key] = count_passes(self.pipeline, earlier_blocks, layers, self._decode)
        return self._counted[key]


def drag_cost(counter: PassCounter, labelled: LabelledDrag, config: DragConfig) -> dict:
    """Iterations and FLOPs of every block a reference label's drag optimises, against plain blocks in
    the same place of the stream."""
    backend = counter.backend
    layout, steps = backend.layout, backend.sampler.num_steps
    instruction = rescale_instruction(labelled.instruction, layout.pixel_size)
    plans = drag_blocks(backend, instruction, config)
    editing = instruction.mode == Mode.EDIT
    first_block = max(labelled.block - 1, 0) if editing else labelled.block
    cutoffs = len(config.cutoffs) if config.sfs else 1
    blocks = []
    for offset, (plan, cfg) in enumerate(plans):
        passes = counter(first_block + offset, feature_layers(cfg, backend))
        segments, iterations = block_iterations(backend, plan, cfg)
        plain = plain_parts(passes, steps)
        # An edit re-runs only the steps from T' on; its first iteration's pass is the unfiltered
        # reference, and its filtered ones are those its switch draws (counted: at most one per iteration).
        dragged = plain_parts(passes, steps, cfg.optimize_step if editing else 0)
        each = passes.iteration_x0 if uses_rotation_term(plan, cfg) else passes.iteration
        dragged["iterations"] = part(iterations, each)
        reference_cutoffs = (min(cutoffs, iterations) - 1 if editing else cutoffs) / len(plans)
        dragged["reference_features"] = part(reference_cutoffs, passes.reference_per_cutoff)
        blocks.append(
            {
                "segments": segments,
                "iterations": iterations,
                "plain_block": plain,
                "dragged_block": dragged,
                "flop_ratio": total(dragged) / total(plain),
            }
        )
    return {
        "mode": instruction.mode.value,
        "blocks": blocks,
        "iterations_per_block": [b["iterations"] for b in blocks],
        "flop_ratio": sum(total(b["dragged_block"]) for b in blocks)
        / sum(total(b["plain_block"]) for b in blocks),
    }


def settings_of(config: DragConfig) -> dict:
    return {
        "iterations": config.iterations,
        "animation_max_iterations": config.animation_max_iterations,
        "walk_from": config.walk_from,
        "segment_tokens": config.segment_tokens,
        "optimize_step": config.optimize_step,
    }


def real_size_costs(labels: dict[str, LabelledDrag], spec: RandomModelSpec = WAN_1_3B_480P) -> dict:
    """The drag cost of every reference label, under the paper's settings and those the engine picks for
    this backend, at the shape of ``spec`` (Wan-1.3B at 832x480)."""
    pipeline = MetaPipeline.of(spec)
    backend, counter = pipeline.backend, PassCounter(pipeline)
    configs = {"paper": DragConfig(), "shipped": drag_config_of(backend)}
    return {
        "model": "Wan-1.3B shape (30 layers, dim 1536), Wan 2.1 VAE, 832x480, meta tensors",
        "resolution": f"{backend.layout.pixel_width}x{backend.layout.pixel_height}",
        "window_frames": WINDOW_FRAMES,
        "settings": {name: settings_of(c) for name, c in configs.items()},
        "drags": {
            name: {setting: drag_cost(counter, labelled, c) for setting, c in configs.items()}
            for name, labelled in tqdm(labels.items(), desc="real-size drags counted", unit="drag")
        },
    }
