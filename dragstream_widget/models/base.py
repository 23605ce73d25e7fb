"""The backend protocol: what the DragStream engine needs from an autoregressive video model.

Latents are ``[batch, channels, frames, height, width]`` (diffusers' layout); a block is
``layout.frames_per_block`` latent frames. DragStream code talks only to this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .kv_cache import KVCache
from .sampler import FlowSampler


@dataclass(frozen=True)
class LatentLayout:
    """Shapes of one streamed block and how latents map to pixels."""

    channels: int
    height: int
    width: int
    frames_per_block: int
    pixel_height: int
    pixel_width: int
    pixel_frames_per_latent: int = 1

    @property
    def block_shape(self) -> tuple[int, int, int, int]:
        return (self.channels, self.frames_per_block, self.height, self.width)

    @property
    def latent_size(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def pixel_size(self) -> tuple[int, int]:
        return (self.pixel_height, self.pixel_width)


@dataclass
class DenoiseResult:
    """The x0 prediction of a denoising call and, when asked for, recorded features.

    ``features`` maps a layer index to its self-attention output at latent resolution,
    ``[batch, inner_dim, frames, height, width]``, still attached to the graph of ``z_t``.
    """

    x0: torch.Tensor | None  # None when only features were asked for
    features: dict[int, torch.Tensor]


@runtime_checkable
class StreamDecoder(Protocol):
    """Turns committed latent blocks into RGB frames as they arrive."""

    def decode(self, z0: torch.Tensor) -> np.ndarray:
        """Decode one block ``[1, C, F, h, w]`` to ``uint8 [frames, H, W, 3]``."""

    def snapshot(self) -> object:
        """An exact copy of the decoder's streaming state (for undo)."""

    def restore(self, state: object) -> None: ...


@runtime_checkable
class VideoBackend(Protocol):
    """An autoregressive, block-causal video diffusion model."""

    layout: LatentLayout
    sampler: FlowSampler
    feature_layers: tuple[int, ...]
    num_layers: int
    commit_at_last_step: bool  # the last denoising pass writes the cache; no separate commit pass
    name: str  # identifies the model; the engine finds drag settings tuned for it by this name

    @property
    def device(self) -> torch.device: ...

    @property
    def dtype(self) -> torch.dtype: ...

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """Text conditioning for ``prompt``, ``[1, tokens, dim]``."""

    def new_cache(self) -> KVCache: ...

    def denoise(
        self,
        z_t: torch.Tensor,
        step_index: int,
        cache: KVCache,
        prompt_embeds: torch.Tensor,
        *,
        record_layers: tuple[int, ...] = (),
        kv_filter=None,
        features_only: bool = False,
        commit: bool = False,
    ) -> DenoiseResult:
        """x0 prediction of the block ``z_t`` at sampler step ``step_index``, reading ``cache``.

        ``features_only=True`` asks for the recorded features alone (x0 is None): the model may stop after
        the deepest recorded layer. ``commit=True`` (the last step of a backend with
        ``commit_at_last_step``) also writes the pass's keys/values to ``cache``.
        """

    def commit(
        self, z0: torch.Tensor, cache: KVCache, prompt_embeds: torch.Tensor, noise: torch.Tensor | None = None
    ) -> None:
        """The pass that writes the block's keys/values to ``cache``: clean (t=0), or ``z0`` noised with
        ``noise`` to the backend's context-noise level where it has one (the last step's, for a backend
        with ``commit_at_last_step``; streaming then needs it only for given frames)."""

    def new_decoder(self) -> StreamDecoder: ...

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """Encode ``uint8 [frames, H, W, 3]`` to latents ``[1, C, F, h, w]`` (to start from given frames)."""


def backend_patch(backend: VideoBackend) -> tuple[int, int]:
    """Spatial patch size (height, width) of the backend's transformer; (1, 1) without one."""
    transformer = getattr(backend, "transformer", None)
    return tuple(transformer.config.patch_size[1:]) if transformer is not None else (1, 1)


def token_grid(backend: VideoBackend) -> tuple[int, int]:
    """Tokens per latent frame, (rows, columns)."""
    patch_h, patch_w = backend_patch(backend)
    return backend.layout.height // patch_h, backend.layout.width // patch_w
