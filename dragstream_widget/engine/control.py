"""The hooks of one block's run, travelling together: the events it reports, and when to stop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .events import EventBus


def never() -> bool:
    return False


@dataclass(frozen=True)
class RunControl:
    """``block``: the index events name the block by. ``should_stop``: asked before each optimisation
    iteration; when it answers True the drag keeps the latent it has reached. ``should_abandon``: asked
    before each denoising step of a block without a drag; when it answers True the block is abandoned
    before anything is committed (an edit waiting to re-denoise the block on screen need not wait)."""

    events: EventBus = field(default_factory=EventBus)
    block: int = 0
    should_stop: Callable[[], bool] = never
    should_abandon: Callable[[], bool] = never

    def emit(self, name: str, build: Callable[[], dict[str, Any]]) -> None:
        """Report ``name`` with ``build()``'s payload, which also names the block (built only when listened to)."""
        self.events.emit(name, lambda: {"block": self.block, **build()})
