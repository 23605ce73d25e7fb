"""Geometry of drags: coordinate maps (Eq. 1), target masks, trajectories and the CSS Gaussian map.

Conventions: a point is ``(x, y)`` with x to the right and y down, pixel centres at integer
coordinates; a field has size ``(h, w)``. Angles are measured like ``atan2(dy, dx)`` in image
coordinates, so a positive angle turns from +x towards +y: clockwise as seen on screen.
Torch functions return float32 tensors on the device of their input (or the ``device`` argument).
Mask helpers accept numpy or torch masks; a non-boolean mask counts where its value is > 0.5.
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
    """Map a point between two grids ``(h, w)`` covering the same frame, pixel-centre aligned."""
    (h0, w0), (h1, w1) = from_size, to_size
    return ((p[0] + 0.5) * w1 / w0 - 0.5, (p[1] + 0.5) * h1 / h0 - 0.5)


def resize_mask(mask: np.ndarray | torch.Tensor, size: Size) -> torch.Tensor:
    """Area coverage of a mask ``[H, W]`` on a grid of ``size``, float32 in [0, 1]."""
    m = mask if isinstance(mask, torch.Tensor) else torch.tensor(np.asarray(mask))
    m = m.to(torch.float32)[None, None]
    (h, w), size = m.shape[-2:], tuple(size)
    if h % size[0] == 0 and w % size[1] == 0:
        return F.adaptive_avg_pool2d(m, size)[0, 0]
    return F.interpolate(m, size=size, mode="bilinear", antialias=True, align_corners=False)[0, 0]


def pixel_grid(size: Size, device: torch.device | str | None = None) -> torch.Tensor:
    """``[h, w, 2]`` with the (x, y) position of every pixel centre."""
    ys, xs = torch.meshgrid(
        torch.arange(size[0], dtype=torch.float32, device=device),
        torch.arange(size[1], dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1)


def translation_map(size: Size, delta: Point, device: torch.device | str | None = None) -> torch.Tensor:
    """Coordinate map ``[h, w, 2]`` of a translation by ``delta``: each target pixel's source position."""
    # Eq. 1: coordinate map Pi of a translation (also deformation and 3D rotation): p -> p - delta
    return pixel_grid(size, device) - torch.tensor(delta, dtype=torch.float32, device=device)


def rotation_map(
    size: Size, center: Point, angle: float, device: torch.device | str | None = None
) -> torch.Tensor:
    """Coordinate map ``[h, w, 2]`` of a rotation by ``angle`` (radians, positive clockwise on screen)."""
    # Eq. 1: coordinate map Pi of a 2D rotation about c: p -> R(-angle) (p - c) + c
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
    if field.dim() not in (2, 3, 4):
        raise ValueError(f"field must be [h, w], [C, h, w] or [B, C, h, w], got {tuple(field.shape)}")
    shape = field.shape
    x = field.reshape(-1, 1, *shape[-2:]) if field.dim() == 2 else field.reshape(-1, *shape[-3:])
    h, w = shape[-2:]
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=coords.device)
    grid = (coords.to(torch.float32) * scale - 1.0).to(x.dtype)
    grid = grid[None].expand(x.shape[0], *grid.shape)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(*shape[:-2], *coords.shape[:2])


