"""Randomly initialised causal Wan backends: tiny ones for tests, Wan-1.3B-shaped ones for GPU checks."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .backend import TransformerBackend
from .base import LatentLayout
from .causal_wan import CausalWanTransformer3DModel, wan_config
from .preview import HashedTextEncoder, LatentPreviewDecoder
from .sampler import FlowSampler


@dataclass(frozen=True)
class RandomModelSpec:
    """Transformer size and stream geometry of a random backend."""

    num_layers: int = 4
    num_heads: int = 2
    head_dim: int = 16
    ffn_dim: int = 64
    text_dim: int = 16
    text_tokens: int = 16
    channels: int = 4
    latent_height: int = 8
    latent_width: int = 8
    frames_per_block: int = 2
    vae_stride: int = 4
    steps: tuple[int, ...] = (1000, 750, 500, 250)
    shift: float = 5.0
    rope_frames: int = 1024  # frame positions in the RoPE table


TINY = RandomModelSpec()

# Wan2.1-T2V-1.3B (Self-Forcing's backbone) at 832x480: 60x104 latents, 3 latent frames per block.
WAN_1_3B_480P = RandomModelSpec(
    num_layers=30,
    num_heads=12,
    head_dim=128,
    ffn_dim=8960,
    text_dim=4096,
    text_tokens=512,
    channels=16,
    latent_height=60,
    latent_width=104,
    frames_per_block=3,
    vae_stride=8,
)


def random_transformer(spec: RandomModelSpec, seed: int = 0) -> CausalWanTransformer3DModel:
    torch.manual_seed(seed)
    freq_dim = 256 if spec.head_dim >= 64 else 32
    config = wan_config(
        spec.num_layers,
        spec.num_heads,
        spec.head_dim,
        spec.ffn_dim,
        spec.channels,
        spec.text_dim,
        freq_dim,
        spec.rope_frames,
    )
    return CausalWanTransformer3DModel(**config)


def cast_keeping_fp32(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast to ``dtype`` except what diffusers keeps in float32 (RoPE tables, norms, modulation, time embedding)."""
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not keep & set(name.split(".")):
            tensor.data = tensor.data.to(dtype)
    return model


def random_backend(
    spec: RandomModelSpec = TINY,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    cache_max_frames: int | None = None,
    cache_sink_frames: int = 0,
    commit_sigma: float = 0.0,
    commit_at_last_step: bool = False,
) -> TransformerBackend:
    """A backend with random weights: real code paths, meaningless pictures."""
    transformer = cast_keeping_fp32(random_transformer(spec, seed).to(device), dtype)
    pixel_size = (spec.latent_height * spec.vae_stride, spec.latent_width * spec.vae_stride)
    layout = LatentLayout(
        spec.channels, spec.latent_height, spec.latent_width, spec.frames_per_block, *pixel_size
    )
    return TransformerBackend(
        transformer,
        layout,
        FlowSampler(spec.steps, spec.shift),
        HashedTextEncoder(spec.text_dim, spec.text_tokens),
        lambda: LatentPreviewDecoder(spec.channels, pixel_size, seed),
        cache_max_frames=cache_max_frames,
        cache_sink_frames=cache_sink_frames,
        commit_sigma=commit_sigma,
        commit_at_last_step=commit_at_last_step,
        name="random",
    )
