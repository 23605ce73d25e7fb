"""Drift under repeated drags: the setting of the paper's Figure 2a, where drags accumulate.

Each run streams a toy-world prompt from rendered opening frames and then, at every block, edits
the frame on screen, moving the prompt's first object a few pixels left or right (alternating, so it
stays in the frame), and streams on. The same blocks are generated without any drag, with the drags
but without ADSR, with the paper's ADSR, and with the released code's ADSR options. Latent drift is
measured per latent frame against the undragged stream: |mean - mean_ref| + |std - std_ref|.

    python -m dragstream_widget bench drift --out DIR [--drags 8] [--runs 8] [--jobs N]

writes DIR/drift.json (per-frame statistics of every run and variant, and a summary with paired
differences) and DIR/drift.png (latent statistics per frame for the first run, and the mean drift
after each drag over all runs).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..arguments import add_float_streaming_flag, at_least
from ..engine.config import DragConfig
from ..engine.session import StreamSession, latent_statistics
from ..models.base import VideoBackend
from ..models.toyworld.scenes import object_region, opening_frames
from ..ops import DragInstruction, HandleRegion, Mode, Operation
from .workers import map_on_toy_model

PROMPTS = (
    "a red circle and a blue square on a striped background",
    "a yellow star on a plain background",
    "a green square and a white circle on a gradient background",
    "a cyan triangle on a checkered background",
)
SHIFT_PX = 6.0


def variants(base: DragConfig) -> dict[str, DragConfig | None]:
    """None: the stream without drags."""
    return {
        "no drag": None,
        "drag without ADSR": base.without("adsr"),
        "drag with ADSR": replace(base, adsr=True),
        "drag with released ADSR": replace(base, adsr=True, adsr_reference="own", adsr_stats="frame_channel"),
    }


def shuttle_edit(frame: np.ndarray, color: str, k: int) -> DragInstruction | None:
    """The k-th drag: move the object ``SHIFT_PX`` right on even k, left on odd k, the other way where
    that would leave the frame (None: not visible)."""
    try:
        mask, center = object_region(frame, color)
    except RuntimeError:
        return None
    direction = 1.0 if k % 2 == 0 else -1.0
    if not 0 <= center[0] + direction * SHIFT_PX <= frame.shape[1] - 1:
        direction = -direction
    target = (center[0] + direction * SHIFT_PX, center[1])
    region = HandleRegion(mask, Operation.TRANSLATE, center, (target,))
    return DragInstruction(Mode.EDIT, frame.shape[:2], (region,))


def run_variant(
    backend: VideoBackend, prompt: str, seed: int, config: DragConfig | None, drags: int, base: DragConfig
) -> dict:
    """Per-latent-frame statistics of the stream from the first drag on, and how many drags ran."""
    fpb = backend.layout.frames_per_block
    session = StreamSession(
        backend, prompt, seed, config or base, start_frames=opening_frames(prompt, seed, fpb)
    )
    session.step()
    first = session.num_blocks - 1
    color = prompt.split()[1]
    applied = 0
    for k in range(drags):
        if config is not None:
            instruction = shuttle_edit(session.frames()[-1], color, k)
            if instruction is not None:
                session.apply(instruction)
                applied += 1
        session.step()
    stats = [latent_statistics(b.index, b.z0) for b in session.blocks[first:]]
    return {
        "mean": [v for s in stats for v in s["mean"]],
        "std": [v for s in stats for v in s["std"]],
        "drags_applied": applied,
    }


def frame_drift(run: dict, reference: dict) -> np.ndarray:
    """|mean - mean_ref| + |std - std_ref| per latent frame."""
    mean, std = np.array(run["mean"]), np.array(run["std"])
    return np.abs(mean - np.array(reference["mean"])) + np.abs(std - np.array(reference["std"]))


def summarize(runs: list[dict], frames_per_block: int) -> dict:
    """Per variant: mean drift over all frames and over the last block, per-drag drift curves, and
    the paired differences of both against the drag without ADSR."""
    names = [n for n in runs[0]["variants"] if n != "no drag"]
    drift = {
        n: np.array([frame_drift(r["variants"][n], r["variants"]["no drag"]) for r in runs]) for n in names
    }
    out = {}
    for name, values in drift.items():  # values: [runs, frames]
        per_run = values.mean(1)
        blocks = values.reshape(len(runs), -1, frames_per_block).mean(2)
        entry = {
            "drift_mean": float(per_run.mean()),
            "drift_last_block": float(blocks[:, -1].mean()),
            "drift_per_block": blocks.mean(0).tolist(),
        }
        if name != "drag without ADSR":
            without = drift["drag without ADSR"]
            entry["minus_without_adsr"] = paired(per_run - without.mean(1))
            last = blocks[:, -1] - without.reshape(len(runs), -1, frames_per_block).mean(2)[:, -1]
            entry["minus_without_adsr_last_block"] = paired(last)
        out[name] = entry
    return out


def paired(diff: np.ndarray) -> dict:
    """Mean of paired differences, its standard error and how many are below zero."""
    return {
        "mean": float(diff.mean()),
        "stderr": float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else None,
        "lower_in_runs": int((diff < 0).sum()),
        "runs": len(diff),
    }


def plot(results: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.4))
    axes = fig.subplots(1, 3)
    colors = {
        "no drag": "black",
        "drag without ADSR": "tab:purple",
        "drag with ADSR": "tab:blue",
        "drag with released ADSR": "tab:orange",
    }
    first = results["runs"][0]
    for name, run in first["variants"].items():
        axes[0].plot(run["mean"], color=colors[name], label=name)
        axes[1].plot(run["std"], color=colors[name], label=name)
    axes[0].set_title(f"latent mean per frame ({first['prompt'].split(' on ')[0]})", fontsize=9)
    axes[1].set_title("latent std per frame", fontsize=9)
    for ax in axes[:2]:
        ax.set_xlabel("latent frame from the first drag on")
    axes[1].legend(fontsize=7)
    for name, entry in results["summary"].items():
        axes[2].plot(
            range(1, len(entry["drift_per_block"]) + 1),
            entry["drift_per_block"],
            "o-",
            color=colors[name],
            label=name,
            ms=3,
        )
    axes[2].set_title(f"drift against no drag, mean of {len(results['runs'])} runs", fontsize=9)
    axes[2].set_xlabel("block (a drag at each)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def run_streams(backend: VideoBackend, prompt: str, seed: int, base: DragConfig, drags: int) -> dict:
    """One prompt and seed under every variant."""
    streams = {
        name: run_variant(backend, prompt, seed, config, drags, base)
        for name, config in variants(base).items()
    }
    return {"prompt": prompt, "seed": seed, "variants": streams}


def run(
    backend: VideoBackend,
    base: DragConfig,
    out: str | Path,
    drags: int,
    runs: int,
    jobs: int = 1,
    weights: str | None = None,
    streaming: dict | None = None,
) -> dict:
    """Every prompt and seed pair; with ``jobs`` > 1, in that many worker processes of one thread
    each, each loading the toy world model from ``weights`` (None: the shipped ones) with the ``streaming``
    overrides of ``backend``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = [(PROMPTS[k % len(PROMPTS)], k // len(PROMPTS)) for k in range(runs)]
    start = time.perf_counter()
    if jobs == 1:
        records = [
            run_streams(backend, prompt, seed, base, drags)
            for prompt, seed in tqdm(plan, "repeated drags", unit="run")
        ]
    else:
        tasks = [(prompt, seed, base, drags) for prompt, seed in plan]
        records = map_on_toy_model(
            run_streams, tasks, jobs, weights, streaming or {}, "repeated drags", "run"
        )
    results = {
        "settings": {
            "drags": drags,
            "runs": runs,
            "shift_px": SHIFT_PX,
            "device": str(backend.device),
            "streaming": streaming or {},
            "seconds": round(time.perf_counter() - start, 1),
        },
        "runs": records,
        "summary": summarize(records, backend.layout.frames_per_block),
    }
    (out / "drift.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "drift.png")
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder for drift.json and drift.png")
    parser.add_argument("--drags", type=at_least(1), default=8, help="drags in a row, one per block")
    parser.add_argument("--runs", type=at_least(1), default=8, help="prompt and seed pairs")
    parser.add_argument(
        "--weights", default=None, help="toy world weights folder (default: the shipped ones)"
    )
    add_float_streaming_flag(parser)
    parser.add_argument(
        "--jobs", type=at_least(1), default=1, help="worker processes (one thread each) for the runs"
    )


def main(args: argparse.Namespace) -> dict:
    from ..engine.presets import TOY_DRAG_CONFIG
    from ..models.toyworld.model import FLOAT_STREAMING, load_model

    streaming = FLOAT_STREAMING if args.float_streaming else {}
    backend = load_model(args.weights, **streaming)
    results = run(
        backend, TOY_DRAG_CONFIG, args.out, args.drags, args.runs, args.jobs, args.weights, streaming
    )
    print(json.dumps(results["summary"], indent=1))
    print(f"wrote {args.out}/drift.json, {args.out}/drift.png")
    return results
