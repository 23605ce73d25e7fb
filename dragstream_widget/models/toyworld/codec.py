"""The toy world's latent codec: a small convolutional autoencoder, Wan's VAE in miniature.

``64x64x3`` frames become ``16x16x8`` latents (spatial stride 4, one latent frame per frame).
Latents are normalised per channel by statistics measured after training (``latent_mean`` and
``latent_std``, as Wan's VAE config carries), so the diffusion model sees roughly unit-variance data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class CodecConfig:
    latent_channels: int = 8
    widths: tuple[int, ...] = (48, 96, 128)  # one stage per width; stride 2 between stages
    frame_size: int = 64

    @property
    def stride(self) -> int:
        return 2 ** (len(self.widths) - 1)

    @property
    def latent_size(self) -> int:
        return self.frame_size // self.stride

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class Encoder(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        w = config.widths
        layers: list[nn.Module] = [nn.Conv2d(3, w[0], 3, padding=1), ResidualBlock(w[0])]
        for previous, width in zip(w[:-1], w[1:]):
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), ResidualBlock(width)]
        layers += [nn.GroupNorm(8, w[-1]), nn.SiLU(), nn.Conv2d(w[-1], config.latent_channels, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, config: CodecConfig):
        super().__init__()
        w = config.widths[::-1]
        layers: list[nn.Module] = [nn.Conv2d(config.latent_channels, w[0], 3, padding=1), ResidualBlock(w[0])]
        for previous, width in zip(w[:-1], w[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(previous, width, 3, padding=1)]
            layers += [ResidualBlock(width)]
        layers += [nn.GroupNorm(8, w[-1]), nn.SiLU(), nn.Conv2d(w[-1], 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ToyCodec(nn.Module):
    """Frame autoencoder with normalised latents. Pixels in [-1, 1] inside, ``uint8`` at the edges."""

    def __init__(self, config: CodecConfig = CodecConfig()):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.register_buffer("latent_mean", torch.zeros(config.latent_channels))
        self.register_buffer("latent_std", torch.ones(config.latent_channels))

    def encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in [-1, 1] to raw (unnormalised) latents ``[N, C, h, w]``."""
        return self.encoder(x)

    def decode_pixels(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents ``[N, C, h, w]`` to pixels in about [-1, 1]."""
        return self.decoder(z)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """``uint8 [N, H, W, 3]`` to normalised latents ``[1, C, N, h, w]``."""
        device = self.latent_mean.device
        x = torch.as_tensor(frames, device=device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        z = self.normalize(self.encode_pixels(x.contiguous(memory_format=torch.channels_last)))
        return z.permute(1, 0, 2, 3).unsqueeze(0)

    @torch.no_grad()
    def decode(self, z0: torch.Tensor) -> np.ndarray:
        """Normalised latents ``[1, C, F, h, w]`` to ``uint8 [F, H, W, 3]``."""
        z = z0[0].permute(1, 0, 2, 3).to(self.latent_mean)
        # Channels-last input lets the CPU's convolutions run about 1.5x faster (same values).
        x = self.decode_pixels(self.denormalize(z).contiguous(memory_format=torch.channels_last))
        return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()

    def snapshot(self) -> object:
        return None  # frame by frame: no streaming state

    def restore(self, state: object) -> None:
        return None
