"""Timings of the embedded toy model on this machine's CPU: plain blocks, edits (on demand and prepared
while drawn), animated blocks, and where an edit's time goes. ``python -m dragstream_widget bench speed``
(:mod:`.speed`) runs :func:`drag_costs`; the scorecard times edits and streaming with the rest.

Every timing that is compared with another is taken in turns with it, in one run, so that a change in
the machine's speed hits both alike.
"""

from __future__ import annotations

import statistics
import time

from tqdm import tqdm

from ..engine.config import DragConfig
from ..engine.session import StreamSession
from ..geometry import curved_path
from ..models.toyworld.scenes import DEFAULT_PROMPT, object_region, opening_frames
from ..ops import DragInstruction, HandleRegion, Mode, Operation


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


def animation_of(session: StreamSession, blocks: int) -> DragInstruction:
    """An animation of the blue square along a curved path of ``blocks`` blocks' frames."""
    layout = session.backend.layout
    mask, center = object_region(session.frames()[-1], "blue")
    path = curved_path(center, 10.0, blocks * layout.frames_per_block, layout.pixel_width)
    region = HandleRegion(mask, Operation.TRANSLATE, center, tuple(path))
    return DragInstruction(Mode.ANIMATE, layout.pixel_size, (region,))


def drag_costs(
    backend, settings: dict[str, DragConfig], repeats: int, animated_blocks: int = 4
) -> dict[str, dict[str, list]]:
    """Seconds of a plain block and, under each of ``settings``, of an animated block and a 6 px edit on
    demand and prepared while drawn, all taken in turns ``repeats`` times on one stream two blocks in,
    everything undone after each: ``animated_blocks`` plain blocks, then for each setting the same blocks
    animated, the edit on demand and the edit prepared. Also the iterations each drag ran.
    Returns ``{"plain_block": [...], name: {"seconds": {...}, "iterations": {...}}}``."""
    session, edit = edit_session(backend, next(iter(settings.values())))
    animation = animation_of(session, animated_blocks)
    plain: list[float] = []
    costs = {
        name: {
            "seconds": {"animated_block": [], "edit_on_demand": [], "edit_prepared": []},
            "iterations": {"animated_block": [], "edit": []},
        }
        for name in settings
    }
    for _ in tqdm(range(repeats), desc="drag costs on this CPU", unit="round"):
        plain += [seconds(session.step) for _ in range(animated_blocks)]
        session.rewind(session.num_blocks - animated_blocks)
        for name, config in settings.items():
            session.config = config
            times, iterations = costs[name]["seconds"], costs[name]["iterations"]
            session.apply(animation)
            times["animated_block"] += [seconds(session.step) for _ in range(animated_blocks)]
            iterations["animated_block"] += [len(b.losses) for b in session.blocks[-animated_blocks:]]
            session.undo_action()  # the animation with the blocks it drove
            for kind in ("edit_on_demand", "edit_prepared"):
                if kind == "edit_prepared":
                    session.prepare_drag()  # untimed: the widget asks for it while the drag is drawn
                times[kind].append(seconds(lambda: session.apply(edit)))
                iterations["edit"].append(len(session.blocks[-1].losses))
                session.undo()
    return {"plain_block": plain, **costs}
