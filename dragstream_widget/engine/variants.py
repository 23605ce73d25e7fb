"""Where the drag step differs between the paper, the released code, the baselines and the embedded
model's rotation term: small named pieces, chosen once from the config by :func:`choose_variants`.

The paper's choices: L_cst on features (Eq. 3), the CSS map on the gradient, ADSR to the neighbours'
global statistics, one AdamW over all iterations, the optimised latent kept whole. The released code:
L_cst on the x0 prediction, gradient clipping, a fresh AdamW each iteration, ADSR to the block's own
per-frame-and-channel statistics. The SG-I2V-style baseline keeps only the low frequencies of the
change. The embedded model: the CSS map on AdamW's step, and for 2D rotations L_rec and L_cst again on
the x0 prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from ..models.base import VideoBackend
from .drag import ResolvedDrag
from .frequency import lowpass_spatial
from .losses import (
    ReconstructionTarget,
    css_step,
    feature_constraint_loss,
    gradient_map,
    reconstruction_loss,
    x0_constraint_loss,
)
from .rectify import self_rectify

Tensor = torch.Tensor


@dataclass(frozen=True)
class FirstPass:
    """The first iteration's pass: F(z_init) and its x0 prediction (what L_cst keeps), and the reference
    x0 prediction the rotation term turns (None without it)."""

    features: Tensor
    x0: Tensor | None
    reference_x0: Tensor | None


def first_pass(drag: ResolvedDrag, features: Tensor, x0: Tensor | None) -> FirstPass:
    """What the first iteration's pass gives the rest of the optimisation (see :class:`ResolvedDrag`)."""
    features, x0 = features.detach(), None if x0 is None else x0.detach()
    if drag.starts_at_reference:
        drag.reference.adopt_unfiltered(features)
    reference_x0 = None
    if drag.rotates:
        reference_x0 = drag.reference_x0
        if reference_x0 is None:
            reference_x0 = x0[0] if drag.starts_at_reference else drag.reference.x0()
    return FirstPass(features, x0, reference_x0)


def feature_constraint(norm: str, current, x0, first: FirstPass, region, plan) -> Tensor:
    """The paper's L_cst (Eq. 3): the non-editable region's features kept at their initial values."""
    return feature_constraint_loss(current, first.features, region, plan, norm)


def x0_constraint(current, x0, first: FirstPass, region, plan) -> Tensor:
    """The released code's L_cst: the x0 prediction outside the editable area kept (MSE)."""
    return x0_constraint_loss(x0, first.x0, region)


@dataclass(frozen=True)
class RotationTerm:
    """Not in the paper: for 2D rotations, L_rec and L_cst again in latent space, on the x0 prediction
    against the reference x0 prediction warped by Pi. Where an object spans only a few tokens, warping
    token features cannot say "turn"; the latent grid can (``DragConfig.rotation_x0_weight``)."""

    weight: float
    constraint_weight: float
    norm: str

    def add(self, terms: dict, x0, first: FirstPass, target: ReconstructionTarget, region, plan) -> dict:
        latent = {
            "l_rec_x0": reconstruction_loss(x0[0], target, self.norm),
            "l_cst_x0": feature_constraint_loss(x0[0], first.x0[0], region, plan, self.norm),
        }
        return {
            "l_rec": terms["l_rec"] + self.weight * latent["l_rec_x0"],
            "l_cst": terms["l_cst"] + self.constraint_weight * latent["l_cst_x0"],
            **latent,
        }


def segment_css_map(drag: ResolvedDrag, latent_size, device, goals, frames: int) -> Tensor:
    """The CSS map (Eq. 9-10) of one trajectory segment's goals, for a block of ``frames`` frames."""
    return gradient_map(goals, drag.plan, drag.config.css_alpha, frames, latent_size).to(device)


def css_on_gradient(z: Tensor, css_map: Tensor) -> None:
    """The paper's CSS: the gradient weighted by the map (which AdamW's per-element scaling mostly undoes)."""
    z.grad.mul_(css_map[None, None])


def clip_gradient(limit: float, z: Tensor, css_map: Tensor | None) -> None:
    """The released code's gradient clipping to a norm of ``limit``."""
    torch.nn.utils.clip_grad_norm_([z], limit)


def css_on_step(before: Tensor, z: Tensor, css_map: Tensor) -> None:
    """CSS on AdamW's step: the latent moves by the map times the step it was given."""
    z.copy_(css_step(before, z, css_map))


