"""Geometry of drags: coordinate maps (Eq. 1), target masks, trajectories and the CSS Gaussian map.

Conventions: a point is ``(x, y)`` with x to the right and y down, pixel centres at integer
coordinates; a field has size ``(h, w)``. Angles are measured like ``atan2(dy, dx)`` in image
coordinates, so a positive angle turns from +x towards +y: clockwise as seen on screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

Point = tuple[float, float]
Size = tuple[int, int]


def scale_point(p: Point, from_size: Size, to_size: Size) -> Point:
    """Map a point between grids covering the same frame (pixel-centre aligned)."""
    (h0, w0), (h1, w1) = from_size, to_size
    return ((p[0] + 0.5) * w1 / w0 - 0.5, (p[1] + 0.5) * h1 / h0 - 0.5)


def resize_mask(mask: np.ndarray | torch.Tensor, size: Size) -> torch.Tensor:
    """Area coverage of a pixel mask on a coarser (or finer) grid, as float in [0, 1]."""
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).float()
    h, w = m.shape
    if (h, w) == tuple(size):
        return m
    if h % size[0] == 0 and w % size[1] == 0:
        return F.adaptive_avg_pool2d(m[None, None], size)[0, 0]
    return F.interpolate(m[None, None], size=size, mode="bilinear", antialias=True, align_corners=False)[0, 0]


def pixel_grid(size: Size, device=None) -> torch.Tensor:
    """``[h, w, 2]`` with the (x, y) position of every pixel centre."""
    ys, xs = torch.meshgrid(
        torch.arange(size[0], dtype=torch.float32, device=device),
        torch.arange(size[1], dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1)


def translation_map(size: Size, delta: Point, device=None) -> torch.Tensor:
    # Eq. 1: coordinate map Pi of a translation (also deformation and 3D rotation): p -> p - delta
    return pixel_grid(size, device) - torch.tensor(delta, dtype=torch.float32, device=device)


def rotation_map(size: Size, center: Point, angle: float, device=None) -> torch.Tensor:
    # Eq. 1: coordinate map Pi of a 2D rotation by `angle` about c: p -> R(-angle) (p - c) + c
    c = torch.tensor(center, dtype=torch.float32, device=device)
    d = pixel_grid(size, device) - c
    cos, sin = math.cos(angle), math.sin(angle)
    x = cos * d[..., 0] + sin * d[..., 1]
    y = -sin * d[..., 0] + cos * d[..., 1]
    return torch.stack([x, y], dim=-1) + c


def warp(field: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Sample ``field`` (``[h, w]``, ``[C, h, w]`` or ``[B, C, h, w]``) at ``coords`` ``[h', w', 2]``.

    Bilinear, zero outside the field. Returns the field's leading shape over ``(h', w')``.
    """
    shape = field.shape
    x = field.reshape(-1, 1, *shape[-2:]) if field.dim() == 2 else field.reshape(-1, *shape[-3:])
    h, w = shape[-2:]
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=coords.device)
    grid = (coords * scale - 1.0).to(x.dtype)
    grid = grid[None].expand(x.shape[0], *grid.shape)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(*shape[:-2], *coords.shape[:2])


def target_mask(handle_mask: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    # Eq. 1: target mask Y = H o Pi, the handle region carried to its target
    return warp(handle_mask, coords)


def signed_angle(center: Point, p_from: Point, p_to: Point) -> float:
    """Angle at ``center`` from ``p_from`` to ``p_to``, in (-pi, pi] (positive: clockwise on screen)."""
    a = math.atan2(p_from[1] - center[1], p_from[0] - center[0])
    b = math.atan2(p_to[1] - center[1], p_to[0] - center[0])
    d = (b - a) % (2 * math.pi)
    return d - 2 * math.pi if d > math.pi else d


def _as_bool(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    return m > 0.5 if m.dtype != bool else m


def mask_bbox(mask: np.ndarray | torch.Tensor) -> tuple[int, int, int, int]:
    """Inclusive ``(x0, y0, x1, y1)`` of a mask (float masks count where > 0.5)."""
    ys, xs = np.nonzero(_as_bool(mask))
    if len(xs) == 0:
        raise ValueError("the mask is empty")
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def mask_centroid(mask: np.ndarray | torch.Tensor) -> Point:
    ys, xs = np.nonzero(_as_bool(mask))
    if len(xs) == 0:
        raise ValueError("the mask is empty")
    return float(xs.mean()), float(ys.mean())


def gaussian_map(size: Size, center: Point, sigma: Point, device=None) -> torch.Tensor:
    """Anisotropic Gaussian with peak 1 at ``center`` and standard deviations ``sigma = (sx, sy)``."""
    g = pixel_grid(size, device)
    dx = (g[..., 0] - center[0]) / sigma[0]
    dy = (g[..., 1] - center[1]) / sigma[1]
    return torch.exp(-0.5 * (dx**2 + dy**2))


def css_gaussian_map(mask: np.ndarray | torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    # Eq. 9-10: CSS gradient map, centred on the mask's box, sigma = (box_w / 2 * alpha, box_h / 2 * alpha)
    x0, y0, x1, y1 = mask_bbox(mask)
    center = ((x0 + x1) / 2, (y0 + y1) / 2)
    sigma = ((x1 - x0 + 1) / 2 * alpha, (y1 - y0 + 1) / 2 * alpha)
    device = mask.device if isinstance(mask, torch.Tensor) else None
    return gaussian_map(tuple(np.shape(mask)), center, sigma, device)


def split_translation(start: Point, end: Point, max_step: float = 16.0) -> list[Point]:
    """Equal steps of at most ``max_step`` from ``start`` to ``end`` (start excluded, end included)."""
    dist = math.hypot(end[0] - start[0], end[1] - start[1])
    n = max(1, math.ceil(dist / max_step - 1e-9))
    return [
        (start[0] + (end[0] - start[0]) * k / n, start[1] + (end[1] - start[1]) * k / n)
        for k in range(1, n + 1)
    ]


def split_rotation(angle: float, max_step: float = math.radians(8)) -> list[float]:
    """Cumulative angles in equal steps of at most ``max_step``, the last equal to ``angle``."""
    n = max(1, math.ceil(abs(angle) / max_step - 1e-9))
    return [angle * k / n for k in range(1, n + 1)]


def resample_polyline(points: Sequence[Point], n: int) -> list[Point]:
    """``n`` points evenly spaced by arc length after the polyline's start, the last at its end."""
    if n < 1:
        raise ValueError(f"need at least one point, got n={n}")
    if len(points) == 0:
        raise ValueError("the polyline has no points")
    pts = np.asarray(points, dtype=np.float64)
    lengths = np.hypot(*np.diff(pts, axis=0).T) if len(pts) > 1 else np.zeros(0)
    total = float(lengths.sum())
    if total == 0:
        return [tuple(map(float, pts[-1]))] * n
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    out = []
    for k in range(1, n + 1):
        s = total * k / n
        i = min(int(np.searchsorted(cumulative, s, side="right")) - 1, len(lengths) - 1)
        while lengths[i] == 0 and i > 0:
            i -= 1
        t = 0.0 if lengths[i] == 0 else (s - cumulative[i]) / lengths[i]
        p = pts[i] + (pts[i + 1] - pts[i]) * min(max(t, 0.0), 1.0)
        out.append((float(p[0]), float(p[1])))
    return out
