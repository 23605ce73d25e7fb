"""What a drag costs: ``python -m dragstream_widget bench speed --out DIR``.

Two parts, written to ``DIR/speed.json`` and ``DIR/speed.md``:

- ``embedded``: the embedded toy model on this machine's CPU, timed side by side in one run: a plain
  block and, under the shipped settings and those before them (:data:`PER_SEGMENT`), an animated
  block and a 6 px edit on demand and prepared while drawn, with their ratios to the plain block
  (:func:`.cpu_speed.drag_costs`); the machine's load before and after.
- ``real_size``: a drag of each reference label at the Wan-1.3B shape and 832x480, counted on meta
  tensors (:mod:`.real_size`): iterations per dragged block, and the FLOPs of a dragged block over a
  plain one, streaming decode included, part by part. Each part has a ``seconds`` slot, left empty
  here, for a timed run on a GPU.

Top-level ``drag_overhead_ratio`` is the animated block's time over the plain block's on this CPU;
``drag_flop_ratio_real_size`` is the FLOP ratio of the reference animation's dragged blocks under
the settings the engine ships for the real-size model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from dataclasses import replace
from pathlib import Path

import torch

from ..arguments import at_least
from ..engine.config import EDIT_SETTINGS
from ..engine.presets import TOY_DRAG_CONFIG
from ..labels import import_labels
from ..models.toyworld.model import WEIGHTS_DIR, ToyWorldModel
from ..ops import InvalidInstruction
from .cpu_speed import drag_costs
from .gpu_pipeline import REFERENCE_LABELS
from .real_size import real_size_costs

ANIMATION_LABELS, EDIT_LABELS = "animation-monster", "editing-pigeon"


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


# The embedded model's drag settings before drags were made cheaper, timed beside the shipped ones:
# four iterations per trajectory segment, every animated block walked from the reference frame.
PER_SEGMENT = replace(
    TOY_DRAG_CONFIG,
    walk_from="reference",
    animation_max_iterations=None,
    **dict.fromkeys(EDIT_SETTINGS),
)


def embedded_costs(repeats: int) -> dict:
    """Part (a): the embedded model's drag costs on this CPU, under the shipped settings and those before
    them, medians of one run taken in turns."""
    backend = ToyWorldModel.load(WEIGHTS_DIR).backend()
    load_before = os.getloadavg()
    measured = drag_costs(backend, {"shipped": TOY_DRAG_CONFIG, "per_segment": PER_SEGMENT}, repeats)
    plain = statistics.median(measured["plain_block"])
    settings = {}
    for name in ("shipped", "per_segment"):
        seconds = {kind: statistics.median(times) for kind, times in measured[name]["seconds"].items()}
        settings[name] = {
            "seconds": seconds,
            "ratios_to_plain_block": {kind: s / plain for kind, s in seconds.items()},
            "iterations": measured[name]["iterations"],
            "all_seconds": measured[name]["seconds"],
        }
    return {
        "model": "toy world (embedded)",
        "device": "cpu",
        "repeats": repeats,
        "load_average_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        "seconds_plain_block": plain,
        "all_seconds_plain_block": measured["plain_block"],
        "settings": settings,
    }


def markdown(result: dict) -> str:
    """The run as markdown tables."""
    e, r, m = result["embedded"], result["real_size"], result["machine"]
    lines = [
        "# Drag cost",
        "",
        f"Embedded model on `{m['cpu']}` ({m['cores']} cores, {m['threads']} threads), load "
        f"{e['load_average_1min']['before']:.1f} before and {e['load_average_1min']['after']:.1f} after; "
        f"medians of {e['repeats']} rounds taken in turns. A plain block: {e['seconds_plain_block']:.3f} s.",
        "",
        "| settings | block | seconds | over a plain block | iterations |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, costs in e["settings"].items():
        for kind, s in costs["seconds"].items():
            its = costs["iterations"]["animated_block" if kind == "animated_block" else "edit"]
            counts = ", ".join(str(i) for i in sorted(set(its)))
            ratio = costs["ratios_to_plain_block"][kind]
            lines.append(f"| {name} | {kind.replace('_', ' ')} | {s:.3f} | {ratio:.2f}x | {counts} |")
    lines += ["", f"Real size: {r['model']}.", "", "| drag | settings | iterations per block | FLOP ratio |"]
    lines.append("| --- | --- | --- | --- |")
    for name, by_setting in r["drags"].items():
        for setting, cost in by_setting.items():
            its = ", ".join(str(i) for i in cost["iterations_per_block"])
            lines.append(f"| {name} | {setting} | {its} | {cost['flop_ratio']:.2f} |")
    lines += [
        "",
        f"drag_overhead_ratio {result['drag_overhead_ratio']:.2f}, "
        f"drag_flop_ratio_real_size {result['drag_flop_ratio_real_size']:.2f}",
        "",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder for speed.json and speed.md")
    parser.add_argument("--repeats", type=at_least(1), default=5, help="rounds of the timed drags")
    parser.add_argument(
        "--labels", default=str(REFERENCE_LABELS), help="folder of the reference label folders"
    )
    parser.add_argument(
        "--threads",
        type=at_least(1),
        default=None,
        help="torch threads for the timings (default: torch's; on a loaded machine 1 keeps them steady)",
    )


def main(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    labels_dir = Path(args.labels)
    try:
        labels = {name: import_labels(labels_dir / name) for name in (ANIMATION_LABELS, EDIT_LABELS)}
    except (InvalidInstruction, OSError) as error:
        raise SystemExit(f"--labels: {error}") from None
    real = real_size_costs(labels)
    embedded = embedded_costs(args.repeats)
    result = {
        "drag_overhead_ratio": embedded["settings"]["shipped"]["ratios_to_plain_block"]["animated_block"],
        "drag_flop_ratio_real_size": real["drags"][ANIMATION_LABELS]["shipped"]["flop_ratio"],
        "machine": machine(),
        "embedded": embedded,
        "real_size": real,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps(result, indent=1))
    (out / "speed.md").write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {out / 'speed.json'}, {out / 'speed.md'}")
    return result
