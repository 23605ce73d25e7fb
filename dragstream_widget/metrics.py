"""Quality metrics for drags in video: ObjMC, DAI and the Frechet distance.

* ObjMC: mean Euclidean pixel distance between tracked and target trajectories, pooled over every
  frame and point where the track exists.
* DAI (drag accuracy index): for each handle p and target q, the mean squared difference between the
  ``(2r+1) x (2r+1)`` patch of the original frame around p and the patch of the dragged frame around
  q, with pixels in [0, 1] and squared differences summed over channels. Border: only offsets at which
  both patches lie inside their frames count, and the sum is divided by the number of such offsets
  (so in the interior this is the usual normalisation by (2r+1)^2). Lower is better.
* Frechet distance between Gaussians fitted to two feature sets, with a pluggable extractor. The
  default extractor here is a proxy (downsampled colour and edge statistics, no learned weights) and
  is labelled as such in every result; learned extractors load only from a local weights path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Point = tuple[float, float]


def objmc(tracked: np.ndarray, targets: np.ndarray) -> float:
    """ObjMC over ``[frames, points, 2]`` arrays; NaN entries of ``tracked`` (lost tracks) are skipped."""
    tracked, targets = np.asarray(tracked, np.float64), np.asarray(targets, np.float64)
    if tracked.shape != targets.shape or tracked.ndim != 3 or tracked.shape[-1] != 2:
        raise ValueError(
            f"tracked {tracked.shape} and targets {targets.shape} must both be [frames, points, 2]"
        )
    distances = np.linalg.norm(tracked - targets, axis=-1)
    valid = np.isfinite(distances)
    if not valid.any():
        raise ValueError("no tracked point to compare: every track is missing")
    return float(distances[valid].mean())


def _patch_offsets(size: tuple[int, int], p: Point, q: Point, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (dy, dx) at which both the patch around p and the patch around q are inside the frame."""
    offsets = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    h, w = size
    py, px, qy, qx = (round(v) for v in (p[1], p[0], q[1], q[0]))
    inside = (
        (py + dy >= 0)
        & (py + dy < h)
        & (px + dx >= 0)
        & (px + dx < w)
        & (qy + dy >= 0)
        & (qy + dy < h)
        & (qx + dx >= 0)
        & (qx + dx < w)
    )
    return dy[inside], dx[inside]


def dai(
    original: np.ndarray,
    dragged: np.ndarray,
    handles: Sequence[Point],
    targets: Sequence[Point],
    radius: int = 5,
) -> float:
    """DAI of ``uint8 [H, W, 3]`` frames (see the module docstring); averaged over the point pairs."""
    if original.shape != dragged.shape:
        raise ValueError(f"frames differ in shape: {original.shape} vs {dragged.shape}")
    if len(handles) != len(targets) or not handles:
        raise ValueError("give one target per handle, at least one pair")
    a, b = original.astype(np.float64) / 255.0, dragged.astype(np.float64) / 255.0
    scores = []
    for p, q in zip(handles, targets):
        dy, dx = _patch_offsets(original.shape[:2], p, q, radius)
        if len(dy) == 0:
            raise ValueError(f"the patches around {p} and {q} do not overlap the frame")
        source = a[round(p[1]) + dy, round(p[0]) + dx]
        moved = b[round(q[1]) + dy, round(q[0]) + dx]
        scores.append(((source - moved) ** 2).sum(-1).mean())
    return float(np.mean(scores))


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``[samples, dim]`` features."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need [samples >= 2, dim] features, got {features.shape}")
    return features.mean(0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Closed form between Gaussians: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)."""
    root1 = _sqrtm_psd(np.atleast_2d(sigma1))
    cross = _sqrtm_psd(root1 @ np.atleast_2d(sigma2) @ root1)
    diff = np.atleast_1d(mu1) - np.atleast_1d(mu2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(cross))


def proxy_video_features(frames: np.ndarray) -> np.ndarray:
    """A weight-free proxy feature per frame (not Inception/I3D): 8x8 mean colours and edge energies."""
    x = np.asarray(frames, np.float64) / 255.0
    n, h, w, _ = x.shape
    cells = x[:, : h // 8 * 8, : w // 8 * 8].reshape(n, 8, h // 8, 8, w // 8, 3).mean(axis=(2, 4))
    gy, gx = np.abs(np.diff(x.mean(-1), axis=1))[:, :, :-1], np.abs(np.diff(x.mean(-1), axis=2))[:, :-1, :]
    edges = (gy + gx)[:, : (h - 1) // 8 * 8, : (w - 1) // 8 * 8]
    edges = edges.reshape(n, 8, (h - 1) // 8, 8, (w - 1) // 8).mean(axis=(2, 4))
    return np.concatenate([cells.reshape(n, -1), edges.reshape(n, -1)], axis=1)


def frechet_video_distance(
    real: np.ndarray,
    generated: np.ndarray,
    extractor: Callable[[np.ndarray], np.ndarray] = proxy_video_features,
    name: str | None = None,
) -> dict:
    """Frechet distance between the feature statistics of two frame sets; reports which extractor it used."""
    a, b = extractor(real), extractor(generated)
    value = frechet_distance(*gaussian_statistics(a), *gaussian_statistics(b))
    label = name or (
        "proxy (colour and edge statistics, not Inception)"
        if extractor is proxy_video_features
        else getattr(extractor, "__name__", "custom")
    )
    return {"frechet_distance": value, "extractor": label, "samples": [len(a), len(b)]}


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = diff[mask].mean() if mask is not None else diff.mean()
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)
