"""Weight-free companions for models without a trained text encoder or codec.

``HashedTextEncoder`` embeds each word by a fixed seeded random vector (a deterministic bag of
words); ``LatentPreviewDecoder`` is a linear latent-to-RGB projection with bilinear upsampling, the
classic latent preview. They let any transformer, including tiny random ones, stream real frames.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F


class HashedTextEncoder:
    """``prompt -> [1, max_tokens, dim]``: one seeded Gaussian vector per word, zero padding."""

    def __init__(self, dim: int, max_tokens: int = 16):
        self.dim = dim
        self.max_tokens = max_tokens

    def word_vector(self, word: str) -> torch.Tensor:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(self.dim, generator=generator)

    def __call__(self, prompt: str) -> torch.Tensor:
        words = prompt.lower().split()[: self.max_tokens]
        out = torch.zeros(1, self.max_tokens, self.dim)
        for i, word in enumerate(words):
            out[0, i] = self.word_vector(word)
        return out


class LatentPreviewDecoder:
    """Stateless per-frame decoder: ``rgb = 0.5 + 0.5 * tanh(P z)``, upsampled to the pixel size."""

    def __init__(self, channels: int, pixel_size: tuple[int, int], seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.projection = torch.randn(3, channels, generator=generator) / channels**0.5
        self.pixel_size = pixel_size

    @torch.no_grad()
    def decode(self, z0: torch.Tensor) -> np.ndarray:
        frames = z0[0].permute(1, 0, 2, 3).float().cpu()  # [F, C, h, w]
        rgb = torch.einsum("oc,fchw->fohw", self.projection, frames)
        rgb = F.interpolate(rgb, size=self.pixel_size, mode="bilinear", align_corners=False)
        rgb = (0.5 + 0.5 * torch.tanh(rgb)).clamp(0, 1)
        return (rgb.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)

    def snapshot(self) -> object:
        return None

    def restore(self, state: object) -> None:
        return None
