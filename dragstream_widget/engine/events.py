"""A tiny publish/subscribe hub between the engine and its recorders.

Payloads are built lazily: ``emit(name, build)`` calls ``build()`` only when somebody listens, so
diagnostics cost nothing when they are off.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

Listener = Callable[[dict[str, Any]], None]

# Event names the engine emits, with the keys of their payloads.
EVENTS = {
    "block": "index, frames, z0, edited",
    "step": "block, step_index, timestep, z_t",
    "iteration": (
        "block, segment, num_segments, iteration, num_iterations, l_rec, l_cst, cutoff, z, grad, step, gradient_map"
    ),
    "latent_stats": "block, stage, mean, std, min, max",
    # A drag about to run: its references (a ReferenceFeatures mapping {cutoff: [D, F, h, w]}, each
    # cutoff computed when first read; 1 = unfiltered), and the context keys/values of the first
    # recorded layer ([heads, tokens, dim] each, or None).
    "drag": "block, instruction, reference, context, token_grid",
    "comparison": "block, branches",  # what-if latent statistics from `block` on (engine.branches)
}


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    def subscribe(self, name: str, listener: Listener) -> Callable[[], None]:
        """Listen to ``name``; returns a function that unsubscribes."""
        if name not in EVENTS:
            raise ValueError(f"unknown event {name!r}; known: {', '.join(EVENTS)}")
        self._listeners[name].append(listener)
        return lambda: self._listeners[name].remove(listener)

    def listening(self, name: str) -> bool:
        return bool(self._listeners.get(name))

    def emit(self, name: str, build: Callable[[], dict[str, Any]]) -> None:
        listeners = self._listeners.get(name)
        if not listeners:
            return
        payload = build()
        for listener in list(listeners):
            listener(payload)
