"""Live strips beside the widget: latent statistics per frame and the drag losses, as the video streams.

Drawn by the front end on its own canvas from small JSON traits (``js/src/strips.js``), so they keep
up with the stream where re-rendering a matplotlib figure per block would not; the full figures
(``diagnostics.figures``) remain the way to study and export them. Updates are throttled.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anywidget
import traitlets

from ..diagnostics.recorders import IterationRecorder, LatentStatsRecorder
from ..engine.events import EventBus

STATIC = Path(__file__).parent / "static"


class LiveStrips(anywidget.AnyWidget):
    """Latent mean/std/min/max per latent frame (drift) and L_rec/L_cst per iteration, live; with the
    widget's *compare* switch on, Figure 2a's branches (no drag, drag without ADSR) dashed over the drift."""

    _esm = STATIC / "strips.js"
    _css = STATIC / "widget.css"

    drift = traitlets.Dict().tag(sync=True)  # {"first": position of the first frame shown, "mean": [...], ...}
    dragged = traitlets.List(traitlets.Int()).tag(sync=True)  # positions of latent frames of dragged blocks
    losses = traitlets.Dict().tag(sync=True)  # {"l_rec": [...], "l_cst": [...], "block": [...]}
    comparison = traitlets.Dict().tag(sync=True)  # {"start": position, "branches": {name: {"mean": [...], ...}}}
    width = traitlets.Int(360).tag(sync=True)

    def __init__(self, events: EventBus, frames_per_block: int, window: int = 240, interval: float = 0.25):
        """``frames_per_block`` counts latent frames; ``window`` is how many latest frames are drawn."""
        super().__init__()
        self.window, self.interval, self.frames_per_block = window, interval, frames_per_block
        self.latent_stats = LatentStatsRecorder(events)
        self.iterations = IterationRecorder(events)
        self._dragged_blocks: dict[int, bool] = {}
        self._lock = threading.Lock()
        self._last_publish = 0.0
        self._unsubscribe = [
            events.subscribe("block", self._on_block),
            events.subscribe("latent_stats", lambda _payload: self.publish()),  # after the recorder's update
            events.subscribe("iteration", self._on_iteration),
            events.subscribe("comparison", self._on_comparison),
        ]
        self._comparison: dict | None = None

    def _on_block(self, payload: dict) -> None:
        index = payload["index"]
        self._dragged_blocks = {k: v for k, v in self._dragged_blocks.items() if k < index}
        self._dragged_blocks[index] = payload["edited"]

    def _on_comparison(self, payload: dict) -> None:
        self._comparison = payload
        self.publish()

    def _on_iteration(self, _payload: dict) -> None:
        if time.monotonic() - self._last_publish >= self.interval:
            self.publish()

    def publish(self) -> None:
        """Send the current series to the front end (the last ``window`` latent frames)."""
        with self._lock:
            self._last_publish = time.monotonic()
            series = self.latent_stats.series()
            first = max(0, len(series["mean"]) - self.window)
            blocks = sorted(self.latent_stats.blocks)
            with self.hold_sync():
                self.drift = {"first": first, **{key: rounded(values[first:]) for key, values in series.items()}}
                self.dragged = self._dragged_positions(blocks, first)
                self.losses = self._recent_losses()
                self.comparison = self._comparison_from(blocks, first)

    def _dragged_positions(self, blocks: list[int], first: int) -> list[int]:
        return [
            position * self.frames_per_block + k - first
            for position, block in enumerate(blocks)
            if self._dragged_blocks.get(block)
            for k in range(self.frames_per_block)
            if position * self.frames_per_block + k >= first
        ]

    def _recent_losses(self, count: int = 96) -> dict:
        log = self.iterations.log[-count:]
        return {
            "l_rec": rounded([r.l_rec for r in log]),
            "l_cst": rounded([r.l_cst for r in log]),
            "block": [r.block for r in log],
        }

    def _comparison_from(self, blocks: list[int], first: int) -> dict:
        """The latest comparison, placed where its first block sits in the drift window ({} if gone)."""
        if self._comparison is None or self._comparison["block"] not in blocks:
            return {}
        start = blocks.index(self._comparison["block"]) * self.frames_per_block - first
        branches = {
            name: {key: rounded(values) for key, values in stats.items()}
            for name, stats in self._comparison["branches"].items()
        }
        return {"start": start, "branches": branches}

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.latent_stats.close()
        self.iterations.close()
        super().close()


def rounded(values) -> list[float]:
    return [round(float(v), 5) for v in values]
