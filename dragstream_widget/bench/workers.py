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


_model: dict = {}


def start_toy_model_worker(weights: str | None, streaming: dict) -> None:
    """A worker's start for :func:`map_in_workers`: one thread, and the toy world model from ``weights``
    (None: the shipped ones) with the ``streaming`` overrides, which :func:`worker_backend` returns."""
    import torch

    from .. import load_model

    torch.set_num_threads(1)
    _model["backend"] = load_model(weights, **streaming)


def worker_backend():
    """The backend :func:`start_toy_model_worker` loaded in this worker."""
    return _model["backend"]