def target_mask(handle_mask: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """The handle mask carried to its target through the coordinate map ``coords``."""
    # Eq. 1: target mask Y = H o Pi
    return warp(handle_mask, coords)


def signed_angle(center: Point, p_from: Point, p_to: Point) -> float:
    """Angle at ``center`` from ``p_from`` to ``p_to``, in (-pi, pi] (positive: clockwise on screen)."""
    a = math.atan2(p_from[1] - center[1], p_from[0] - center[0])
    b = math.atan2(p_to[1] - center[1], p_to[0] - center[0])
    d = (b - a) % (2 * math.pi)
    return d - 2 * math.pi if d > math.pi else d


def _mask_pixels(mask: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pixels in a mask (bool, or value > 0.5); ValueError if none."""
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    ys, xs = np.nonzero(m if m.dtype == bool else m > 0.5)
    if len(xs) == 0:
        raise ValueError("the mask is empty")
    return ys, xs


def mask_bbox(mask: np.ndarray | torch.Tensor) -> tuple[int, int, int, int]:
    """Inclusive pixel bounds ``(x0, y0, x1, y1)`` of a mask (non-bool masks count where > 0.5)."""
    ys, xs = _mask_pixels(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def mask_centroid(mask: np.ndarray | torch.Tensor) -> Point:
    """Mean ``(x, y)`` of the mask's pixels, unweighted (non-bool masks count where > 0.5)."""
    ys, xs = _mask_pixels(mask)
    return float(xs.mean()), float(ys.mean())


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def shifted(mask: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``mask`` moved by the rounded ``(dx, dy)``, filled with False where it enters."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    sx, sy = round(dx), round(dy)
    if abs(sx) >= w or abs(sy) >= h:
        return out
    out[max(sy, 0) : h + min(sy, 0), max(sx, 0) : w + min(sx, 0)] = mask[
        max(-sy, 0) : h + min(-sy, 0), max(-sx, 0) : w + min(-sx, 0)
    ]
    return out


def component_sizes(mask: np.ndarray) -> list[int]:
    """Pixel counts of the 8-connected components of a boolean mask, largest first (labels spread as
    the smallest pixel index of each component, one neighbourhood per round)."""
    covered = np.asarray(mask, bool)
    if not covered.any():
        return []
    empty = covered.size
    labels = np.where(covered, np.arange(covered.size).reshape(covered.shape), empty)
    height, width = covered.shape
    while True:
        padded = np.pad(labels, 1, constant_values=empty)
        around = np.min(
            [padded[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)], axis=0
        )
        spread = np.where(covered, around, empty)
        if np.array_equal(spread, labels):
            break
        labels = spread
    _, counts = np.unique(labels[covered], return_counts=True)
    return sorted(counts.tolist(), reverse=True)


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Binary dilation by a square of side ``2 * pixels + 1`` (no wrap at the borders)."""
    out = mask.copy()
    for dy in range(-pixels, pixels + 1):
        for dx in range(-pixels, pixels + 1):
            out |= shifted(mask, dx, dy)
    return out


def gaussian_map(
    size: Size, center: Point, sigma: Point, device: torch.device | str | None = None
) -> torch.Tensor:
    """``[h, w]`` anisotropic Gaussian with peak 1 at ``center`` and deviations ``sigma = (sx, sy)``."""
    g = pixel_grid(size, device)
    dx = (g[..., 0] - center[0]) / sigma[0]
    dy = (g[..., 1] - center[1]) / sigma[1]
    return torch.exp(-0.5 * (dx**2 + dy**2))


def css_gaussian_map(mask: np.ndarray | torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """CSS gradient weight over the mask's grid, centred on the centre of its bounding box."""
    # Eq. 9-10: G centred on the box centre, sigma = (box_w / 2 * alpha, box_h / 2 * alpha)
    x0, y0, x1, y1 = mask_bbox(mask)
    center = ((x0 + x1) / 2, (y0 + y1) / 2)
    sigma = ((x1 - x0 + 1) / 2 * alpha, (y1 - y0 + 1) / 2 * alpha)
    device = mask.device if isinstance(mask, torch.Tensor) else None
    return gaussian_map(tuple(mask.shape[-2:]), center, sigma, device)


def _num_steps(amount: float, max_step: float) -> int:
    """Equal steps of at most ``max_step`` covering ``amount`` (a float rounding of 1e-9 is forgiven)."""
    if not max_step > 0:
        raise ValueError(f"max_step must be positive, got {max_step}")
    return max(1, math.ceil(amount / max_step - 1e-9))


def split_translation(start: Point, end: Point, max_step: float = 16.0) -> list[Point]:
    """Equal steps of at most ``max_step`` px from ``start`` to ``end`` (start excluded, end included)."""
    n = _num_steps(math.hypot(end[0] - start[0], end[1] - start[1]), max_step)
    dx, dy = end[0] - start[0], end[1] - start[1]
    return [(start[0] + dx * k / n, start[1] + dy * k / n) for k in range(1, n)] + [
        (float(end[0]), float(end[1]))
    ]


def split_rotation(angle: float, max_step: float = math.radians(8)) -> list[float]:
    """Cumulative angles in equal steps of at most ``max_step``, the last equal to ``angle``."""
    n = _num_steps(abs(angle), max_step)
    return [angle * k / n for k in range(1, n)] + [float(angle)]


def resample_polyline(points: Sequence[Point], n: int) -> list[Point]:
    """``n`` points evenly spaced by arc length along a polyline, one step after its start to its end.

    A polyline of zero length (all points equal) gives its end point ``n`` times.
    """
    if n < 1:
        raise ValueError(f"need at least one point, got n={n}")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("the polyline has no points")
    lengths = np.hypot(*np.diff(pts, axis=0).T)
    keep = np.concatenate([[True], lengths > 0])  # drop repeated points so arc length strictly grows
    pts, arc = pts[keep], np.concatenate([[0.0], np.cumsum(lengths[lengths > 0])])
    s = arc[-1] * np.arange(1, n + 1) / n
    xs, ys = np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])
    return [(float(x), float(y)) for x, y in zip(xs[:-1], ys[:-1])] + [(float(pts[-1, 0]), float(pts[-1, 1]))]


def curved_path(
    start: tuple[float, float], radius: float, count: int, size: int
) -> list[tuple[float, float]]:
    """A half circle starting at ``start``, bending away from the nearer frame edge."""
    direction = 1.0 if start[1] < size / 2 else -1.0
    points = []
    for k in range(1, count + 1):
        a = math.pi * k / count
        x = start[0] + radius * (1 - math.cos(a)) * (1 if start[0] < size / 2 else -1)
        y = start[1] + direction * radius * math.sin(a)
        points.append((min(max(x, 0.0), size - 1.0), min(max(y, 0.0), size - 1.0)))
    return points
