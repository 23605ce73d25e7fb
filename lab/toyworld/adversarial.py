"""Adversarial fine-tuning of the toy world model: a discriminator on single latent frames.

Flow matching teaches the transformer the mean of what the noise still hides, and with four sampler
steps that mean is what streams: shapes come out rounded. A discriminator that tells real latent frames
from generated ones gives the generator a reason to commit to one sharp sample instead (the adversarial
half of adversarial diffusion distillation); the flow-matching loss stays beside it, so the predictions
keep following the context. Generated frames are either the transformer's teacher-forced x0 predictions
or blocks of its own rollouts (``train.own_rollout``); for rollouts the discriminator also sees the
clip's opening frame, so a square that turns into a disc, or an object that shrinks, reads as fake.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class LatentFrameDiscriminator(nn.Module):
    """Real or generated, per latent frame ``[N, C, h, w]``: a small convolutional net with spectral norm,
    returning one logit per frame. ``conditioned``: it also reads a reference frame (the clip's opening
    frame) stacked on the channels."""

    def __init__(self, channels: int, width: int = 64, conditioned: bool = False):
        super().__init__()
        self.conditioned = conditioned
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(2 * channels if conditioned else channels, width, 3, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(4 * width, 1, 3, padding=1)),
        )

    def forward(self, frames: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditioned:
            if reference is None:
                raise ValueError("a conditioned discriminator needs the reference frames")
            frames = torch.cat([frames, reference], dim=1)
        return self.net(frames).mean(dim=(1, 2, 3))


def latent_frames(
    latents: torch.Tensor, count: int, generator: torch.Generator | None = None, first: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` latent frames ``[count, C, h, w]`` drawn at random, without repeats, from frames ``first`` on
    of a batch of clips ``[B, C, F, h, w]``, and the opening frame of each one's clip (same shape)."""
    frames = latents[:, :, first:].transpose(1, 2)
    index = torch.randperm(frames.shape[0] * frames.shape[1], generator=generator)[:count].to(latents.device)
    clip = torch.div(index, frames.shape[1], rounding_mode="floor")
    return frames.flatten(0, 1)[index], latents[clip, :, 0]


def discriminator_loss(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    real_reference: torch.Tensor | None = None,
    fake_reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hinge loss of the discriminator: real frames above +1, generated ones below -1."""
    return (
        F.relu(1.0 - discriminator(real, real_reference)).mean()
        + F.relu(1.0 + discriminator(fake.detach(), fake_reference)).mean()
    )


def generator_loss(
    discriminator: nn.Module, fake: torch.Tensor, reference: torch.Tensor | None = None
) -> torch.Tensor:
    """Adversarial loss of the generator: raise the discriminator's score of its frames."""
    return -discriminator(fake, reference).mean()
