"""The drag step's terms: L_rec (Eq. 2), L_cst (Eq. 3) and the CSS map (Eq. 9-10), with what they
compare: the reference features warped by Pi into each target region Y_i, and the region M that stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .. import geometry
from .targets import BlockPlan, RegionGoal


def masked_distance(
    a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, norm: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over pixels of ``mask * mean_channels(|a - b|)`` (or squared), and the mask's total weight."""
    diff = (a - b).abs() if norm == "l1" else (a - b) ** 2
    return (diff.mean(dim=0) * mask).sum(), mask.sum()


@dataclass
class ReconstructionTarget:
    """What L_rec compares the block's features with, per region, over all the block's frames: the
    reference features warped by Pi and the target masks Y_i (empty on frames without a goal)."""

    warped: list[torch.Tensor]  # per region [D, F, h, w]
    masks: list[torch.Tensor]  # per region [F, h, w]


def reconstruction_target(
    reference,
    goals: list[list[RegionGoal]],
    plan: BlockPlan,
    frames: int,
    weight: str = "mask",
    regions: Sequence[int] | None = None,
) -> ReconstructionTarget:
    """The reference features ``[D, F_ref, h, w]`` warped for a block of ``frames`` frames (fixed for a
    segment and cutoff, so built once for both), for ``regions`` (default: every region).
    ``weight="gaussian"`` weights each Y_i by a Gaussian over its bounding box (the SG-I2V-style
    baseline) instead of using it plainly."""
    dim, _, h, w = reference.shape
    regions = range(len(plan.handle_masks)) if regions is None else regions
    warped = {region: reference.new_zeros(dim, frames, h, w) for region in regions}
    masks = {region: reference.new_zeros(frames, h, w) for region in regions}
    for frame, ref_frame, frame_goals in zip(plan.frames, plan.reference_frames, goals):
        for region in regions:
            goal = frame_goals[region]
            warped[region][:, frame] = geometry.warp(reference[:, ref_frame], goal.coords)
            masks[region][frame] = goal.target_mask
            if weight == "gaussian" and goal.target_mask.max() > 0.5:
                masks[region][frame] *= geometry.css_gaussian_map(goal.target_mask).to(goal.target_mask)
    return ReconstructionTarget(list(warped.values()), list(masks.values()))


def rotation_target(
    reference_x0: torch.Tensor, goals: list[list[RegionGoal]], plan: BlockPlan, frames: int, weight: str
) -> ReconstructionTarget:
    """L_rec's target in latent space for the plan's 2D-rotation regions only: the reference x0
    prediction ``[C, F_ref, h, w]`` warped by Pi inside Y_i (the rotation term)."""
    return reconstruction_target(reference_x0, goals, plan, frames, weight, plan.rotation_regions)


class SegmentTargets:
    """What L_rec compares with over one trajectory segment, each built when first asked for: the
    reference features of every cutoff the switch draws, and the rotation term's latent target."""

    def __init__(
        self, reference: Mapping[float, torch.Tensor], goals, plan: BlockPlan, frames: int, weight: str
    ):
        self._reference, self._goals, self._plan, self._frames, self._weight = (
            reference,
            goals,
            plan,
            frames,
            weight,
        )
        self._features: dict[float, ReconstructionTarget] = {}
        self._latent: ReconstructionTarget | None = None

    def features(self, cutoff: float) -> ReconstructionTarget:
        if cutoff not in self._features:
            self._features[cutoff] = reconstruction_target(
                self._reference[cutoff], self._goals, self._plan, self._frames, self._weight
            )
        return self._features[cutoff]

    def latent(self, reference_x0: torch.Tensor) -> ReconstructionTarget:
        if self._latent is None:
            self._latent = rotation_target(reference_x0, self._goals, self._plan, self._frames, self._weight)
        return self._latent


def reconstruction_loss(current, target: ReconstructionTarget, norm: str):
    # Eq. 2: L_rec, current features inside Y_i against the reference features warped by Pi (detached)
    total, weight = current.new_zeros(()), current.new_zeros(())
    for warped, mask in zip(target.warped, target.masks):
        value, area = masked_distance(current, warped, mask, norm)
        total, weight = total + value, weight + area
    return total / weight.clamp_min(1e-6)


def constraint_region(goals: list[list[RegionGoal]], plan: BlockPlan) -> torch.Tensor:
    """Where the block must stay: the user's non-editable region M, or else everything outside the
    handle and target regions."""
    if plan.frozen_mask is not None:
        return plan.frozen_mask
    moving = torch.zeros_like(plan.handle_masks[0])
    for frame_goals in goals:
        for goal in frame_goals:
            moving = torch.maximum(moving, torch.maximum(goal.handle_mask, goal.target_mask))
    return 1.0 - moving


def feature_constraint_loss(current, initial, region: torch.Tensor, plan: BlockPlan, norm: str):
    # Eq. 3: L_cst, features of the non-editable region kept at their initial values
    supervised = current.new_zeros(current.shape[1], 1, 1)
    supervised[plan.frames] = 1.0
    value, area = masked_distance(current, initial, region * supervised, norm)
    return value / area.clamp_min(1e-6)


def x0_constraint_loss(x0, x0_initial, region: torch.Tensor) -> torch.Tensor:
    """Released-code constraint: MSE of the x0 prediction outside the editable area, over all elements."""
    return torch.nn.functional.mse_loss(x0 * region, x0_initial * region)


def gradient_map(goals, plan: BlockPlan, alpha: float, frames: int, latent_size) -> torch.Tensor:
    # Eq. 9-10: CSS Gaussian map per latent frame: 1 - prod_i (1 - G_i), G_i centred on Y_i's box
    device = plan.handle_masks[0].device
    maps = torch.ones(frames, *latent_size, device=device)
    supervised = torch.zeros(frames, dtype=torch.bool)
    for frame, frame_goals in zip(plan.frames, goals):
        keep = torch.ones(latent_size, device=device)
        for goal in frame_goals:
            if goal.target_mask.max() <= 0.5:
                continue
            keep = keep * (1.0 - geometry.css_gaussian_map(goal.target_mask, alpha).to(device))
        maps[frame] = 1.0 - keep
        supervised[frame] = True
    if not supervised.all():
        # Frames without a goal take the union of the others' maps (the edit of the last frame only).
        union = maps[supervised].amax(dim=0)
        maps[~supervised] = union
    return maps


def css_step(before: torch.Tensor, after: torch.Tensor, css_map: torch.Tensor) -> torch.Tensor:
    # Eq. 9-10 applied to the optimiser's step: the latent moves by the map times the step it was given
    return before + css_map[None, None] * (after - before)
