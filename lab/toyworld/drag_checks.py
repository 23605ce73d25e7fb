"""Do drags land on the toy world model? Edits, curved animations and 2D rotations, measured by
segmentation against their targets, with the non-editable region compared to the no-drag stream.

    python -m lab drag-checks --out runs/drags.json
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from dragstream_widget.arguments import add_float_streaming_flag, at_least
from dragstream_widget.bench import report
from dragstream_widget.engine.config import DragConfig
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.geometry import curved_path, grow, mask_iou, shifted
from dragstream_widget.metrics import psnr
from dragstream_widget.models.toyworld.model import FLOAT_STREAMING, WEIGHTS_DIR, ToyWorldModel
from dragstream_widget.models.toyworld.scenes import (
    ObjectNotVisible,
    centroid,
    count_changes,
    foreign_color_pixels,
    object_counts,
    object_region,
    opening_frames,
    square_fit,
)
from dragstream_widget.models.toyworld.world import parse_prompt, segment_object, shape_template
from dragstream_widget.ops import DragInstruction, HandleRegion, Mode, Operation

from .rotation_sheet import rotation_sheet

EDIT_PROMPTS = (
    "a red circle and a blue square on a striped background",
    "a yellow star on a plain background",
    "a green square and a white circle on a gradient background",
    "a cyan triangle on a checkered background",
)
ROTATION_PROMPT = "a red square on a plain background"
LONG_EDIT_PX = 14.0  # two trajectory segments of the toy model's 8 px tokens


def stream(backend, prompt: str, seed: int, config: DragConfig, blocks: int = 2) -> StreamSession:
    fpb = backend.layout.frames_per_block
    session = StreamSession(backend, prompt, seed, config, start_frames=opening_frames(prompt, seed, fpb))
    for _ in range(blocks):
        session.step()
    return session


def edit_check(backend, prompt: str, seed: int, config: DragConfig, shift: float = 8.0) -> dict:
    """Move the first object ``shift`` px to the right (or left near the edge) with an edit. Besides where
    it lands, measure the ghost it leaves: the share of the area it vacated that still has its colour."""
    color = prompt.split()[1]
    session, reference = stream(backend, prompt, seed, config), stream(backend, prompt, seed, config)
    mask, center = object_region(session.frames()[-1], color)
    direction = 1.0 if center[0] < backend.layout.pixel_width / 2 else -1.0
    target = (center[0] + direction * shift, center[1])
    session.apply(
        DragInstruction(
            Mode.EDIT,
            backend.layout.pixel_size,
            (HandleRegion(mask, Operation.TRANSLATE, center, (target,)),),
        )
    )
    after = segment_object(session.frames()[-1], color)
    landed = centroid(after)
    dx = round(target[0] - center[0])
    moved = mask | shifted(mask, dx, 0)
    fpb = backend.layout.frames_per_block
    frames, plain = session.frames()[-fpb:], reference.frames()[-fpb:]
    return {
        "prompt": prompt,
        "seed": seed,
        "shift_px": shift,
        "error_px": None if landed is None else math.dist(landed, target),
        "ghost_fraction": ghost_fraction(mask, after, dx),
        "psnr_non_editable_db": non_editable_psnr(frames, plain, moved, color),
        **side_effects(frames, plain, moved, prompt),
    }


def non_editable_psnr(dragged: np.ndarray, undragged: np.ndarray, planned: np.ndarray, color: str) -> float:
    """PSNR of ``dragged`` frames against the same frames streamed without the drag, where the drag should
    change nothing: 3 px away from every place the drag's plan sends the object (``planned``) and from
    every place the object of ``color`` covers in the ``undragged`` frames (which it leaves for the drag's
    path, in an animation or a turn, and where it still moves within an edited block)."""
    left = np.logical_or.reduce([segment_object(frame, color) for frame in undragged])
    keep = ~grow(planned | left, 3)
    return psnr(dragged, undragged, np.broadcast_to(keep, dragged.shape[:3]))


def side_effects(dragged: np.ndarray, undragged: np.ndarray, path: np.ndarray, prompt: str) -> dict:
    """What a drag did besides moving its object, against the same frames streamed without it: the most
    pixels of another object's colour inside the dragged object's path (grown by 3 px) on any frame,
    beyond those the undragged frame has there; the other objects' area on the last frame over their
    area without the drag; and the objects spawned or lost on the last frame that the undragged frame
    does not show."""
    dragged_color = prompt.split()[1]
    region = grow(path, 3)
    foreign = max(
        foreign_color_pixels(ours, region, dragged_color)
        - foreign_color_pixels(theirs, region, dragged_color)
        for ours, theirs in zip(dragged, undragged)
    )
    others = [color for color, _ in parse_prompt(prompt).objects if color != dragged_color]
    ratios = []
    for color in others:
        before = segment_object(undragged[-1], color).sum()
        if before:
            ratios.append(float(segment_object(dragged[-1], color).sum() / before))
    changes = count_changes(object_counts(dragged[-1]), object_counts(undragged[-1]))
    return {
        "foreign_color_px": max(foreign, 0),
        "far_objects_area_ratio": min(ratios) if ratios else None,
        "objects_spawned": changes["spawned"],
        "objects_lost": changes["lost"],
    }


def ghost_fraction(before: np.ndarray, after: np.ndarray, dx: int) -> float | None:
    """Share of the area an object moved ``dx`` px sideways vacated (its old mask, away from the new one
    by more than a pixel) that its mask ``after`` the move still covers: 0 for a clean move, 1 for none."""
    vacated = before & ~grow(shifted(before, dx, 0), 1)
    return float((after & vacated).sum() / vacated.sum()) if vacated.any() else None


def animation_check(backend, prompt: str, seed: int, config: DragConfig, frames: int = 12) -> dict:
    """A 12-frame half circle; mean distance of the segmented object to each frame's target, and the PSNR
    of the animated frames against the same frames streamed without the drag, away from every place the
    object's mask passes through."""
    color = prompt.split()[1]
    session, plain = stream(backend, prompt, seed, config), stream(backend, prompt, seed, config)
    mask, center = object_region(session.frames()[-1], color)
    path = curved_path(center, 10.0, frames, backend.layout.pixel_width)
    session.apply(
        DragInstruction(
            Mode.ANIMATE,
            backend.layout.pixel_size,
            (HandleRegion(mask, Operation.TRANSLATE, center, tuple(path)),),
        )
    )
    first = len(session.frames())
    while len(session.frames()) < first + frames:
        session.step()
        plain.step()
    animated, unchanged = session.frames()[first : first + frames], plain.frames()[first : first + frames]
    tracked = [centroid(segment_object(f, color)) for f in animated]
    errors = [math.dist(p, q) for p, q in zip(tracked, path) if p is not None]
    swept = np.logical_or.reduce([shifted(mask, x - center[0], y - center[1]) for x, y in path])
    return {
        "prompt": prompt,
        "seed": seed,
        "mean_error_px": float(np.mean(errors)) if errors else None,
        "frames_tracked": len(errors),
        "psnr_non_editable_db": non_editable_psnr(animated, unchanged, mask | swept, color),
        **side_effects(animated, unchanged, mask | swept, prompt),
    }


