"""From a drag instruction to what the optimisation of one block needs, at latent resolution.

For every latent frame of the block that is supervised, and every handle region, a
:class:`RegionGoal` holds the handle mask H_i, the coordinate map Pi (Eq. 1) and the target mask
Y_i = H_i o Pi. Long drags are split into segments; segment ``k`` of ``S`` moves a fraction ``k / S``
of the way (progressively, as the released code does), from where the block starts: the reference
frame for an edit and the first block of an animation, the previous block's last trajectory point for
the blocks after it (which that block already moved the object to).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import geometry
from ..ops import DragInstruction, HandleRegion, Operation


@dataclass(frozen=True)
class Motion:
    """A rigid motion in model pixels: a translation, or a rotation by ``angle`` about ``center``."""

    delta: tuple[float, float] = (0.0, 0.0)
    center: tuple[float, float] | None = None
    angle: float = 0.0

    @property
    def is_rotation(self) -> bool:
        return self.center is not None

    def scaled(self, fraction: float) -> Motion:
        dx, dy = self.delta
        return Motion((dx * fraction, dy * fraction), self.center, self.angle * fraction)

    def toward(self, goal: Motion, fraction: float) -> Motion:
        """The motion a ``fraction`` of the way from this one to ``goal`` (a rotation keeps ``goal``'s
        centre and turns from this motion's angle)."""
        (x0, y0), (x1, y1) = self.delta, goal.delta
        delta = (x0 + (x1 - x0) * fraction, y0 + (y1 - y0) * fraction)
        return Motion(delta, goal.center, self.angle + self.turn_to(goal) * fraction)

    def distance(self, goal: Motion) -> tuple[float, float]:
        """How far ``goal`` lies from this motion: pixels moved and degrees turned."""
        (x0, y0), (x1, y1) = self.delta, goal.delta
        return math.hypot(x1 - x0, y1 - y0), abs(math.degrees(self.turn_to(goal)))

    def turn_to(self, goal: Motion) -> float:
        """The shorter turn in radians from this motion's angle to ``goal``'s, in [-pi, pi)."""
        return (goal.angle - self.angle + math.pi) % (2 * math.pi) - math.pi


def region_motion(region: HandleRegion, target_index: int) -> Motion:
    """The motion that takes the handle to ``targets[target_index]`` (rotation for ROTATE_2D)."""
    if region.operation == Operation.ROTATE_2D:
        return Motion(center=region.rotation_center(), angle=region.angle(target_index))
    return Motion(delta=region.displacement(target_index))


def num_segments(
    motions: list[Motion], segment_px: float, segment_degrees: float, starts: list[Motion] | None = None
) -> int:
    """S: enough equal segments that no region moves more than one segment length per segment, each
    from its start (default: not moved)."""
    needed = 1
    for motion, start in zip(motions, starts or [Motion()] * len(motions)):
        pixels, degrees = start.distance(motion)
        if motion.is_rotation:
            needed = max(needed, math.ceil(degrees / segment_degrees - 1e-9))
        else:
            needed = max(needed, math.ceil(pixels / segment_px - 1e-9))
    return needed


@dataclass
class RegionGoal:
    handle_mask: torch.Tensor  # H_i at latent resolution, [h, w] in [0, 1]
    coords: torch.Tensor  # Pi, [h, w, 2] source positions
    target_mask: torch.Tensor  # Y_i, [h, w]


def coordinate_map(motion: Motion, pixel_size: tuple[int, int], latent_size: tuple[int, int], device):
    # Eq. 1: the coordinate map Pi, from target positions back to handle positions, at latent resolution
    scale = latent_size[1] / pixel_size[1]
    if motion.is_rotation:
        center = geometry.scale_point(motion.center, pixel_size, latent_size)
        coords = geometry.rotation_map(latent_size, center, motion.angle)
    else:
        delta = (motion.delta[0] * scale, motion.delta[1] * scale)
        coords = geometry.translation_map(latent_size, delta)
    return coords.to(device)


def region_goal(handle_mask: torch.Tensor, motion: Motion, pixel_size, latent_size) -> RegionGoal:
    coords = coordinate_map(motion, pixel_size, latent_size, handle_mask.device)
    return RegionGoal(handle_mask, coords, geometry.target_mask(handle_mask, coords))


@dataclass
class BlockPlan:
    """Per supervised latent frame of the block: its reference frame index and each region's motion, and
    per region the motion the block starts from (where an earlier block already moved it; None: from
    the reference frame)."""

    frames: list[int]  # latent frames of the block that are supervised
    reference_frames: list[int]  # for each, the frame of the reference features it is compared with
    motions: list[list[Motion]]  # [frame][region]
    handle_masks: list[torch.Tensor]  # per region, latent resolution
    frozen_mask: torch.Tensor | None  # non-editable region M at latent resolution, or None
    starts: list[Motion] | None = None  # [region]

    def start_of(self, region: int, walk_from: str) -> Motion:
        """Where region ``region``'s walk starts: the reference frame, or (``walk_from="previous_block"``)
        the previous block's last trajectory point where there is one."""
        if walk_from == "previous_block" and self.starts is not None:
            return self.starts[region]
        return Motion()

    @property
    def rotation_regions(self) -> list[int]:
        """The regions turned by a 2D rotation on some supervised frame."""
        return [r for r in range(len(self.handle_masks)) if any(m[r].is_rotation for m in self.motions)]

    def segments(self, segment_px: float, segment_degrees: float, walk_from: str = "reference") -> int:
        motions = [m for per_frame in self.motions for m in per_frame]
        starts = [self.start_of(r, walk_from) for per_frame in self.motions for r in range(len(per_frame))]
        return num_segments(motions, segment_px, segment_degrees, starts)

    def goals(
        self, fraction: float, pixel_size, latent_size, walk_from: str = "reference"
    ) -> list[list[RegionGoal]]:
        """The goals a ``fraction`` of the way from each region's start (see :meth:`start_of`)."""
        return [
            [
                region_goal(h, self.start_of(r, walk_from).toward(m, fraction), pixel_size, latent_size)
                for r, (h, m) in enumerate(zip(self.handle_masks, motions))
            ]
            for motions in self.motions
        ]


def latent_masks(
    instruction: DragInstruction, latent_size, device
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    handles = [geometry.resize_mask(r.mask, latent_size).to(device) for r in instruction.regions]
    frozen = None
    if instruction.frozen_mask is not None:
        frozen = geometry.resize_mask(instruction.frozen_mask, latent_size).to(device)
    return handles, frozen


def edit_plan(instruction: DragInstruction, frames_per_block: int, edit_frames: str, latent_size, device):
    """Editing: the block on screen is re-denoised; each supervised frame is compared with its own past."""
    frames = list(range(frames_per_block)) if edit_frames == "all" else [frames_per_block - 1]
    motions = [[region_motion(r, 0) for r in instruction.regions] for _ in frames]
    handles, frozen = latent_masks(instruction, latent_size, device)
    return BlockPlan(frames, frames, motions, handles, frozen)


def animation_plan(instruction: DragInstruction, first_step: int, frames_per_block: int, latent_size, device):
    """Animation: frame ``j`` of the block takes trajectory step ``first_step + j``; all compare with the
    reference frame (the frame on which the drag was drawn). Frames past the trajectory's end hold its
    last point. Returns None once the trajectory is done."""
    if first_step >= instruction.num_targets:
        return None
    steps = [min(first_step + j, instruction.num_targets - 1) for j in range(frames_per_block)]
    motions = [
        [region_motion(r, min(step, len(r.targets) - 1)) for r in instruction.regions] for step in steps
    ]
    handles, frozen = latent_masks(instruction, latent_size, device)
    frames = list(range(len(steps)))
    starts = None
    if first_step > 0:  # the previous block ended at trajectory step first_step - 1
        starts = [region_motion(r, min(first_step - 1, len(r.targets) - 1)) for r in instruction.regions]
    return BlockPlan(frames, [0] * len(frames), motions, handles, frozen, starts)
