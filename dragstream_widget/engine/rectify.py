"""Adaptive Distribution Self-Rectification (ADSR).

After every optimisation iteration the block's latent is re-standardised to the statistics of the
latents of the previous ``L_n`` frames at the same denoising step, so that it cannot drift away
from the distribution the model expects.

Two granularities: ``"global"`` (the paper: one mean and std over all of the neighbours' values) and
``"frame_channel"`` (the released code: per channel, the neighbours' per-frame-and-channel means and
stds averaged over frames, applied to each frame and channel of the block).
"""

from __future__ import annotations

from typing import Literal

import torch

StatsMode = Literal["global", "frame_channel"]
STAT_MODES = ("global", "frame_channel")


def neighbour_statistics(neighbours: torch.Tensor, mode: StatsMode) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of neighbour latents ``[B, C, L_n, h, w]``, shaped to broadcast over a block."""
    if mode == "global":
        return neighbours.mean(), neighbours.std()
    if mode == "frame_channel":
        mean = neighbours.mean(dim=(3, 4), keepdim=True).mean(dim=2, keepdim=True)
        std = neighbours.std(dim=(3, 4), keepdim=True).mean(dim=2, keepdim=True)
        return mean, std
    raise ValueError(f"unknown statistics mode {mode!r}; choose one of {STAT_MODES}")


def block_statistics(z: torch.Tensor, mode: StatsMode) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the block being rectified, at the same granularity."""
    if mode == "global":
        return z.mean(), z.std()
    return z.mean(dim=(3, 4), keepdim=True), z.std(dim=(3, 4), keepdim=True)


def self_rectify(z: torch.Tensor, neighbours: torch.Tensor, mode: StatsMode = "global", eps: float = 1e-6):
    # Eq. 4: ADSR, z <- (z - mu(z)) / sigma(z) * sigma(neighbours) + mu(neighbours)
    target_mean, target_std = neighbour_statistics(neighbours, mode)
    mean, std = block_statistics(z, mode)
    return (z - mean) / (std + eps) * target_std + target_mean
