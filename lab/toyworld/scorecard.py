"""The embedded model against its targets: rollouts, drags and speed measured in one run, each target
beside its measured value.

    python -m lab scorecard --out runs/scorecard [--jobs 2] [--weights DIR]

Writes ``scorecard.json`` (every measurement and case), ``scorecard.md`` (the table) and the rollout
contact sheet. A target counts as met when its statistic meets it: the median case for the drags (the
share of cases that meet it on their own is printed beside), the mean over object-frames for shapes,
the median for sizes and times. Rollouts and drags run in ``--jobs`` worker processes of one thread;
speed is timed last, alone, on the machine's threads, so no worker competes with it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dragstream_widget.arguments import at_least
from dragstream_widget.bench.cpu_speed import (
    edit_seconds,
    full_window_blocks,
    interleaved_block_seconds,
    prepared_edit_seconds,
)
from dragstream_widget.bench.workers import map_on_toy_model
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.models.toyworld.model import load_model
from dragstream_widget.models.toyworld.scenes import DEFAULT_PROMPT, opening_frames

from .drag_checks import EDIT_PROMPTS, animation_check, edit_check, rotation_check, unless_hidden
from .evaluate import evaluate, long_run

PSNR_TARGET_DB = 30.0
ROTATION_DEGREES = 45.0
ROTATION_TOLERANCE = 7.0
# How each rotation is drawn: generated blocks streamed before it, and frames it is animated over (0: an
# edit of the block on screen).
ROTATIONS = {
    "edit after 1 generated block": (1, 0),
    "edit after 2 generated blocks": (2, 0),
    "animation over 12 frames from the opening frames": (0, 12),
}
CHECKS = {"edit": edit_check, "animation": animation_check, "rotation": rotation_check}


@dataclass(frozen=True)
class Target:
    """One target: what it asks, the statistic measured for it, its limit and whether the statistic
    must reach it from above (``at_most``) or below, with the detail behind the statistic."""

    asks: str
    measured: float | None
    limit: float
    at_most: bool
    unit: str
    detail: str

    def meets(self, value: float | None) -> bool:
        """Whether ``value`` lies on the target's side of its limit (None and NaN never do)."""
        if value is None or math.isnan(value):
            return False
        return value <= self.limit if self.at_most else value >= self.limit

    @property
    def met(self) -> bool:
        return self.meets(self.measured)


def case_target(
    asks: str, values: list[float], statistic, limit: float, at_most: bool, unit: str, cases: str
) -> Target:
    """A target over cases: ``statistic`` of their ``values`` (None without any), its detail counting the
    ``cases`` that meet the limit on their own."""
    target = Target(asks, float(statistic(values)) if values else None, limit, at_most, unit, "")
    return replace(target, detail=f"{sum(map(target.meets, values))} of {len(values)} {cases}")


def drag_case(backend, kind: str, label: str, *args) -> dict:
    """One drag check of ``kind`` (see ``CHECKS``), recorded under ``label`` (skipped where the object to
    drag is not on screen)."""
    return {"kind": kind, "label": label, **unless_hidden(CHECKS[kind], backend, *args)}


def drag_tasks(seeds: int, rotation_seeds: int) -> list[tuple]:
    """Edits of 8 px over ``EDIT_PROMPTS``, curved 12-frame animations over the first two of them, and 45
    degree rotations of a square drawn each way of ``ROTATIONS``."""
    config = TOY_DRAG_CONFIG
    edits = [("edit", "edit", p, s, config) for p in EDIT_PROMPTS for s in range(seeds)]
    animations = [("animation", "animation", p, s, config) for p in EDIT_PROMPTS[:2] for s in range(seeds)]
    rotations = [
        ("rotation", label, s, config, ROTATION_DEGREES, blocks, frames)
        for label, (blocks, frames) in ROTATIONS.items()
        for s in range(rotation_seeds)
    ]
    return edits + animations + rotations


def run_drags(backend, seeds: int, rotation_seeds: int, jobs: int, weights: str | None = None) -> list[dict]:
    """The drags of :func:`drag_tasks`, in ``jobs`` workers that each load ``weights`` (None: the shipped
    ones) when ``jobs`` > 1."""
    tasks = drag_tasks(seeds, rotation_seeds)
    if jobs == 1:
        return [drag_case(backend, *task) for task in tqdm(tasks, desc="drags")]
    return map_on_toy_model(drag_case, tasks, jobs, weights, {}, "drags", "drag")


