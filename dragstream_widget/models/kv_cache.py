"""Self-attention key/value cache of committed frames, with a rolling window and sink frames.

Keys are stored after RoPE (at their frame positions), values as computed, both detached. Past the
end of the RoPE table the whole cache moves back (:meth:`KVCache.move_back`): only distances count.
The cache never mutates a stored tensor: appending builds new tuples, so a snapshot is a cheap,
exact copy of the state and undo can restore it bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CachedFrames:
    """Keys and values of a run of consecutive frames, one tensor pair per layer.

    Each tensor is ``[batch, num_frames * tokens_per_frame, heads, head_dim]``.
    """

    start_frame: int
    num_frames: int
    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    def slice_frames(self, first: int, count: int, tokens_per_frame: int) -> CachedFrames:
        """The sub-run of ``count`` frames starting at relative frame ``first``."""
        lo, hi = first * tokens_per_frame, (first + count) * tokens_per_frame
        return CachedFrames(
            self.start_frame + first,
            count,
            tuple(k[:, lo:hi] for k in self.keys),
            tuple(v[:, lo:hi] for v in self.values),
        )


@dataclass(frozen=True)
class CacheState:
    """An exact snapshot of a :class:`KVCache` (shares its immutable tensors)."""

    runs: tuple[CachedFrames, ...]
    next_frame: int


def check_window(window: int | None, sinks: int, unit: str = "frames") -> None:
    """Refuses a rolling KV window (``None``: unbounded) that cannot hold more than its sinks."""
    if sinks < 0:
        raise ValueError(f"sink {unit} must be >= 0, got {sinks}")
    if window is not None and window <= sinks:
        raise ValueError(f"the KV window of {window} {unit} must hold more than its {sinks} sink {unit}")


class KVCache:
    """Context keys/values for block-causal generation.

    ``max_frames`` bounds the frames kept (None: unbounded); when it is exceeded the oldest frames
    are dropped except the first ``sink_frames`` frames ever committed, which stay as attention sinks.
    """

    def __init__(
        self, num_layers: int, tokens_per_frame: int, max_frames: int | None = None, sink_frames: int = 0
    ):
        check_window(max_frames, sink_frames)
        self.num_layers = num_layers
        self.tokens_per_frame = tokens_per_frame
        self.max_frames = max_frames
        self.sink_frames = sink_frames
        self._runs: tuple[CachedFrames, ...] = ()
        self._next_frame = 0
        self._joined: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def next_frame(self) -> int:
        """Position of the first frame not yet committed (the RoPE offset of the next block)."""
        return self._next_frame

    @property
    def num_cached_frames(self) -> int:
        return sum(r.num_frames for r in self._runs)

    @property
    def cached_frame_indices(self) -> list[int]:
        return [r.start_frame + i for r in self._runs for i in range(r.num_frames)]

    def is_empty(self) -> bool:
        return not self._runs

    def context(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """All cached keys and values of ``layer`` in frame order, or None when nothing is cached."""
        if not self._runs:
            return None
        if layer not in self._joined:
            keys = [r.keys[layer] for r in self._runs]
            values = [r.values[layer] for r in self._runs]
            self._joined[layer] = (torch.cat(keys, dim=1), torch.cat(values, dim=1))
        return self._joined[layer]

    def append(
        self, start_frame: int, num_frames: int, keys: list[torch.Tensor], values: list[torch.Tensor]
    ) -> None:
        """Commit the keys/values of ``num_frames`` frames starting at frame position ``start_frame``."""
        if start_frame != self._next_frame:
            raise ValueError(
                f"cache expects frame {self._next_frame} next, got a block starting at {start_frame}"
            )
        if len(keys) != self.num_layers or len(values) != self.num_layers:
            raise ValueError(
                f"expected keys/values for {self.num_layers} layers, got {len(keys)}/{len(values)}"
            )
        run = CachedFrames(
            start_frame, num_frames, tuple(k.detach() for k in keys), tuple(v.detach() for v in values)
        )
        self._runs = self._trimmed(self._runs + (run,))
        self._next_frame = start_frame + num_frames
        self._joined = {}

    def _trimmed(self, runs: tuple[CachedFrames, ...]) -> tuple[CachedFrames, ...]:
        total = sum(r.num_frames for r in runs)
        if self.max_frames is None or total <= self.max_frames:
            return runs
        keep_sink = self.sink_frames
        drop = total - self.max_frames
        kept: list[CachedFrames] = []
        position = 0
        for run in runs:
            first, last = position, position + run.num_frames
            position = last
            # Frames [0, keep_sink) stay; the next `drop` frames after them go.
            drop_lo, drop_hi = keep_sink, keep_sink + drop
            pieces = [(first, min(last, drop_lo)), (max(first, drop_hi), last)]
            for lo, hi in pieces:
                if hi > lo:
                    kept.append(run.slice_frames(lo - first, hi - lo, self.tokens_per_frame))
        return tuple(kept)

    def move_back(self, frames: int, move_keys: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
        """Every cached frame, and the next one, ``frames`` positions earlier; ``move_keys(keys, frames)``
        turns the stored keys to match (their RoPE). Earlier snapshots keep their own positions."""
        self._runs = tuple(
            CachedFrames(
                r.start_frame - frames, r.num_frames, tuple(move_keys(k, frames) for k in r.keys), r.values
            )
            for r in self._runs
        )
        self._next_frame -= frames
        self._joined = {}

    def snapshot(self) -> CacheState:
        return CacheState(self._runs, self._next_frame)

    def restore(self, state: CacheState) -> None:
        self._runs = state.runs
        self._next_frame = state.next_frame
        self._joined = {}

    def clear(self) -> None:
        self.restore(CacheState((), 0))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for r in self._runs for t in (*r.keys, *r.values))
