"""Few-step flow-matching sampler with a shifted timestep schedule (Self-Forcing / CausVid style).

The model predicts the flow ``noise - x0``; a noisy latent at noise level ``sigma`` is
``x_t = (1 - sigma) * x0 + sigma * noise``. Between steps the x0 prediction is brought to the next
level either with fresh noise (``"renoise"``: how the few-step distilled Self-Forcing and CausVid
models are sampled) or with the noise the model itself implies (``"euler"``: the deterministic
Euler step of the flow ODE, right for models trained by plain flow matching).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

NUM_TRAIN_TIMESTEPS = 1000
SIGMA_MIN = 0.003 / 1.002


def shift_sigma(sigma: float, shift: float) -> float:
    """Timestep shift of flow matching: ``shift * s / (1 + (shift - 1) * s)``."""
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


@dataclass(frozen=True)
class FlowSampler:
    """A step list in the nominal 0..1000 scale, warped by ``shift``.

    ``FlowSampler((1000, 750, 500, 250), shift=5.0)`` is Self-Forcing's schedule (effective timesteps
    about 1000, 937.5, 833.3, 625); ``FlowSampler((1000, 757, 522), shift=8.0)`` is CausVid's.
    """

    steps: tuple[int, ...] = (1000, 750, 500, 250)
    shift: float = 5.0
    update: str = "renoise"

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("the step list is empty")
        if any(not 0 < s <= NUM_TRAIN_TIMESTEPS for s in self.steps):
            raise ValueError(f"steps must lie in (0, {NUM_TRAIN_TIMESTEPS}], got {self.steps}")
        if list(self.steps) != sorted(self.steps, reverse=True) or len(set(self.steps)) != len(self.steps):
            raise ValueError(f"steps must be strictly decreasing, got {self.steps}")
        if self.shift <= 0:
            raise ValueError(f"shift must be positive, got {self.shift}")
        if self.update not in ("renoise", "euler"):
            raise ValueError(f"unknown update {self.update!r}; choose 'renoise' or 'euler'")

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    def sigma(self, index: int) -> float:
        """Noise level of step ``index`` (the linear 1000-step grid of the training scheduler, shifted)."""
        nominal = self.steps[index]
        grid_index = NUM_TRAIN_TIMESTEPS - nominal
        linear = 1.0 - grid_index * (1.0 - SIGMA_MIN) / NUM_TRAIN_TIMESTEPS
        return shift_sigma(linear, self.shift)

    def timestep(self, index: int) -> float:
        """Timestep fed to the model at step ``index`` (``sigma * 1000``)."""
        return self.sigma(index) * NUM_TRAIN_TIMESTEPS

    @property
    def sigmas(self) -> tuple[float, ...]:
        return tuple(self.sigma(i) for i in range(self.num_steps))

    @property
    def timesteps(self) -> tuple[float, ...]:
        return tuple(self.timestep(i) for i in range(self.num_steps))


def x0_from_flow(x_t: torch.Tensor, flow: torch.Tensor, sigma: float) -> torch.Tensor:
    """Clean-sample prediction from a flow prediction: ``x0 = x_t - sigma * flow``."""
    return x_t - sigma * flow


def next_noise(
    x_t: torch.Tensor, x0: torch.Tensor, sigma: float, fresh: torch.Tensor, update: str
) -> torch.Tensor:
    """The noise that carries x0 to the next level: ``fresh`` noise, or the one implied by ``x_t`` (Euler)."""
    if update == "euler":
        return (x_t - (1.0 - sigma) * x0) / sigma
    return fresh


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """Forward process of rectified flow: ``(1 - sigma) * x0 + sigma * noise``."""
    return (1.0 - sigma) * x0 + sigma * noise
