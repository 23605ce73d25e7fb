"""``soak``: stream a long session with drags on the embedded model and watch memory stay flat.

Streams ``--frames`` frames from rendered opening frames; every ``--drag-every`` frames it drags the
prompt's first object a few pixels (edits and short animations in turn). Every 500 frames it prints
the resident memory (after the C heap hands back its free pages) and the statistics of the latest latent block. The session drops the frames of
old blocks (``keep_frames=False``), so what grows is only the action log. After the warm-up the
resident memory may grow by at most ``--bound-mb``; past that, or on a non-finite latent, it exits
with status 1.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .arguments import at_least
from .engine.session import StreamSession
from .models.base import VideoBackend
from .models.toyworld.scenes import DEFAULT_PROMPT, ObjectNotVisible, object_region, opening_frames
from .models.toyworld.world import parse_prompt
from .ops import DragInstruction, HandleRegion, InvalidInstruction, Mode, Operation

REPORT_EVERY = 500  # frames


def resident_mb() -> float:
    """This process's resident memory in MB (Linux ``/proc``), measured after the C heap has handed its
    free pages back to the system (glibc's ``malloc_trim``), so that what is counted is what is held,
    not what the allocator keeps free for later."""
    release_free_heap()
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def release_free_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        pass


def soak_drag(session: StreamSession, color: str, count: int) -> DragInstruction:
    """The ``count``-th drag: the object of ``color`` on screen moved 4 px left or right; an edit, or
    every other time an animation of three steps. A square in the middle when the object is gone."""
    frame = session.blocks[-1].frames[-1]
    height, width = frame.shape[:2]
    try:
        mask, (x, y) = object_region(frame, color)
    except ObjectNotVisible:
        mask = np.zeros((height, width), bool)
        mask[height // 2 - 4 : height // 2 + 4, width // 2 - 4 : width // 2 + 4] = True
        x, y = width / 2, height / 2
    sign = 1 if count % 4 < 2 else -1
    step = [min(max(x + sign * 4 * k, 0.0), width - 1.0) for k in (1, 2, 3)]
    if count % 2 == 0:
        region = HandleRegion(mask, Operation.TRANSLATE, (x, y), ((step[0], y),))
        return DragInstruction(Mode.EDIT, (height, width), (region,))
    region = HandleRegion(mask, Operation.TRANSLATE, (x, y), tuple((s, y) for s in step))
    return DragInstruction(Mode.ANIMATE, (height, width), (region,))


def run_soak(
    backend: VideoBackend,
    frames: int,
    drag_every: int,
    warmup: int,
    bound_mb: float,
    prompt: str = DEFAULT_PROMPT,
    seed: int = 0,
    report=print,
) -> dict:
    """Stream and drag as the module docstring says; returns the reports and whether memory held."""
    layout = backend.layout
    start = opening_frames(prompt, seed, layout.frames_per_block)
    session = StreamSession(backend, prompt, seed, start_frames=start, keep_frames=False)
    color = parse_prompt(prompt).objects[0][0]
    rows, done, drags, next_drag, next_report = [], 0, 0, drag_every, REPORT_EVERY
    baseline = None
    started = time.perf_counter()
    with tqdm(total=frames, desc="soak", unit="frame") as bar:
        while done < frames:
            if done >= next_drag:
                try:
                    session.apply(soak_drag(session, color, drags))
                    drags += 1
                except InvalidInstruction as error:  # e.g. the object sits on the handle's edge
                    report(f"frame {done}: drag skipped: {error}")
                next_drag += drag_every
            record = session.step()
            done += record.num_frames
            bar.update(record.num_frames)
            if baseline is None and done >= warmup:
                baseline = resident_mb()
            if done >= next_report:
                next_report += REPORT_EVERY
                z = record.z0.float()
                row = {
                    "frames": done,
                    "blocks": session.num_blocks,
                    "drags": drags,
                    "rss_mb": round(resident_mb(), 1),
                    "latent_mean": round(z.mean().item(), 4),
                    "latent_std": round(z.std().item(), 4),
                    "latent_min": round(z.min().item(), 3),
                    "latent_max": round(z.max().item(), 3),
                    "finite": bool(torch.isfinite(z).all()),
                    "log_entries": len(session.log),
                    "seconds": round(time.perf_counter() - started, 1),
                }
                rows.append(row)
                report(" ".join(f"{k}={v}" for k, v in row.items()))
    after = [r["rss_mb"] for r in rows if r["frames"] > warmup]
    growth = max(after) - baseline if after and baseline is not None else 0.0
    held = growth <= bound_mb and all(r["finite"] for r in rows)
    return {
        "frames": done,
        "drag_every": drag_every,
        "warmup_frames": warmup,
        "bound_mb": bound_mb,
        "baseline_rss_mb": baseline,
        "growth_after_warmup_mb": round(growth, 1),
        "held": held,
        "threads": torch.get_num_threads(),
        "reports": rows,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=at_least(1), default=10_000)
    parser.add_argument("--drag-every", type=at_least(1), default=50, help="frames between drags")
    # The history fills after 16 drags and 16 plain blocks (800 frames at a drag every 50), and the heap
    # settles later still: on the embedded model the memory stopped growing by 2000 frames.
    parser.add_argument("--warmup", type=at_least(0), default=2000, help="frames before memory is measured")
    parser.add_argument("--bound-mb", type=float, default=64.0, help="allowed growth after the warm-up")
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch threads")
    parser.add_argument("--out", help="also write the reports to this JSON file")


def main(args: argparse.Namespace) -> dict:
    from .models.toyworld.model import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    result = run_soak(load_model(), args.frames, args.drag_every, args.warmup, args.bound_mb)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    verdict = "held" if result["held"] else "GREW PAST THE BOUND"
    print(
        f"memory {verdict}: {result['growth_after_warmup_mb']} MB after the warm-up "
        f"(bound {args.bound_mb} MB, baseline {result['baseline_rss_mb']:.1f} MB)"
    )
    if not result["held"]:
        sys.exit(1)
    return result
