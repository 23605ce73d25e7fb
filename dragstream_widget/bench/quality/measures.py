"""Per-case measurements of one branch of the stream against the branch without a drag.

* ObjMC of the handle points, tracked from the frame the drag was drawn on, against their targets.
* DAI between the drawn frame around each handle and the final dragged frame around its target.
* PSNR of the non-editable region (outside every place the handle regions pass through, grown by a
  margin, or the user's non-editable mask) on the frames the drag acted on.
* Latent drift: per latent frame, |mean - mean_ref| + |std - std_ref| against the undragged branch,
  averaged over every frame from the drag on (the paper's Figure 2a as one number).
* Object kept (toy world): area of the dragged object's segment on the final frame over its area on
  the drawn frame, so a drag that melts the object shows.
* Side effects (toy world): pixels of another object's colour that the drag brought into its editable
  area, and objects spawned or lost, on the last frame it acted on against the undragged branch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...geometry import grow, shifted
from ...metrics import dai, objmc
from ...models.toyworld.scenes import COLOR_INDEX, count_changes, object_counts
from ...models.toyworld.world import object_labels, segment_object
from ...ops import DragInstruction, Mode, Operation

PSNR_MARGIN_PX = 3


def editable_area(instruction: DragInstruction) -> np.ndarray:
    """Every pixel a handle region covers on its way: the mask at each target (a disc around the centre
    for 2D rotations, which may turn any part of it anywhere on that disc)."""
    area = np.zeros(instruction.frame_size, bool)
    for region in instruction.regions:
        area |= region.mask
        if region.operation == Operation.ROTATE_2D:
            cx, cy = region.rotation_center()
            ys, xs = np.nonzero(region.mask)
            radius = np.hypot(xs - cx, ys - cy).max()
            y, x = np.mgrid[: area.shape[0], : area.shape[1]]
            area |= (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
            continue
        for k in range(len(region.targets)):
            area |= shifted(region.mask, *region.displacement(k))
    return area


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) of ``uint8 [T, H, W, 3]`` frames over the ``[H, W]`` mask."""
    if not mask.any():
        return float("nan")
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = diff[:, mask].mean()
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def non_editable_psnr(frames: np.ndarray, reference: np.ndarray, instruction: DragInstruction) -> float:
    if instruction.frozen_mask is not None:
        keep = instruction.frozen_mask
    else:
        keep = ~grow(editable_area(instruction), PSNR_MARGIN_PX)
    return psnr(frames, reference, keep)


def frame_statistics(latents: torch.Tensor) -> np.ndarray:
    """``[F, 2]`` mean and std of each latent frame of ``[1, C, F, h, w]`` latents."""
    flat = latents[0].transpose(0, 1).flatten(1).double()
    return torch.stack([flat.mean(1), flat.std(1)], 1).cpu().numpy()


def latent_drift(latents: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over latent frames of |mean - mean_ref| + |std - std_ref|."""
    a, b = frame_statistics(latents), frame_statistics(reference)
    return float(np.abs(a - b).sum(1).mean())


def trajectory_targets(instruction: DragInstruction, steps: int) -> np.ndarray:
    """``[steps, regions, 2]`` target of each region at each trajectory step (an edit: its one target)."""
    return np.array(
        [
            [
                instruction.target_at(i, min(k, instruction.num_targets - 1))
                for i in range(len(instruction.regions))
            ]
            for k in range(steps)
        ],
        np.float64,
    )


def drag_scores(
    instruction: DragInstruction,
    drawn: np.ndarray,
    dragged: np.ndarray,
    tracker,
    dai_radius: int,
) -> dict:
    """ObjMC and DAI of the frames the drag acted on (``dragged``: one per trajectory step; an edit's
    is its last frame), tracked from ``drawn``, the frame the drag was drawn on."""
    handles = np.array([r.handle for r in instruction.regions], np.float64)
    tracked = tracker.track(np.concatenate([drawn[None], dragged]), handles)[1:]
    targets = trajectory_targets(instruction, len(dragged))
    lost = bool(~np.isfinite(tracked).all())
    score = objmc(tracked, targets) if np.isfinite(tracked).any() else None
    final = [instruction.target_at(i, instruction.num_targets - 1) for i in range(len(instruction.regions))]
    accuracy = dai(drawn, dragged[-1], [tuple(h) for h in handles], final, dai_radius)
    return {"objmc": score, "dai": accuracy, "track_lost": lost}


def object_kept(drawn: np.ndarray, final: np.ndarray, colors: tuple[str, ...]) -> float:
    """Mean over the dragged objects of their segment area on ``final`` over that on ``drawn``."""
    ratios = []
    for color in dict.fromkeys(colors):
        before = segment_object(drawn, color).sum()
        if before:
            ratios.append(segment_object(final, color).sum() / before)
    return float(np.mean(ratios)) if ratios else float("nan")


def evaluated_frames(instruction: DragInstruction, frames: np.ndarray, per_latent: int) -> np.ndarray:
    """The frames scored for the drag: an edit's last frame; an animation's frame at each trajectory step
    (the last pixel frame of each latent frame)."""
    if instruction.mode == Mode.EDIT:
        return frames[-1:]
    picks = [(k + 1) * per_latent - 1 for k in range(instruction.num_targets)]
    return frames[picks]


def side_effects(
    dragged: np.ndarray, undragged: np.ndarray, instruction: DragInstruction, colors: tuple[str, ...]
) -> dict:
    """What a drag on the toy world did besides moving its objects (of ``colors``), on the last frame it
    acted on against the same frame without the drag: pixels of another object's colour inside the
    editable area beyond those the undragged frame has there, and objects spawned or lost (patches of an
    object colour the undragged frame does not have, or lacks)."""
    region = editable_area(instruction)
    own = [COLOR_INDEX[c] for c in colors]
    foreign = [
        int(((labels >= 0) & ~np.isin(labels, own) & region).sum())
        for labels in map(object_labels, (dragged, undragged))
    ]
    changes = count_changes(object_counts(dragged), object_counts(undragged))
    return {
        "foreign_color_px": max(foreign[0] - foreign[1], 0),
        "objects_spawned_or_lost": changes["spawned"] + changes["lost"],
    }
