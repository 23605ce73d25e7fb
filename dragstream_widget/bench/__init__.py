"""Benchmarks, the verbs of ``python -m dragstream_widget bench``: each prints its numbers and saves them."""

import json
import time

import torch


def report(result: dict, path: str | None) -> dict:
    """Print ``result`` as JSON and, when ``path`` is given, save it there."""
    print(json.dumps(result, indent=2))
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
    return result


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    """``(fn(), seconds)``, with the GPU's queued work finished before and after."""
    synchronize()
    start = time.perf_counter()
    result = fn()
    synchronize()
    return result, time.perf_counter() - start
