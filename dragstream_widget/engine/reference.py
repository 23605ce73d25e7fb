"""Reference features: what the block's features are compared with (L_rec), recorded at step T' in the
context the block saw, one set per cutoff of the SFS switch set."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..models.base import VideoBackend
from .config import DragConfig
from .frequency import kv_lowpass_filter


@dataclass(frozen=True)
class ReferenceSettings:
    """The settings that reference features depend on: step T', the switch's cutoffs (only the unfiltered
    one without SFS), the SFS scope and the recorded layers."""

    step: int
    cutoffs: tuple[float, ...]
    scope: str
    layers: tuple[int, ...]

    @classmethod
    def of(cls, config: DragConfig, backend: VideoBackend) -> ReferenceSettings:
        cutoffs = tuple(float(c) for c in config.cutoffs) if config.sfs else (1.0,)
        return cls(config.optimize_step, cutoffs, config.sfs_scope, feature_layers(config, backend))


def feature_layers(config: DragConfig, backend: VideoBackend) -> tuple[int, ...]:
    """The layers whose features the drag records: the config's, or else the backend's."""
    return tuple(config.feature_layers or backend.feature_layers)


def stacked_features(features: dict[int, torch.Tensor], layers: tuple[int, ...]) -> torch.Tensor:
    """Recorded layers concatenated on channels: ``[B, sum(D), F, h, w]``."""
    return torch.cat([features[i] for i in layers], dim=1)


def record_features(
    backend: VideoBackend, z, step, cache, prompt_embeds, layers, kv_filter=None, need_x0: bool = True
):
    """Features F(z) of ``layers`` at sampler step ``step``, and the x0 prediction of the same pass
    (None without ``need_x0``: the model then stops after the deepest recorded layer)."""
    result = backend.denoise(
        z, step, cache, prompt_embeds, record_layers=layers, kv_filter=kv_filter, features_only=not need_x0
    )
    return stacked_features(result.features, layers), result.x0


@torch.no_grad()
def reference_features(
    backend: VideoBackend, z_ref, step, cache, prompt_embeds, layers, cutoffs, scope
) -> dict[float, torch.Tensor]:
    """Reference features of a committed block for every cutoff of the switch set (1 = unfiltered).

    ``cache`` must hold the context that block saw. All cutoffs run in one batched pass, each sample
    with its own low-pass. Returns ``{cutoff: [D, F, h, w]}``, detached.
    """
    cutoffs = tuple(float(c) for c in cutoffs)
    batch = z_ref.expand(len(cutoffs), *z_ref.shape[1:])
    kv_filter = kv_lowpass_filter(cutoffs, scope)
    feats, _ = record_features(backend, batch, step, cache, prompt_embeds, layers, kv_filter, need_x0=False)
    return {cutoff: feats[i].detach() for i, cutoff in enumerate(cutoffs)}


class ReferenceFeatures(Mapping[float, torch.Tensor]):
    """:func:`reference_features` of a committed block, each cutoff computed the first time it is read.

    An edit reads only the cutoffs its switch draws (4 iterations over the paper's 4 cutoffs draw 2.7
    on average), so it pays for those alone, computed together before its first iteration.
    :meth:`compute` fills the missing ones in one batched pass (an animation, which draws from all of
    them over its blocks, asks for every one). ``cache`` must hold the context the block saw and stay
    unchanged while this object is in use.
    """

    def __init__(self, backend: VideoBackend, z_ref, step, cache, prompt_embeds, layers, cutoffs, scope):
        self._pass = (backend, z_ref, step, cache, prompt_embeds, layers)
        self.layers = tuple(layers)
        self.cutoffs = tuple(float(c) for c in cutoffs)
        self.scope = scope
        self._features: dict[float, torch.Tensor] = {}
        self._x0: torch.Tensor | None = None
        self.seconds = 0.0  # spent computing so far
        self.passes = 0  # model passes run so far

    @torch.no_grad()
    def x0(self) -> torch.Tensor:
        """The reference latent's x0 prediction ``[C, F, h, w]`` in its own context, unfiltered (one
        full pass of the model the optimisation runs, the first time it is asked for)."""
        if self._x0 is None:
            backend, z_ref, step, cache, prompt_embeds, layers = self._pass
            started = time.perf_counter()
            self._x0 = backend.denoise(z_ref, step, cache, prompt_embeds, record_layers=layers).x0[0].detach()
            self.seconds += time.perf_counter() - started
            self.passes += 1
        return self._x0

    @property
    def computed(self) -> tuple[float, ...]:
        """The cutoffs whose features exist so far."""
        return tuple(self._features)

    def compute(self, cutoffs: Sequence[float] | None = None) -> None:
        """Compute the missing features among ``cutoffs`` (all by default) in one batched pass."""
        wanted = self.cutoffs if cutoffs is None else tuple(float(c) for c in cutoffs)
        missing = tuple(c for c in wanted if c not in self._features)
        if missing:
            started = time.perf_counter()
            self._features.update(reference_features(*self._pass, missing, self.scope))
            self.seconds += time.perf_counter() - started
            self.passes += 1

    def adopt_unfiltered(self, features: torch.Tensor) -> None:
        """Take ``features`` ``[D, F, h, w]`` as the unfiltered reference: the features of the reference
        latent itself in its own context, computed by the caller's pass (an edit's first iteration)."""
        if 1.0 in self.cutoffs and 1.0 not in self._features:
            self._features[1.0] = features.detach()

    def __getitem__(self, cutoff: float) -> torch.Tensor:
        cutoff = float(cutoff)
        if cutoff not in self.cutoffs:
            raise KeyError(f"cutoff {cutoff} is not in the switch set {self.cutoffs}")
        self.compute((cutoff,))
        return self._features[cutoff]

    def __contains__(self, cutoff: object) -> bool:  # without computing anything
        return isinstance(cutoff, (int, float)) and float(cutoff) in self.cutoffs

    def __iter__(self) -> Iterator[float]:
        return iter(self.cutoffs)

    def __len__(self) -> int:
        return len(self.cutoffs)
