"""Bench work spread over processes: each worker starts once (its own model, one thread), then runs
whole tasks; results come back in task order."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from tqdm import tqdm


def map_in_workers(
    function: Callable,
    tasks: list[tuple],
    jobs: int,
    start: Callable,
    start_args: tuple,
    desc: str,
    unit: str,
) -> list:
    """``function(*task)`` for every task in ``jobs`` spawned workers started by ``start(*start_args)``
    (spawned: a worker must not inherit an initialised accelerator), with a progress bar."""
    context = multiprocessing.get_context("spawn")
    with tqdm(total=len(tasks), desc=desc, unit=unit) as progress:
        with ProcessPoolExecutor(jobs, context, start, start_args) as pool:
            futures = [pool.submit(function, *task) for task in tasks]
            for future in futures:
                future.add_done_callback(lambda _future: progress.update())
            return [future.result() for future in futures]


def map_on_toy_model(
    function: Callable,
    tasks: list[tuple],
    jobs: int,
    weights: str | None,
    streaming: dict,
    desc: str,
    unit: str,
) -> list:
    """``function(backend, *task)`` for every task in ``jobs`` workers of one thread each, each holding the
    toy world model from ``weights`` (None: the shipped ones) with the ``streaming`` overrides as
    ``backend``; ``function`` must be a module-level function (workers receive it by name)."""
    calls = [(function, *task) for task in tasks]
    return map_in_workers(_on_worker_model, calls, jobs, _load_toy_model, (weights, streaming), desc, unit)


_model: dict = {}


def _load_toy_model(weights: str | None, streaming: dict) -> None:
    import torch

    from ..models.toyworld.model import load_model

    torch.set_num_threads(1)
    _model["backend"] = load_model(weights, **streaming)


def _on_worker_model(function: Callable, *task):
    return function(_model["backend"], *task)