def disc_iou(mask: np.ndarray) -> float:
    """IoU of a blob with the best-fitting disc about its centroid (radius in 0.25 px steps)."""
    center = centroid(mask)
    best = 0.0
    for radius in np.arange(1.0, max(mask.shape) / 2, 0.25):
        disc = shape_template("circle", radius, 0.0, mask.shape, center) >= 0.5
        best = max(best, mask_iou(disc, mask))
    return best


@dataclass
class RotationView:
    """What a rotation drag looked like: the frame it was drawn on and the frame measured after it,
    each with the square fitted to the red object (centre, half-diagonal, degrees), None where none
    was found."""

    seed: int
    before: np.ndarray
    after: np.ndarray
    square_before: tuple[tuple[float, float], float, float]
    square_after: tuple[tuple[float, float], float, float] | None
    turned_degrees: float | None


def rotation_check(
    backend,
    seed: int,
    config: DragConfig,
    degrees: float = 45.0,
    blocks: int = 2,
    frames: int = 0,
    views: list[RotationView] | None = None,
) -> dict:
    """Turn a square by ``degrees`` about its centre, drawn on the frame on screen after ``blocks``
    generated blocks: with ``frames`` 0, a 2D-rotation edit of that block; otherwise an animation turning
    it over the next ``frames`` frames (``blocks`` may then be 0: the given opening frames), measured on
    the last of them beside the same frame streamed without the drag. Measures the turn, and how square
    the object is before and after: its IoU with the best square and, for comparison, with the best disc
    (a small blob fits both about equally); and, away from the disc the turning square sweeps and from
    the square's own places without the drag (:func:`non_editable_psnr`), the PSNR of an edited block
    against itself before the edit, or of the animated frames against the same frames streamed without
    the drag. Appends a :class:`RotationView` to ``views`` where given."""
    session = stream(backend, ROTATION_PROMPT, seed, config, blocks)
    fpb = backend.layout.frames_per_block
    before_edit = session.frames()[-fpb:].copy()
    mask, center = object_region(session.frames()[-1], "red")
    radius = math.sqrt(mask.sum() / 2)  # a square of half-diagonal r has area 2 r^2
    before, fit_before = square_fit(mask, radius)
    measured = {"seed": seed, "square_iou_before": fit_before, "disc_iou_before": disc_iou(mask)}
    arm = (center[0] + radius * 0.8, center[1])
    turns = (
        [math.radians(degrees * k / frames) for k in range(1, frames + 1)]
        if frames
        else [math.radians(degrees)]
    )
    targets = tuple(
        (center[0] + radius * 0.8 * math.cos(a), center[1] + radius * 0.8 * math.sin(a)) for a in turns
    )
    session.apply(
        DragInstruction(
            Mode.ANIMATE if frames else Mode.EDIT,
            backend.layout.pixel_size,
            (HandleRegion(mask, Operation.ROTATE_2D, arm, targets, center),),
        )
    )
    ys, xs = np.mgrid[: mask.shape[0], : mask.shape[1]]
    turning_disc = np.hypot(xs - center[0], ys - center[1]) <= radius
    if frames:
        plain = stream(backend, ROTATION_PROMPT, seed, config, blocks)
        first = len(session.frames())
        last = first + frames - 1
        while len(session.frames()) <= last:
            session.step()
            plain.step()
        after_frame = session.frames()[last]
        without = segment_object(plain.frames()[last], "red")
        measured["square_iou_without_drag"] = square_fit(without, radius)[1] if without.sum() >= 5 else None
        changed, unchanged = session.frames()[first : last + 1], plain.frames()[first : last + 1]
    else:
        after_frame = session.frames()[-1]
        changed, unchanged = session.frames()[-fpb:], before_edit
    measured["psnr_non_editable_db"] = non_editable_psnr(changed, unchanged, turning_disc, "red")
    after_mask = segment_object(after_frame, "red")
    found = after_mask.sum() >= 5
    after, fit_after = square_fit(after_mask, radius) if found else (None, None)
    turned = (after - before) % 90 if found else None
    if views is not None:
        views.append(
            RotationView(
                seed,
                before_edit[-1],
                after_frame,
                (center, radius, before),
                (centroid(after_mask), radius, after) if found else None,
                turned,
            )
        )
    if not found:
        return {**measured, "turned_degrees": None}
    return {
        **measured,
        "requested_degrees": degrees,
        "turned_degrees_mod_90": turned,
        "square_iou_after": fit_after,
        "disc_iou_after": disc_iou(after_mask),
    }


