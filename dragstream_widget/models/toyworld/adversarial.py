"""Adversarial fine-tuning of the toy world model: a discriminator on single latent frames.

Flow matching teaches the transformer the mean of what the noise still hides, and with four sampler
steps that mean is what streams: shapes come out rounded. A discriminator that tells real latent frames
from the transformer's x0 predictions gives the predictions a reason to commit to one sharp sample
instead (the adversarial half of adversarial diffusion distillation); the flow-matching loss stays
beside it, so the predictions keep following the context.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class LatentFrameDiscriminator(nn.Module):
    """Real or generated, per latent frame ``[N, C, h, w]``: a small convolutional net with spectral norm,
    returning one logit per frame."""

    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(channels, width, 3, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(4 * width, 1, 3, padding=1)),
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames).mean(dim=(1, 2, 3))


def latent_frames(latents: torch.Tensor, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``count`` latent frames ``[count, C, h, w]`` drawn at random from a batch of clips ``[B, C, F, h, w]``."""
    frames = latents.transpose(1, 2).flatten(0, 1)
    index = torch.randperm(frames.shape[0], generator=generator)[:count].to(frames.device)
    return frames[index]


def discriminator_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator: real frames above +1, generated ones below -1."""
    return F.relu(1.0 - discriminator(real)).mean() + F.relu(1.0 + discriminator(fake.detach())).mean()


def generator_loss(discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """Adversarial loss of the generator: raise the discriminator's score of its frames."""
    return -discriminator(fake).mean()