def measure_speed(backend, blocks: int, repeats: int) -> dict:
    """Frames per second streaming without drags (decode included), and the time of a 6 px edit two blocks
    in and with a full KV window, computed on demand and prepared while the drag is drawn."""
    fpb = backend.layout.frames_per_block
    session = StreamSession(
        backend, DEFAULT_PROMPT, 0, TOY_DRAG_CONFIG, start_frames=opening_frames(DEFAULT_PROMPT, 0, fpb)
    )
    block_seconds = statistics.median(interleaved_block_seconds({"saved": session}, blocks)["saved"])
    edits = {
        where: {
            name: statistics.median(times)
            for name, times in prepared_edit_seconds(backend, TOY_DRAG_CONFIG, repeats, in_blocks).items()
        }
        for where, in_blocks in (("two_blocks_in", 2), ("full_window", full_window_blocks(backend)))
    }
    return {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "frames_per_second": fpb / block_seconds,
        "edit_seconds": statistics.median(edit_seconds(backend, TOY_DRAG_CONFIG, repeats)),
        "edit_seconds_by_window": edits,
    }


def _values(cases: list[dict], key: str) -> list[float]:
    return [c[key] for c in cases if c.get(key) is not None]


def drag_targets(drags: list[dict]) -> list[Target]:
    """The drag targets: edits landing within 2 px, animations within 3 px, turns within 45 +/- 7 degrees
    (each way of ``ROTATIONS``), and the non-editable region's PSNR over every drag that measures it."""
    ran = [d for d in drags if "skipped" not in d]
    targets = [
        case_target(
            "an 8 px edit lands the shape's centre within 2 px of its target",
            _values([d for d in ran if d["kind"] == "edit"], "error_px"),
            np.median,
            2.0,
            True,
            "px, median",
            "edits within 2 px",
        ),
        case_target(
            "an animation follows a curved 12-frame path with a mean error under 3 px",
            _values([d for d in ran if d["kind"] == "animation"], "mean_error_px"),
            np.mean,
            3.0,
            True,
            "px, mean",
            "animations within 3 px",
        ),
    ]
    for label in ROTATIONS:
        turns = _values([d for d in ran if d["label"] == label], "turned_degrees_mod_90")
        target = case_target(
            f"a 45 degree 2D rotation ({label}) turns a square by 45 +/- 7 degrees",
            [abs(t - ROTATION_DEGREES) for t in turns],
            np.median,
            ROTATION_TOLERANCE,
            True,
            "degrees off, median",
            "within 7 degrees",
        )
        median_turn = f"{np.median(turns):.1f}" if turns else "-"
        targets.append(replace(target, detail=f"{target.detail}; median turn {median_turn}"))
    psnrs = _values(ran, "psnr_non_editable_db")
    finite = [p for p in psnrs if math.isfinite(p)]
    target = case_target(
        "the non-editable region keeps a PSNR of at least 30 dB against the no-drag video",
        psnrs,
        np.median,
        PSNR_TARGET_DB,
        False,
        "dB, median",
        "drags at 30 dB or more",
    )
    lowest = f"{min(finite):.1f} dB" if finite else "-"
    moved = [d for d in ran if d["kind"] in ("edit", "animation")]
    side_effects = [
        case_target(
            "a drag spawns at most 5 px of another object's colour along its path (median)",
            _values(moved, "foreign_color_px"),
            np.median,
            5.0,
            True,
            "px, median",
            "drags at 5 px or fewer",
        ),
        case_target(
            "the objects not dragged keep at least 0.9 of their area (median)",
            _values(moved, "far_objects_area_ratio"),
            np.median,
            0.9,
            False,
            "area ratio, median",
            "drags at 0.9 or more",
        ),
        case_target(
            "a drag spawns or loses an object in at most 5 % of drags",
            [float(d["objects_spawned"] + d["objects_lost"] > 0) for d in moved if "objects_spawned" in d],
            np.mean,
            0.05,
            True,
            "share of drags",
            "drags that spawn or lose nothing",
        ),
    ]
    return [*targets, replace(target, detail=f"{target.detail}; lowest {lowest}"), *side_effects]