def rotation_checks(
    backend,
    config: DragConfig,
    seeds: range,
    blocks: int = 2,
    frames: int = 0,
    views: list[RotationView] | None = None,
) -> list[dict]:
    return [
        unless_hidden(rotation_check, backend, s, config, 45.0, blocks, frames, views)
        for s in tqdm(seeds, desc="rotations")
    ]


def unless_hidden(check, *args) -> dict:
    """Run one check; where the object to drag is not on screen when the drag starts (hidden behind
    another, or lost by the model), the case is recorded as skipped rather than failing the run."""
    try:
        return check(*args)
    except ObjectNotVisible as error:
        return {"skipped": str(error)}


def median_psnr(cases: list[dict]) -> float | None:
    """Median non-editable PSNR of the cases that ran (None: none did)."""
    psnrs = [c["psnr_non_editable_db"] for c in cases if "psnr_non_editable_db" in c]
    return float(np.median(psnrs)) if psnrs else None


def edit_summary(edits: list[dict]) -> dict:
    """Median landing error, share within 2 px, median ghost and median PSNR of the edits that ran."""
    errors = [e["error_px"] for e in edits if e.get("error_px") is not None]
    ghosts = [e["ghost_fraction"] for e in edits if e.get("ghost_fraction") is not None]
    return {
        "psnr_non_editable_db_median": median_psnr(edits),
        "error_px_median": float(np.median(errors)) if errors else None,
        "within_2px": float(np.mean(np.array(errors) <= 2)) if errors else 0.0,
        "ghost_fraction_median": float(np.median(ghosts)) if ghosts else None,
    }


CHECKS = ("edits", "long_edits", "animations", "rotations")


