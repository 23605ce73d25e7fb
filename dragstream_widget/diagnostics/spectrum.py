"""Why context frames interfere: frequency probes of the attention context.

* :func:`frequency_contribution`: for the dragged tokens of the block on screen, how much the recorded
  self-attention output changes when the context keys/values are low-passed at each cutoff of the
  switch set (relative L2 change; 0 at cutoff 1, which is unfiltered). :func:`cutoff_contribution`
  computes it from features given at each cutoff (a drag's references, for the live probe).
* :func:`kv_band_energy`: the spectral energy of the cached context keys and values of one layer by
  radial frequency band (same normalised frequency as the Butterworth filter: 1 = Nyquist on one axis);
  :func:`band_energy` does it for given keys and values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .. import geometry
from ..engine.frequency import PAPER_CUTOFFS, radial_frequency
from ..engine.session import StreamSession
from ..models.base import token_grid


def cutoff_contribution(reference: Mapping[float, torch.Tensor], weight: torch.Tensor) -> dict[float, float]:
    """Relative L2 change of features ``{cutoff: [D, F, h, w]}`` against the unfiltered ones (cutoff 1),
    over the tokens weighted by ``weight [h, w]`` (the dragged region at latent resolution)."""
    if 1.0 not in reference:
        raise ValueError("the unfiltered features (cutoff 1) are needed as the baseline")
    if weight.sum() == 0:
        raise ValueError("the handle mask is empty at latent resolution")
    base = reference[1.0]
    weight = weight.to(base.device, base.dtype)
    energy = ((base**2).sum(dim=0) * weight).sum()
    return {
        float(c): float(((((f - base) ** 2).sum(dim=0) * weight).sum() / energy).sqrt())
        for c, f in sorted(reference.items())
    }


@torch.no_grad()
def frequency_contribution(
    session: StreamSession,
    handle_mask: np.ndarray,
    cutoffs: Sequence[float] = PAPER_CUTOFFS,
    scope: str = "context",
) -> dict[float, float]:
    """Relative change of the dragged tokens' features when the context is low-passed, per cutoff,
    at the step T' an edit of the block on screen would optimise at."""
    every_cutoff = sorted({float(c) for c in cutoffs} | {1.0})
    reference = session.reference_of(session.blocks[-1], session.config.for_edits(), every_cutoff, scope)
    reference.compute()
    weight = geometry.resize_mask(handle_mask, session.backend.layout.latent_size)
    return cutoff_contribution(dict(reference), weight)


def band_energy(
    keys: torch.Tensor, values: torch.Tensor, grid: tuple[int, int], bands: int = 8
) -> dict[str, np.ndarray]:
    """Share of the spectral energy of cached keys and values (``[heads, frames * h * w, dim]``, token
    grid ``(h, w)`` per frame) in each radial frequency band; sums to 1 for each."""
    h, w = grid
    radius = radial_frequency(h, w, keys.device)
    edges = torch.linspace(0, float(radius.max()) + 1e-6, bands + 1, device=radius.device)
    out = {"band_edges": edges.cpu().numpy()}
    for name, tokens in (("keys", keys), ("values", values)):
        frames = tokens.shape[1] // (h * w)
        spatial = tokens.float().reshape(tokens.shape[0], frames, h, w, -1).permute(0, 1, 4, 2, 3)
        power = torch.fft.fft2(spatial).abs().pow(2).sum(dim=(0, 1, 2))  # [h, w]
        energy = torch.stack(
            [power[(radius >= lo) & (radius < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:])]
        )
        out[name] = (energy / energy.sum()).cpu().numpy()
    return out


@torch.no_grad()
def kv_band_energy(session: StreamSession, layer: int, bands: int = 8) -> dict[str, np.ndarray]:
    """:func:`band_energy` of the session's cached context at ``layer``."""
    context = session.cache.context(layer)
    if context is None:
        raise ValueError("the cache is empty: generate a block first")
    return band_energy(*context, token_grid(session.backend), bands)