def adsr(target: Tensor, stats: str, z: Tensor) -> None:
    """ADSR (Eq. 4) in place: ``z`` re-standardised to the statistics of ``target``."""
    with torch.no_grad():
        z.copy_(self_rectify(z, target, stats))


def no_rectification(z: Tensor) -> None:
    """ADSR off, or not at this step's noise level."""


def same_optimizer(optimizer: torch.optim.Optimizer, z: Tensor) -> torch.optim.Optimizer:
    return optimizer


def fresh_optimizer(
    learning_rate: float, optimizer: torch.optim.Optimizer, z: Tensor
) -> torch.optim.Optimizer:
    """The released code's fresh AdamW each iteration (its moments forgotten)."""
    return torch.optim.AdamW([z], lr=learning_rate)


def whole_change(z_init: Tensor, z: Tensor) -> Tensor:
    return z


def lowpass_change(cutoff: float, z_init: Tensor, z: Tensor) -> Tensor:
    """SG-I2V-style post-processing: low frequencies of the optimised latent, high ones of the initial."""
    return lowpass_spatial(z, cutoff) + z_init - lowpass_spatial(z_init, cutoff)


@dataclass(frozen=True)
class DragVariants:
    """The pieces of one drag's optimisation, as :func:`choose_variants` picked them."""

    constraint: Callable[..., Tensor]  # L_cst
    rotation: RotationTerm | None
    css_map: Callable[[list, int], Tensor] | None  # the CSS map of a segment's goals over F frames
    shape_gradient: tuple[Callable[[Tensor, Tensor | None], None], ...]
    shape_step: tuple[Callable[[Tensor, Tensor, Tensor | None], None], ...]
    rectify: Callable[[Tensor], None]
    next_optimizer: Callable[[torch.optim.Optimizer, Tensor], torch.optim.Optimizer]
    finish: Callable[[Tensor, Tensor], Tensor]
    needs_x0: bool  # whether a pass must also predict x0 (else it may stop after the deepest recorded layer)

    def descend(self, z: Tensor, optimizer: torch.optim.Optimizer, loss: Tensor, css_map) -> Tensor:
        """One AdamW step on ``z``, its gradient and its step shaped by the chosen pieces; returns the step."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for shape in self.shape_gradient:
            shape(z, css_map)
        if not torch.isfinite(z.grad).all():
            raise FloatingPointError("the drag produced a non-finite gradient; the block was left unchanged")
        before = z.detach().clone()
        optimizer.step()
        with torch.no_grad():
            for shape in self.shape_step:
                shape(before, z, css_map)
            return z.detach() - before


def choose_variants(drag: ResolvedDrag, backend: VideoBackend, z_init: Tensor) -> DragVariants:
    """The pieces ``drag.config`` asks for (see the module docstring)."""
    config = drag.config
    norm = config.reconstruction_loss
    css_map = None
    if config.css:
        css_map = partial(segment_css_map, drag, backend.layout.latent_size, z_init.device)
    shape_gradient = []
    if config.css and config.css_on == "gradient":
        shape_gradient.append(css_on_gradient)
    if config.gradient_clip is not None:
        shape_gradient.append(partial(clip_gradient, config.gradient_clip))
    rectify = no_rectification
    if config.adsr and backend.sampler.sigma(config.optimize_step) >= config.adsr_min_sigma:
        own = config.adsr_reference == "own" or drag.neighbours is None
        rectify = partial(adsr, z_init if own else drag.neighbours, config.adsr_stats)
    rotation = None
    if drag.rotates:
        rotation = RotationTerm(config.rotation_x0_weight, config.rotation_x0_constraint, norm)
    return DragVariants(
        constraint=partial(feature_constraint, norm) if config.constraint == "features" else x0_constraint,
        rotation=rotation,
        css_map=css_map,
        shape_gradient=tuple(shape_gradient),
        shape_step=(css_on_step,) if config.css and config.css_on == "step" else (),
        rectify=rectify,
        next_optimizer=(
            partial(fresh_optimizer, config.learning_rate)
            if config.reset_optimizer_each_iteration
            else same_optimizer
        ),
        finish=whole_change
        if config.latent_lowpass is None
        else partial(lowpass_change, config.latent_lowpass),
        needs_x0=config.constraint == "x0" or rotation is not None,
    )
