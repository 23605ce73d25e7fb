"""Spatial-Frequency Selection (SFS): Butterworth low-pass of context keys/values, switched cutoff.

Frequencies are normalised so that 1 is the Nyquist frequency along one axis: for an ``h x w`` grid,
``D(u, v) = sqrt((2 f_y)^2 + (2 f_x)^2)`` with ``f`` in cycles per token. A cutoff of 1 or more
leaves the signal unfiltered (the switch set's "1").
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from ..models.causal_wan import KVFilter

PAPER_CUTOFFS = (0.2, 0.4, 0.6, 1.0)
BUTTERWORTH_ORDER = 4


def radial_frequency(h: int, w: int, device=None) -> torch.Tensor:
    """``D(u, v)`` on the unshifted FFT grid (see module docstring)."""
    fy = torch.fft.fftfreq(h, device=device) * 2
    fx = torch.fft.fftfreq(w, device=device) * 2
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def butterworth_lowpass(
    h: int, w: int, cutoff: float, order: int = BUTTERWORTH_ORDER, device=None
) -> torch.Tensor:
    # Eq. 6: Butterworth low-pass response H(u, v) = 1 / (1 + (D / D0)^(2n))
    if cutoff <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    return 1.0 / (1.0 + (radial_frequency(h, w, device) / cutoff) ** (2 * order))


def lowpass_spatial(x: torch.Tensor, cutoff: float, order: int = BUTTERWORTH_ORDER) -> torch.Tensor:
    # Eq. 5 and 7: filtered signal F^-1(H . F(x)) over the last two (spatial) axes
    if cutoff >= 1.0:
        return x
    h, w = x.shape[-2:]
    response = butterworth_lowpass(h, w, cutoff, order, x.device)
    spectrum = torch.fft.fft2(x.float(), dim=(-2, -1)) * response
    return torch.fft.ifft2(spectrum, dim=(-2, -1)).real.to(x.dtype)


# Up to this many tokens per frame the low-pass is applied as one real (h*w)x(h*w) matrix: the same
# linear map as Eq. 7, but a small matmul is about ten times faster than an FFT pair on a CPU.
MATRIX_FILTER_MAX_TOKENS = 256


@functools.lru_cache(maxsize=32)
def lowpass_matrix(h: int, w: int, cutoff: float, order: int = BUTTERWORTH_ORDER) -> torch.Tensor:
    """Eq. 7 on an ``h x w`` grid as a matrix: ``out_flat = matrix @ in_flat`` (row-major tokens)."""
    basis = torch.eye(h * w, dtype=torch.float64).reshape(h * w, h, w)
    response = butterworth_lowpass(h, w, cutoff, order).double()
    columns = torch.fft.ifft2(torch.fft.fft2(basis) * response).real.reshape(h * w, h * w)
    return columns.T.float().contiguous()


def tokens_lowpass(
    tokens: torch.Tensor, grid: tuple[int, int, int], cutoff: float | Sequence[float]
) -> torch.Tensor:
    """Low-pass ``[B, F*h*w, heads, head_dim]`` keys or values over each frame's ``h x w`` token grid.

    ``cutoff`` is one cutoff for the whole batch, or a sequence of ``B``: one per sample (every cutoff of
    the switch set in one batched pass).
    """
    cutoffs = per_sample_cutoffs(cutoff, tokens.shape[0])
    if all(c >= 1.0 for c in cutoffs):
        return tokens
    frames, h, w = grid
    batch, _, heads, dim = tokens.shape
    if h * w <= MATRIX_FILTER_MAX_TOKENS:
        matrices = torch.stack([filter_matrix(h, w, c) for c in cutoffs]).to(tokens.device)
        per_frame = tokens.reshape(batch, frames, h * w, heads * dim).float()
        return torch.matmul(matrices[:, None], per_frame).reshape(tokens.shape).to(tokens.dtype)
    if len(set(cutoffs)) > 1:
        return torch.cat([tokens_lowpass(tokens[i : i + 1], grid, c) for i, c in enumerate(cutoffs)])
    spatial = tokens.reshape(batch, frames, h, w, heads, dim).permute(0, 1, 4, 5, 2, 3)
    filtered = lowpass_spatial(spatial, cutoffs[0])
    return filtered.permute(0, 1, 4, 5, 2, 3).reshape(batch, frames * h * w, heads, dim)


def per_sample_cutoffs(cutoff: float | Sequence[float], batch: int) -> tuple[float, ...]:
    """``cutoff`` as one float per batch sample (a sequence must have one per sample)."""
    if isinstance(cutoff, Sequence):
        if len(cutoff) != batch:
            raise ValueError(f"{len(cutoff)} cutoffs for a batch of {batch}")
        return tuple(float(c) for c in cutoff)
    return (float(cutoff),) * batch


def filter_matrix(h: int, w: int, cutoff: float) -> torch.Tensor:
    """:func:`lowpass_matrix`, or the identity for an unfiltered cutoff (>= 1)."""
    return lowpass_matrix(h, w, cutoff) if cutoff < 1.0 else torch.eye(h * w)


def kv_lowpass_filter(
    cutoff: float | Sequence[float], scope: str = "context", layers: Sequence[int] | None = None
) -> KVFilter | None:
    """A KV filter for the causal transformer that low-passes attention keys and values.

    ``cutoff`` is one cutoff, or one per batch sample (see :func:`tokens_lowpass`).

    ``scope="context"`` (the paper) filters the cached context frames only; ``"window"`` (the released
    code) filters the whole attention window, the block's own frames included. ``layers`` limits it to
    those layers (None: all). Returns None for an unfiltered cutoff.
    """
    if scope not in ("context", "window"):
        raise ValueError(f"unknown SFS scope {scope!r}; choose 'context' or 'window'")
    if all(c >= 1.0 for c in (cutoff if isinstance(cutoff, Sequence) else (cutoff,))):
        return None
    chosen = None if layers is None else frozenset(layers)

    def kv_filter(keys, values, layer, grid, context_frames):
        if chosen is not None and layer not in chosen:
            return keys, values
        frames = grid[0] if scope == "window" else context_frames
        if frames == 0:
            return keys, values
        split = frames * grid[1] * grid[2]
        sub_grid = (frames, grid[1], grid[2])
        keys = torch.cat([tokens_lowpass(keys[:, :split], sub_grid, cutoff), keys[:, split:]], dim=1)
        values = torch.cat([tokens_lowpass(values[:, :split], sub_grid, cutoff), values[:, split:]], dim=1)
        return keys, values

    return kv_filter


class CutoffSwitch:
    """Eq. 8: the cutoff drawn uniformly at random from the switch set at each iteration."""

    def __init__(self, cutoffs: Sequence[float] = PAPER_CUTOFFS, generator: torch.Generator | None = None):
        if not cutoffs:
            raise ValueError("the cutoff switch set is empty")
        if any(c <= 0 for c in cutoffs):
            raise ValueError(f"cutoffs must be positive, got {tuple(cutoffs)}")
        self.cutoffs = tuple(float(c) for c in cutoffs)
        self.generator = generator

    def draw(self) -> float:
        index = int(torch.randint(len(self.cutoffs), (1,), generator=self.generator))
        return self.cutoffs[index]
