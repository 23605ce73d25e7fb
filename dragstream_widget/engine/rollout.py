"""Generating one block: few-step denoising, an optional drag at step T', the commit pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..models.base import VideoBackend
from ..models.kv_cache import KVCache
from ..models.sampler import add_noise, next_noise
from .control import RunControl
from .drag import ResolvedDrag
from .optimize import OptimizationResult, optimize_block


def block_noise(seed: int, block_index: int, num_steps: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The noise of one block, ``[num_steps + 1, *shape]``: the initial latent, each step's re-noising,
    then the context noise of its commit pass.

    Drawn on the CPU from a generator keyed by (seed, block), so a block regenerated later (an edit,
    an undo) sees exactly the same noise on every device.
    """
    generator = torch.Generator().manual_seed((seed * 1_000_003 + block_index * 7_919) % (2**63))
    return torch.randn((num_steps + 1, *shape), generator=generator)


class BlockInterrupted(Exception):
    """A block generated without a drag was abandoned between its denoising steps (see
    :class:`RunControl`'s ``should_abandon``): nothing of it was committed."""


@dataclass
class BlockOutput:
    z0: torch.Tensor  # [1, C, F, h, w]
    step_latents: torch.Tensor  # [num_steps, C, F, h, w], z_t entering each step (after any drag)
    optimization: OptimizationResult | None


def rectify_x0(previous_clean: torch.Tensor | None, x0: torch.Tensor) -> torch.Tensor:
    """Released-code x0 rectification: global mean/std of [previous clean frames, x0] imposed on x0."""
    if previous_clean is None:
        return x0
    pool = torch.cat([previous_clean.to(x0), x0], dim=2)
    return (x0 - x0.mean()) / (x0.std() + 1e-6) * pool.std() + pool.mean()


def keep_x0(x0: torch.Tensor) -> torch.Tensor:
    return x0


def generate_block(
    backend: VideoBackend,
    cache: KVCache,
    prompt_embeds: torch.Tensor,
    noise: torch.Tensor,
    drag: ResolvedDrag | None = None,
    control: RunControl | None = None,
    known_steps: torch.Tensor | None = None,
    postprocess_x0: Callable[[torch.Tensor], torch.Tensor] = keep_x0,
) -> BlockOutput:
    """Denoise one block from ``noise`` (see :func:`block_noise`) and commit it to ``cache`` (by a pass of
    its own, or by the last denoising pass for a backend with ``commit_at_last_step``), optimising it at
    step T' where it has a ``drag``.

    ``known_steps`` ``[k, C, F, h, w]``: the latents this very block entered its first ``k + 1`` steps with
    (same noise, same context, no drag before step ``k``); denoising resumes at step ``k`` from the last.
    ``postprocess_x0``: applied to every x0 prediction (the released code's :func:`rectify_x0`).
    """
    control = control or RunControl()
    sampler = backend.sampler
    device = backend.device
    z = noise[0].unsqueeze(0).to(device)
    step_latents = []
    first = 0
    if known_steps is not None:
        step_latents = list(known_steps[:-1].to(device))
        first, z = len(step_latents), known_steps[-1:].to(device)
    optimization = None
    x0 = None
    for step in range(first, sampler.num_steps):
        if drag is None and control.should_abandon():
            raise BlockInterrupted(f"block {control.block} was abandoned at step {step}")
        if drag is not None and step == drag.config.optimize_step:
            optimization = optimize_block(backend, z, cache, prompt_embeds, drag, control)
            z = optimization.z
        step_latents.append(z[0])
        writes_cache = backend.commit_at_last_step and step == sampler.num_steps - 1
        with torch.no_grad():
            x0 = postprocess_x0(backend.denoise(z, step, cache, prompt_embeds, commit=writes_cache).x0)
        control.emit(
            "step",
            lambda s=step, zt=z: {"step_index": s, "timestep": sampler.timestep(s), "z_t": zt},
        )
        if step + 1 < sampler.num_steps:
            fresh = noise[step + 1].unsqueeze(0).to(device)
            implied = next_noise(z, x0, sampler.sigma(step), fresh, sampler.update)
            z = add_noise(x0, implied, sampler.sigma(step + 1))
    if not backend.commit_at_last_step:
        backend.commit(x0, cache, prompt_embeds, noise[-1:])
    return BlockOutput(x0.detach(), torch.stack(step_latents).detach(), optimization)


def neighbour_latents(step_latents: list[torch.Tensor], step: int, frames: int) -> torch.Tensor | None:
    """The last ``frames`` latent frames at sampler step ``step`` from committed blocks, ``[1, C, L, h, w]``."""
    if not step_latents:
        return None
    pool = torch.cat([latents[step] for latents in step_latents], dim=1)
    return pool[:, -frames:].unsqueeze(0)
