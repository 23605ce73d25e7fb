"""Why context frames interfere: frequency probes of the attention context.

* :func:`frequency_contribution`: for the dragged tokens of the block on screen, how much the recorded
  self-attention output changes when the context keys/values are low-passed at each cutoff of the
  switch set (relative L2 change; 0 at cutoff 1, which is unfiltered).
* :func:`kv_band_energy`: the spectral energy of the cached context keys and values of one layer by
  radial frequency band (same normalised frequency as the Butterworth filter: 1 = Nyquist on one axis).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .. import geometry
from ..engine.frequency import PAPER_CUTOFFS, kv_lowpass_filter, radial_frequency
from ..engine.optimize import record_features
from ..engine.session import StreamSession


@torch.no_grad()
def frequency_contribution(
    session: StreamSession,
    handle_mask: np.ndarray,
    cutoffs: Sequence[float] = PAPER_CUTOFFS,
    scope: str = "context",
) -> dict[float, float]:
    """Relative change of the dragged tokens' features when the context is low-passed, per cutoff."""
    block = session.blocks[-1]
    if block.cache_before is None:
        raise ValueError("the block on screen has no cache snapshot (beyond the undo depth)")
    backend, config = session.backend, session.config
    context = backend.new_cache()
    context.restore(block.cache_before)
    step = config.optimize_step
    z = block.step_latents[step].unsqueeze(0)
    layers = config.feature_layers or backend.feature_layers
    weight = geometry.resize_mask(handle_mask, backend.layout.latent_size).to(z.device)
    if weight.sum() == 0:
        raise ValueError("the handle mask is empty at latent resolution")
    base, _ = record_features(backend, z, step, context, session.prompt_embeds, layers)
    result = {}
    for cutoff in cutoffs:
        filtered, _ = record_features(
            backend, z, step, context, session.prompt_embeds, layers, kv_lowpass_filter(cutoff, scope)
        )
        change = ((filtered - base) ** 2).sum(dim=1) * weight  # [1, F, h, w]
        energy = (base**2).sum(dim=1) * weight
        result[float(cutoff)] = float((change.sum() / energy.sum()).sqrt())
    return result


@torch.no_grad()
def kv_band_energy(session: StreamSession, layer: int, bands: int = 8) -> dict[str, np.ndarray]:
    """Share of the context keys' and values' spectral energy in each radial band (sums to 1 each)."""
    context = session.cache.context(layer)
    if context is None:
        raise ValueError("the cache is empty: generate a block first")
    layout = session.backend.layout
    _, p_h, p_w = session.backend.transformer.config.patch_size
    h, w = layout.height // p_h, layout.width // p_w
    radius = radial_frequency(h, w, context[0].device)
    edges = torch.linspace(0, float(radius.max()) + 1e-6, bands + 1, device=radius.device)
    out = {"band_edges": edges.cpu().numpy()}
    for name, tokens in zip(("keys", "values"), context):
        frames = tokens.shape[1] // (h * w)
        grid = tokens.float().reshape(tokens.shape[0], frames, h, w, -1).permute(0, 1, 4, 2, 3)
        power = torch.fft.fft2(grid).abs().pow(2).sum(dim=(0, 1, 2))  # [h, w]
        energy = torch.stack(
            [power[(radius >= lo) & (radius < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:])]
        )
        out[name] = (energy / energy.sum()).cpu().numpy()
    return out