def run_checks(
    backend,
    config: DragConfig,
    seeds: range,
    long_shift: float = LONG_EDIT_PX,
    checks: tuple[str, ...] = CHECKS,
) -> dict:
    """Edits of 8 px (one trajectory segment) and of ``long_shift`` px (several), curved animations and
    45-degree rotations, over ``seeds``; ``checks`` names the kinds to run (the others report nothing)."""
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; choose from {', '.join(CHECKS)}")

    def cases_of(kind: str, check, prompts, *extra) -> list[dict]:
        if kind not in checks:
            return []
        return [
            unless_hidden(check, backend, p, s, config, *extra)
            for p in tqdm(prompts, desc=kind)
            for s in seeds
        ]

    edits = cases_of("edits", edit_check, EDIT_PROMPTS)
    long_edits = cases_of("long_edits", edit_check, EDIT_PROMPTS, long_shift)
    animations = cases_of("animations", animation_check, EDIT_PROMPTS[:2])
    rotations = rotation_checks(backend, config, seeds) if "rotations" in checks else []
    short, long = edit_summary(edits), edit_summary(long_edits)
    anim_errors = [a["mean_error_px"] for a in animations if a.get("mean_error_px") is not None]
    return {
        "checks": list(checks),
        "edit_error_px_median": short["error_px_median"],
        "edit_within_2px": short["within_2px"] if edits else None,
        "edit_ghost_fraction_median": short["ghost_fraction_median"],
        "long_edit_px": long_shift,
        "long_edit_error_px_median": long["error_px_median"],
        "long_edit_within_2px": long["within_2px"] if long_edits else None,
        "long_edit_ghost_fraction_median": long["ghost_fraction_median"],
        "psnr_non_editable_db_median": short["psnr_non_editable_db_median"],
        "long_edit_psnr_non_editable_db_median": long["psnr_non_editable_db_median"],
        "animation_error_px_mean": float(np.mean(anim_errors)) if anim_errors else None,
        "animation_psnr_non_editable_db_median": median_psnr(animations),
        "rotation_turned_degrees_mod_90": [
            r.get("turned_degrees_mod_90") for r in rotations if "skipped" not in r
        ],
        "rotations": rotations,
        "skipped": sum("skipped" in r for r in edits + long_edits + animations + rotations),
        "edits": edits,
        "long_edits": long_edits,
        "animations": animations,
    }


def rotation_title(blocks: int, frames: int) -> str:
    when = "the opening frames" if blocks == 0 else f"{blocks} generated block{'s' * (blocks > 1)}"
    how = f"animated over {frames} frames" if frames else "an edit"
    return f"a red square turned 45 degrees after {when}, {how}\nwhite: the best-fitting square, below: the turn measured"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m lab drag-checks", description="Measure drags on the toy world model (CPU)."
    )
    parser.add_argument("--weights", default=str(WEIGHTS_DIR))
    parser.add_argument("--seeds", type=at_least(1), default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--rotations-after",
        type=at_least(0),
        default=None,
        help="only the rotations of TOY_DRAG_CONFIG, drawn on the last of this many generated blocks",
    )
    parser.add_argument(
        "--rotation-frames",
        type=at_least(0),
        default=0,
        help="with --rotations-after: animate the turn over this many frames (0: an edit of that block)",
    )
    parser.add_argument(
        "--sheet",
        default=None,
        help="with --rotations-after: save a picture of every rotation here (frame drawn on, frame after)",
    )
    add_float_streaming_flag(parser)
    args = parser.parse_args(argv)
    if args.sheet is not None and args.rotations_after is None:
        parser.error("--sheet draws the rotations of --rotations-after: give it too")
    if args.rotations_after == 0 and args.rotation_frames == 0:
        parser.error(
            "--rotations-after 0 drags the given opening frames, which only an animation can: give --rotation-frames"
        )
    backend = ToyWorldModel.load(args.weights).backend(**(FLOAT_STREAMING if args.float_streaming else {}))
    seeds = range(args.seeds)
    if args.rotations_after is not None:
        views: list[RotationView] = []
        rotations = rotation_checks(
            backend, TOY_DRAG_CONFIG, seeds, args.rotations_after, args.rotation_frames, views
        )
        if args.sheet is not None:
            rotation_sheet(views, args.sheet, rotation_title(args.rotations_after, args.rotation_frames))
        return report({"rotations": rotations}, args.out)
    result = {
        "toy_config": run_checks(backend, TOY_DRAG_CONFIG, seeds),
        "paper_config": run_checks(backend, DragConfig(), seeds),
    }
    return report(result, args.out)
