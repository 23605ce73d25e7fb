"""The quality bench over worker processes: each worker (one thread) loads the model, the tracker and
the Frechet extractor once, then runs whole cases; the results equal a run in one process."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...engine.config import DragConfig
from ..workers import map_in_workers
from .cases import BenchCase
from .runner import CaseRun, bench_case


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to rebuild the bench's tools (all of it picklable)."""

    weights: str | None
    device: str
    tracker: str
    tracker_checkpoint: str | None
    frechet: str
    frechet_weights: str | None
    variants: tuple[str, ...]
    base: DragConfig
    dai_radius: int
    streaming: dict  # overrides of the toy model's saved streaming settings


_tools: dict = {}


def _start(setup: WorkerSetup) -> None:
    import torch

    from ...models.toyworld.model import load_model
    from .features import make_extractor
    from .tracking import make_tracker
    from .variants import pick_variants

    torch.set_num_threads(1)
    _tools.update(
        setup=setup,
        backend=load_model(setup.weights, setup.device, **setup.streaming),
        tracker=make_tracker(setup.tracker, setup.tracker_checkpoint, setup.device),
        extractor=make_extractor(setup.frechet, setup.frechet_weights, setup.device),
        variants=pick_variants(list(setup.variants)),
    )


def _case(case: BenchCase, keep_frames: bool) -> tuple[CaseRun, dict[str, np.ndarray]]:
    setup: WorkerSetup = _tools["setup"]
    return bench_case(
        _tools["backend"],
        case,
        _tools["variants"],
        setup.base,
        _tools["tracker"],
        _tools["extractor"],
        setup.dai_radius,
        keep_frames,
    )


def run_cases_in_workers(
    setup: WorkerSetup, cases: list[BenchCase], keep_frames: int, jobs: int
) -> list[tuple[CaseRun, dict[str, np.ndarray]]]:
    """Every case's run and Frechet features, in case order, from ``jobs`` worker processes."""
    tasks = [(case, index < keep_frames) for index, case in enumerate(cases)]
    return map_in_workers(_case, tasks, jobs, _start, (setup,), "quality bench", "case")