def rollout_targets(rollouts: dict) -> list[Target]:
    """The rollout targets: survival against the real clips', shape IoU with the own class's template,
    sizes, and the long stream still clean."""
    generated, long = rollouts["generated"], rollouts["long_run"]
    stds = long["block_std_first_last"]
    clean = (
        long["finite"] and all(long["objects_present_at_end"]) and long["lost_for_good_from_frame"] is None
    )
    return [
        Target(
            "objects survive 48 frames at least 90 % as often as in real clips",
            rollouts["survival_vs_real"],
            0.9,
            False,
            "ratio to real clips",
            f"survival {generated['survival']:.2f}, real clips {rollouts['real']['survival']:.2f}",
        ),
        Target(
            "shapes stay recognisable: IoU with the best template of the own class at least 0.7",
            generated["shape_iou"],
            0.7,
            False,
            "IoU, mean",
            "per class "
            + ", ".join(f"{k} {v:.2f}" for k, v in generated["shape_iou_per_class"].items())
            + f"; the best-fitting class is the own one in {generated['shape_recognized']:.0%} of object-frames",
        ),
        Target(
            "the own shape class is recognised in at least 85 % of object-frames over blocks 1-15",
            generated["shape_recognized"],
            0.85,
            False,
            "share of object-frames",
            "from real opening frames",
        ),
        Target(
            "... and in at least 75 % in free generation (no opening frames)",
            rollouts["free_generation"]["shape_recognized"],
            0.75,
            False,
            "share of object-frames",
            f"survival {rollouts['free_generation']['survival']:.2f}",
        ),
        Target(
            "objects spawned or lost in at most 5 % of blocks, from opening frames",
            generated["blocks_spawned_or_lost"],
            0.05,
            True,
            "share of blocks",
            f"spawned in {generated['blocks_spawned']:.0%}, lost in {generated['blocks_lost']:.0%} of "
            f"{generated['blocks']} blocks",
        ),
        Target(
            "... in free generation",
            rollouts["free_generation"]["blocks_spawned_or_lost"],
            0.05,
            True,
            "share of blocks",
            f"spawned in {rollouts['free_generation']['blocks_spawned']:.0%}, lost in "
            f"{rollouts['free_generation']['blocks_lost']:.0%}",
        ),
        Target(
            f"... over the {long['frames']}-frame stream",
            long["blocks_spawned_or_lost"],
            0.05,
            True,
            "share of blocks",
            f"spawned in {long['blocks_spawned']:.0%}, lost in {long['blocks_lost']:.0%}",
        ),
        Target(
            "sizes within 20 %",
            generated["size_error_median"],
            0.2,
            True,
            "size error, median",
            f"{generated['size_within_20_percent']:.0%} of object-frames within 20 %",
        ),
        Target(
            f"after {long['frames']} frames the scene is still clean",
            abs(stds[1] / stds[0] - 1) if clean else None,
            0.2,
            True,
            "change of the latent std",
            f"objects at {', '.join(f'{r:.2f}x' for r in long['object_area_ratios_at_end'])} their opening "
            f"area, background moved {long['background_shift_levels']:.1f} RGB levels, the scene held in "
            f"{np.mean(long['held_share_per_segment']):.0%} of the blocks, latents finite: {long['finite']}",
        ),
    ]


def speed_targets(speed: dict) -> list[Target]:
    windows = speed["edit_seconds_by_window"]
    return [
        Target(
            "at least 12 generated frames per second without drags",
            speed["frames_per_second"],
            12.0,
            False,
            "frames/s",
            f"{speed['threads']} threads, {speed['cpu']}",
        ),
        Target(
            "an edit drag applied in under 0.5 s",
            speed["edit_seconds"],
            0.5,
            True,
            "s, median",
            "on demand / prepared while drawn: "
            + "; ".join(
                f"{where.replace('_', ' ')} {t['on_demand']:.2f} / {t['prepared']:.2f} s"
                for where, t in windows.items()
            ),
        ),
    ]


def markdown(targets: list[Target]) -> str:
    rows = [
        f"| {t.asks} | {'-' if t.measured is None else f'{t.measured:.3g}'} {t.unit} "
        f"| {'<=' if t.at_most else '>='} {t.limit:g} | {'met' if t.met else 'missed'} | {t.detail} |"
        for t in targets
    ]
    return "\n".join(["| target | measured | limit | | detail |", "| --- | --- | --- | --- | --- |", *rows])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m lab scorecard", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--weights", default=None, help="a toy world weights folder (default: the shipped one)"
    )
    parser.add_argument("--scenes", type=at_least(1), default=16, help="rollout scenes of 48 frames")
    parser.add_argument("--long-frames", type=at_least(6), default=300)
    parser.add_argument("--seeds", type=at_least(1), default=8, help="seeds per edit and animation prompt")
    parser.add_argument("--rotation-seeds", type=at_least(1), default=20, help="seeds per way of rotating")
    parser.add_argument("--speed-blocks", type=at_least(1), default=20)
    parser.add_argument("--speed-repeats", type=at_least(1), default=5)
    parser.add_argument("--jobs", type=at_least(1), default=2, help="worker processes for rollouts and drags")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    backend = load_model(args.weights)
    rollouts = evaluate(backend, args.scenes, 48, 0, out, args.jobs, args.weights)
    rollouts["long_run"] = long_run(backend, args.long_frames, 0, out)
    drags = run_drags(backend, args.seeds, args.rotation_seeds, args.jobs, args.weights)
    speed = measure_speed(backend, args.speed_blocks, args.speed_repeats)
    targets = rollout_targets(rollouts) + drag_targets(drags) + speed_targets(speed)
    table = markdown(targets)
    (out / "scorecard.md").write_text(table + "\n")
    result = {
        "targets": [{**asdict(t), "met": t.met} for t in targets],
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "rollouts": rollouts,
        "drags": drags,
        "speed": speed,
    }
    (out / "scorecard.json").write_text(json.dumps(result, indent=2, default=float))
    print(table)
    return result
