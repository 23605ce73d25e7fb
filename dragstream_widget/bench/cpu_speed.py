"""Speed of the embedded toy model on this machine's CPU: streaming, edit drags, an animated block.

Streaming is timed with the saved settings (plain passes in int8), with every pass on the float model
and with the commit folded into the last step, block by block in turn.

    python -m dragstream_widget bench speed --out speed.json [--blocks 20] [--repeats 5]

Frames per second count generated frames including decoding; every number is a median of repeats
measured in this one run, side by side.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from ..arguments import at_least
from ..engine.config import EDIT_SETTINGS, DragConfig
from ..engine.presets import TOY_DRAG_CONFIG, TOY_FAST_EDIT_CONFIG
from ..engine.session import StreamSession
from ..geometry import curved_path
from ..models.toyworld.model import FLOAT_STREAMING, FOLDED_COMMIT, WEIGHTS_DIR, ToyWorldModel
from ..models.toyworld.scenes import DEFAULT_PROMPT, object_region, opening_frames
from ..ops import DragInstruction, HandleRegion, Mode, Operation
from . import report

# The toy settings the timings depend on: the shared ones, then an edit's own (if any).
TOY_SETTINGS = ("optimize_step", "iterations", "learning_rate", *EDIT_SETTINGS)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def edit_session(
    backend, config: DragConfig, shift: float = 6.0, blocks: int = 2
) -> tuple[StreamSession, DragInstruction]:
    """A session ``blocks`` generated blocks in, and an edit moving its red circle ``shift`` px right."""
    session = StreamSession(
        backend, DEFAULT_PROMPT, 0, config, start_frames=opening_frames(DEFAULT_PROMPT, 0, 3)
    )
    for _ in range(blocks):
        session.step()
    mask, center = object_region(session.frames()[-1], "red")
    target = (min(center[0] + shift, 63.0), center[1])
    edit = DragInstruction(
        Mode.EDIT, backend.layout.pixel_size, (HandleRegion(mask, Operation.TRANSLATE, center, (target,)),)
    )
    return session, edit


def edit_seconds(
    backend, config: DragConfig, repeats: int, shift: float = 6.0, blocks: int = 2
) -> list[float]:
    """Time of one edit drag of ``shift`` px (re-denoising the block on screen ``blocks`` generated blocks
    in), undone between repeats."""
    session, edit = edit_session(backend, config, shift, blocks)
    times = []
    for _ in range(repeats):
        times.append(seconds(lambda: session.apply(edit)))
        session.undo()
    return times


def prepared_edit_seconds(
    backend, config: DragConfig, repeats: int, blocks: int = 2
) -> dict[str, list[float]]:
    """Edit times with the reference features computed on demand and after ``StreamSession.prepare_drag``
    (untimed: the widget asks for it while the drag is drawn), interleaved."""
    session, edit = edit_session(backend, config, blocks=blocks)
    times: dict[str, list[float]] = {"on_demand": [], "prepared": []}
    for _ in range(repeats):
        for name, series in times.items():
            if name == "prepared":
                session.prepare_drag()
            series.append(seconds(lambda: session.apply(edit)))
            session.undo()
    return times


def prepare_seconds(backend, config: DragConfig, repeats: int) -> list[float]:
    """Time of ``StreamSession.prepare_drag`` on the block on screen two blocks in (the work done while a
    drag is drawn), dropped between repeats by an undone edit."""
    session, edit = edit_session(backend, config)
    times = []
    for _ in range(repeats):
        times.append(seconds(session.prepare_drag))
        session.apply(edit)
        session.undo()
    return times


def reference_modes_seconds(backend, config: DragConfig, repeats: int) -> dict[str, list[float]]:
    """Edit times with the reference features computed on demand (what a drag does) and with every
    cutoff computed up front in one batched pass (what the live probe asks for), interleaved."""
    session, edit = edit_session(backend, config)
    up_front = [False]
    session.events.subscribe("drag", lambda payload: payload["reference"].compute() if up_front[0] else None)
    times: dict[str, list[float]] = {"on_demand": [], "all_cutoffs_up_front": []}
    for _ in range(repeats):
        for name, flag in (("on_demand", False), ("all_cutoffs_up_front", True)):
            up_front[0] = flag
            times[name].append(seconds(lambda: session.apply(edit)))
            session.undo()
    return times


def full_window_blocks(backend) -> int:
    """Generated blocks after the opening block until the block on screen sees a full KV window: the
    window in whole blocks (the opening block and the generated ones before it fill it), at least 2; 2
    for an unbounded cache."""
    window = backend.cache_max_frames
    return max(2, -(-window // backend.layout.frames_per_block)) if window else 2


def edit_phases(backend, config: DragConfig, repeats: int) -> dict[str, float]:
    """Where an edit's time goes, medians in seconds, read off the session's events: the setup (until
    the "drag" event), the reference features (computed on demand for the cutoffs the switch draws, timed
    by themselves), the optimisation iterations (until the last "iteration" event, references excluded)
    and the rest (the remaining steps, the commit and the decode)."""
    session, edit = edit_session(backend, config)
    marks: list[tuple[str, float]] = []
    references = []
    for name in ("drag", "iteration"):
        session.events.subscribe(name, lambda _, n=name: marks.append((n, time.perf_counter())))
    session.events.subscribe("drag", lambda payload: references.append(payload["reference"]))
    phases = []
    for _ in range(repeats):
        marks.clear()
        start = time.perf_counter()
        session.apply(edit)
        end = time.perf_counter()
        session.undo()
        drag = next(t for n, t in marks if n == "drag")
        iterations = [t for n, t in marks if n == "iteration"]
        spent = references[-1].seconds
        phases.append(
            {
                "setup": drag - start,
                "references": spent,
                "iterations": iterations[-1] - drag - spent,
                "rest": end - iterations[-1],
            }
        )
    medians = {name: statistics.median(p[name] for p in phases) for name in phases[0]}
    medians["per_iteration"] = medians["iterations"] / len(iterations)
    return medians


def interleaved_block_seconds(sessions: dict[str, StreamSession], blocks: int) -> dict[str, list[float]]:
    """Seconds per generated block of each session (after one warm-up block), the sessions taking turns
    block by block so that a change in the machine's speed hits them alike."""
    for session in sessions.values():
        session.step()
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(blocks):
        for name, session in sessions.items():
            times[name].append(seconds(session.step))
    return times


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blocks", type=at_least(1), default=20, help="generated blocks timed per setting")
    parser.add_argument("--repeats", type=at_least(1), default=5, help="repeats of each drag timing")
    parser.add_argument("--out", default=None, help="write the numbers to this JSON file")


