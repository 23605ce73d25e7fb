"""Where do streamed shapes go? Two probes of the toy world model's rollouts, on the CPU.

    python -m lab shape-probe --out runs/probe --scenes 40 --jobs 2

* By object: each scene is streamed on from its real opening block, and every polygon (square,
  triangle, star) is checked on the first frame of each generated block from the third on (where
  shapes have settled): recognised as its own class or not, and its IoU with its own class's best
  template. The summary splits recognition by the object's radius and by how fast it spins, which
  tells the coarse token grid (small shapes would melt first) from averaging over unknown rotation
  (fast spinners would melt first).
* Swapped prompt: the same openings streamed once with their own prompt and once with every shape
  word exchanged (square -> star -> triangle -> square, circle -> square). Per generated block, the
  share of objects recognised as their real class and as the class the prompt names tells whether
  the model draws shapes from its context or from its prompt.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from dragstream_widget.arguments import at_least
from dragstream_widget.bench.workers import map_on_toy_model
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.models import base
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR
from dragstream_widget.models.toyworld.world import segment_object

from .evaluate import best_template_iou, opening_scene, recognized_shape

SWAPPED_SHAPE = {"square": "star", "star": "triangle", "triangle": "square", "circle": "square"}
RADIUS_BINS = (7.0, 8.7, 10.3, 12.1)  # the world's radii, 7-12 px, in thirds
SPIN_BINS = (0.0, 0.03, 0.06, 0.09, 0.121)  # |radians per frame|, the world's up to 0.12


def swapped_prompt(prompt: str) -> str:
    """``prompt`` with every shape word exchanged for another (:data:`SWAPPED_SHAPE`)."""
    return re.sub(r"\b(square|star|triangle|circle)\b", lambda m: SWAPPED_SHAPE[m.group(1)], prompt)


def object_shapes(backend: base.VideoBackend, index: int, scene, real, frames: int, swap: bool) -> list[dict]:
    """Stream ``scene`` on from its real opening block (session seed ``index``), with its prompt or the
    swapped one; per object and generated block whose first frame shows it (area within 0.5-2x of its
    opening area): the class it is recognised as and its IoU with its own class's best template."""
    fpb = backend.layout.frames_per_block
    prompt = swapped_prompt(scene.prompt) if swap else scene.prompt
    session = StreamSession(backend, prompt, seed=index, start_frames=real.frames[:fpb])
    while len(session.frames()) < frames:
        session.step()
    video = session.frames()
    records = []
    for obj in scene.objects:
        opening = float(segment_object(real.frames[fpb - 1], obj.color).sum())
        for start in range(fpb, frames, fpb):
            mask = segment_object(video[start], obj.color)
            if not opening or not 0.5 <= mask.sum() / opening <= 2.0:
                continue
            own = best_template_iou(mask, obj.shape, obj.radius)
            records.append(
                {
                    "scene": index,
                    "block": start // fpb,
                    "shape": obj.shape,
                    "prompted": SWAPPED_SHAPE[obj.shape] if swap else obj.shape,
                    "seen": recognized_shape(mask, obj.radius, {obj.shape: own}),
                    "own_iou": own,
                    "radius": obj.radius,
                    "spin": abs(obj.angular_velocity),
                }
            )
    return records


def recognition_by(records: list[dict], key: str, edges: tuple[float, ...]) -> list[dict]:
    """Own-class recognition and IoU of ``records`` in bins of ``key``."""
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        chosen = [r for r in records if low <= r[key] < high]
        rows.append(
            {
                key: [low, high],
                "object_frames": len(chosen),
                "objects": len({(r["scene"], r["shape"], r["radius"]) for r in chosen}),
                "recognised": float(np.mean([r["seen"] == r["shape"] for r in chosen])) if chosen else None,
                "own_iou": float(np.mean([r["own_iou"] for r in chosen])) if chosen else None,
            }
        )
    return rows


def summarize(plain: list[dict], swapped: list[dict], settled_from: int = 3) -> dict:
    polygons = [r for r in plain if r["shape"] != "circle" and r["block"] >= settled_from]
    blocks = sorted({r["block"] for r in plain + swapped})

    def shares(records: list[dict]) -> list[dict]:
        rows = []
        for block in blocks:
            chosen = [r for r in records if r["block"] == block and r["shape"] != "circle"]
            rows.append(
                {
                    "block": block,
                    "object_frames": len(chosen),
                    "real_class": float(np.mean([r["seen"] == r["shape"] for r in chosen]))
                    if chosen
                    else None,
                    "prompted_class": float(np.mean([r["seen"] == r["prompted"] for r in chosen]))
                    if chosen
                    else None,
                }
            )
        return rows

    return {
        "polygons_from_block": settled_from,
        "recognised": float(np.mean([r["seen"] == r["shape"] for r in polygons])) if polygons else None,
        "by_radius": recognition_by(polygons, "radius", RADIUS_BINS),
        "by_spin": recognition_by(polygons, "spin", SPIN_BINS),
        "own_prompt_per_block": shares(plain),
        "swapped_prompt_per_block": shares(swapped),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m lab shape-probe", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", default=str(WEIGHTS_DIR))
    parser.add_argument("--scenes", type=at_least(1), default=40)
    parser.add_argument("--frames", type=at_least(6), default=48)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=at_least(1), default=2, help="worker processes of one thread each")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    openings = [opening_scene(rng, 3, args.frames) for _ in range(args.scenes)]
    tasks = [
        (i, scene, real, args.frames, swap)
        for swap in (False, True)
        for i, (scene, real) in enumerate(openings)
    ]
    runs = map_on_toy_model(object_shapes, tasks, args.jobs, args.weights, {}, "streams", "stream")
    plain = [r for task, run in zip(tasks, runs) if not task[-1] for r in run]
    swapped = [r for task, run in zip(tasks, runs) if task[-1] for r in run]
    report = {
        "weights": args.weights,
        "scenes": args.scenes,
        "frames": args.frames,
        "seed": args.seed,
        **summarize(plain, swapped),
        "records": {"own_prompt": plain, "swapped_prompt": swapped},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shape_probe.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "records"}, indent=1))
    return report
