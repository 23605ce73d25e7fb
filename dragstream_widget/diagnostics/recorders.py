"""Recorders: subscribe to a session's events and keep what the diagnostic figures draw.

They cost nothing until attached, and ``close()`` detaches them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from ..engine.events import EventBus


class Recorder(ABC):
    def __init__(self, bus: EventBus, event: str):
        self._unsubscribe = bus.subscribe(event, self.receive)

    @abstractmethod
    def receive(self, payload: dict) -> None: ...

    def close(self) -> None:
        self._unsubscribe()


class LatentStatsRecorder(Recorder):
    """Mean, std, min and max of every committed latent frame, in stream order (latest version of a block)."""

    def __init__(self, bus: EventBus):
        self.blocks: dict[int, dict] = {}
        super().__init__(bus, "latent_stats")

    def receive(self, payload: dict) -> None:
        # a block arriving again at index i means the blocks after it were undone
        self.blocks = {k: v for k, v in self.blocks.items() if k < payload["block"]}
        self.blocks[payload["block"]] = payload

    def series(self) -> dict[str, np.ndarray]:
        ordered = [self.blocks[k] for k in sorted(self.blocks)]
        return {
            key: np.concatenate([b[key] for b in ordered]) if ordered else np.zeros(0)
            for key in ("mean", "std", "min", "max")
        }


@dataclass
class IterationLog:
    block: int
    segment: int
    iteration: int
    l_rec: float
    l_cst: float
    cutoff: float


class IterationRecorder(Recorder):
    """Losses of every optimisation iteration, and the last gradient magnitude, step magnitude and CSS
    map seen."""

    def __init__(self, bus: EventBus):
        self.log: list[IterationLog] = []
        self.gradient_magnitude: np.ndarray | None = None  # [frames, h, w] of the last iteration
        self.step_magnitude: np.ndarray | None = None  # [frames, h, w]: how far AdamW moved the latent
        self.gradient_map: np.ndarray | None = None
        super().__init__(bus, "iteration")

    def receive(self, payload: dict) -> None:
        self.log.append(
            IterationLog(
                payload["block"],
                payload["segment"],
                payload["iteration"],
                payload["l_rec"],
                payload["l_cst"],
                payload["cutoff"],
            )
        )
        grad: torch.Tensor = payload["grad"]
        self.gradient_magnitude = grad[0].norm(dim=0).cpu().numpy()
        self.step_magnitude = payload["step"][0].norm(dim=0).cpu().numpy()
        gmap = payload["gradient_map"]
        self.gradient_map = None if gmap is None else gmap.cpu().numpy()
