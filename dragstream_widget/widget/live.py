"""Live strips beside the widget, as the video streams: latent statistics per frame, the drag losses,
the CSS Gaussian map and gradient magnitude of the latest iteration with the drag overlaid, and the
frequency probe of each drag (how much the dragged tokens' attention output changes when the context
keys/values are low-passed at each cutoff, from the drag's reference features, completed with the
cutoffs its switch did not draw, and the context keys'/values' energy by radial band).

Drawn by the front end on its own canvas from small JSON traits (``js/src/strips.js``), so they keep
up with the stream where re-rendering a matplotlib figure per block would not; the full figures
(``diagnostics.figures``) remain the way to study and export them. Updates are throttled.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anywidget
import numpy as np
import torch
import traitlets

from .. import geometry
from ..diagnostics.recorders import IterationRecorder, LatentStatsRecorder
from ..diagnostics.spectrum import band_energy, cutoff_contribution
from ..engine.events import EventBus
from ..ops import DragInstruction

STATIC = Path(__file__).parent / "static"


class LiveStrips(anywidget.AnyWidget):
    """Latent mean/std/min/max per latent frame (drift) and L_rec/L_cst per iteration, live; with the
    widget's *compare* switch on, Figure 2a's branches (no drag, drag without ADSR) dashed over the drift."""

    _esm = STATIC / "strips.js"
    _css = STATIC / "widget.css"

    drift = traitlets.Dict().tag(
        sync=True
    )  # {"first": position of the first frame shown, "mean": [...], ...}
    dragged = traitlets.List(traitlets.Int()).tag(sync=True)  # positions of latent frames of dragged blocks
    # {"l_rec": [...], "l_cst": [...], "block": [...], "segment": [...], "first": iteration number}
    losses = traitlets.Dict().tag(sync=True)
    comparison = traitlets.Dict().tag(
        sync=True
    )  # {"start": position, "branches": {name: {"mean": [...], ...}}}
    # {"height", "width", "gaussian", "gradient", "handle"} row-major 0-255 maps at latent resolution
    # (last latent frame), plus "paths": per region [handle, target, ...] as [x, y] in latent cells
    maps = traitlets.Dict().tag(sync=True)
    # {"block", "cutoffs", "change", "band_centers", "keys", "values"} of the latest drag
    probe = traitlets.Dict().tag(sync=True)
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
            events.subscribe("drag", self._on_drag),
        ]
        self._comparison: dict | None = None
        self._overlay: dict = {}  # the latest drag drawn at latent resolution, for the maps

    def _on_block(self, payload: dict) -> None:
        index = payload["index"]
        self._dragged_blocks = {k: v for k, v in self._dragged_blocks.items() if k < index}
        self._dragged_blocks[index] = payload["edited"]

    def _on_comparison(self, payload: dict) -> None:
        self._comparison = payload
        self.publish()

    def _on_drag(self, payload: dict) -> None:
        self._overlay = {}
        try:
            reference = payload["reference"]
            reference.compute()  # every cutoff in one batched pass; the drag then reuses them
            instruction, latent_size = payload["instruction"], reference[1.0].shape[-2:]
            coverage = handle_coverage(instruction, latent_size)
            self._overlay = drag_overlay(instruction, coverage)
            self.probe = drag_probe(payload, coverage)
        except Exception as error:  # a diagnostic must never stop the drag it watches
            self.probe = {"block": payload["block"], "error": f"frequency probe failed: {error}"}

    def _on_iteration(self, _payload: dict) -> None:
        if time.monotonic() - self._last_publish >= self.interval:
            self.publish()

    def _maps(self) -> dict:
        """The latest iteration's CSS map, gradient magnitude and step magnitude (last latent frame), the
        drag drawn over."""
        recorder = self.iterations
        if recorder.gradient_magnitude is None:
            return {}
        gradient = recorder.gradient_magnitude[-1]
        height, width = gradient.shape
        gaussian = np.ones_like(gradient) if recorder.gradient_map is None else recorder.gradient_map[-1]
        return {
            "height": height,
            "width": width,
            "gaussian": bytes_of(gaussian, 1.0),
            "gradient": bytes_of(gradient),
            "step": bytes_of(recorder.step_magnitude[-1]),
            **self._overlay,
        }

    def publish(self) -> None:
        """Send the current series to the front end (the last ``window`` latent frames)."""
        with self._lock:
            self._last_publish = time.monotonic()
            series = self.latent_stats.series()
            first = max(0, len(series["mean"]) - self.window)
            blocks = sorted(self.latent_stats.blocks)
            with self.hold_sync():
                self.drift = {
                    "first": first,
                    **{key: rounded(values[first:]) for key, values in series.items()},
                }
                self.dragged = self._dragged_positions(blocks, first)
                self.losses = self._recent_losses()
                self.comparison = self._comparison_from(blocks, first)
                self.maps = self._maps()

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
            "segment": [r.segment for r in log],
            "first": len(self.iterations.log) - len(log),  # the number of the first iteration shown
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


def bytes_of(image: np.ndarray, top: float | None = None) -> list[int]:
    """Row-major 0-255 levels of ``image`` scaled by ``top`` (default: its maximum)."""
    top = float(image.max()) if top is None else top
    levels = np.clip(np.nan_to_num(image) / max(top, 1e-12), 0, 1) * 255
    return np.round(levels).astype(np.uint8).ravel().tolist()


def handle_coverage(instruction: DragInstruction, size: tuple[int, int]) -> torch.Tensor:
    """How much of each cell of a ``size`` grid the drag's handle regions cover, together."""
    return geometry.resize_mask(np.any([r.mask for r in instruction.regions], axis=0), size)


def drag_overlay(instruction: DragInstruction, coverage: torch.Tensor) -> dict:
    """The handle regions (0-255 coverage) and each region's path, handle then every target, in the
    cells of ``coverage``'s grid."""
    height, width = coverage.shape
    scale = np.array([width / instruction.frame_size[1], height / instruction.frame_size[0]])
    paths = [
        [[round(float(v), 2) for v in np.array(point) * scale] for point in (r.handle, *r.targets)]
        for r in instruction.regions
    ]
    return {"handle": bytes_of(coverage.numpy(), 1.0), "paths": paths}


@torch.no_grad()
def drag_probe(payload: dict, coverage: torch.Tensor) -> dict:
    """From a "drag" event: the change of the dragged tokens (``coverage``, at latent resolution)
    per cutoff against the unfiltered features, and the context keys'/values' energy by radial band
    (empty lists where there is none)."""
    change = cutoff_contribution(payload["reference"], coverage)
    out = {"block": payload["block"], "cutoffs": list(change), "change": rounded(change.values())}
    if payload["context"] is None:
        return {**out, "band_centers": [], "keys": [], "values": []}
    bands = band_energy(*payload["context"], payload["token_grid"])
    edges = bands["band_edges"]
    return {
        **out,
        "band_centers": rounded((edges[:-1] + edges[1:]) / 2),
        "keys": rounded(bands["keys"]),
        "values": rounded(bands["values"]),
    }