def main(args: argparse.Namespace) -> dict:
    model = ToyWorldModel.load(WEIGHTS_DIR)
    backend, float_backend = model.backend(), model.backend(**FLOAT_STREAMING)
    fpb = backend.layout.frames_per_block
    streaming = {
        "saved": backend,
        "float_streaming": float_backend,
        "folded_commit": model.backend(**FOLDED_COMMIT),
    }
    sessions = {
        name: StreamSession(
            b, DEFAULT_PROMPT, 0, TOY_DRAG_CONFIG, start_frames=opening_frames(DEFAULT_PROMPT, 0, fpb)
        )
        for name, b in streaming.items()
    }
    block_times = interleaved_block_seconds(sessions, args.blocks)
    session = sessions["saved"]
    mask, center = object_region(session.frames()[-1], "blue")
    path = curved_path(center, 10.0, 4 * fpb, backend.layout.pixel_width)
    session.apply(
        DragInstruction(
            Mode.ANIMATE,
            backend.layout.pixel_size,
            (HandleRegion(mask, Operation.TRANSLATE, center, tuple(path)),),
        )
    )
    animated = [seconds(session.step) for _ in range(4)]
    result = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "seconds_per_block_no_drag": statistics.median(block_times["saved"]),
        "frames_per_second_no_drag": fpb / statistics.median(block_times["saved"]),
        "frames_per_second_folded_commit": fpb / statistics.median(block_times["folded_commit"]),
        "frames_per_second_float_streaming": fpb / statistics.median(block_times["float_streaming"]),
        "edit_seconds_toy_config": statistics.median(edit_seconds(backend, TOY_DRAG_CONFIG, args.repeats)),
        "edit_seconds_toy_fast_edit_config": statistics.median(
            edit_seconds(backend, TOY_FAST_EDIT_CONFIG, args.repeats)
        ),
        "edit_seconds_toy_config_float_streaming": statistics.median(
            edit_seconds(float_backend, TOY_DRAG_CONFIG, args.repeats)
        ),
        "edit_seconds_toy_config_14px": statistics.median(
            edit_seconds(backend, TOY_DRAG_CONFIG, args.repeats, 14.0)
        ),
        # Two blocks in, the edited block sees 6 frames of context; from here on, a full window.
        "edit_seconds_toy_config_full_window": statistics.median(
            edit_seconds(backend, TOY_DRAG_CONFIG, args.repeats, blocks=full_window_blocks(backend))
        ),
        # The widget computes an edit's reference features while the drag is drawn.
        "edit_seconds_prepared": {
            where: {
                name: statistics.median(times)
                for name, times in prepared_edit_seconds(
                    backend, TOY_DRAG_CONFIG, args.repeats, blocks
                ).items()
            }
            for where, blocks in (("two_blocks_in", 2), ("full_window", full_window_blocks(backend)))
        },
        "prepare_seconds_toy_config": statistics.median(
            prepare_seconds(backend, TOY_DRAG_CONFIG, args.repeats)
        ),
        "edit_seconds_paper_config": statistics.median(edit_seconds(backend, DragConfig(), args.repeats)),
        "edit_phases_toy_config": edit_phases(backend, TOY_DRAG_CONFIG, args.repeats),
        "edit_seconds_by_reference_mode": {
            name: statistics.median(times)
            for name, times in reference_modes_seconds(backend, TOY_DRAG_CONFIG, args.repeats).items()
        },
        "seconds_per_animated_block_toy_config": statistics.median(animated),
        "toy_config": {name: getattr(TOY_DRAG_CONFIG, name) for name in TOY_SETTINGS},
        "toy_fast_edit_config": {name: getattr(TOY_FAST_EDIT_CONFIG, name) for name in TOY_SETTINGS},
        "blocks": args.blocks,
        "finite": bool(np.isfinite(session.latents().numpy()).all()),
    }
    return report(result, args.out)
