"""Point trackers for ObjMC: a common interface, ground truth on the toy world, and tracking for other videos.

``track(frames, points)`` takes ``uint8 [T, H, W, 3]`` frames and ``[N, 2]`` points ``(x, y)`` on the first
frame, and returns ``[T, N, 2]`` positions, NaN where a point is lost.

* :class:`ToyWorldTracker`: the toy world's colour segmentation of each point's object; a point moves
  with the object's centroid and, when asked, turns with the object's rotation: the angle at which the
  first mask, turned, best overlaps the current one, searched within 35 degrees of the previous
  frame's angle (so shapes with rotational symmetry are followed, not confused with their twins).
* :class:`LucasKanadeTracker`: pyramidal Lucas-Kanade, frame to frame, no weights (the default).
* :class:`CoTrackerTracker`: CoTracker from a local checkpoint file only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ...geometry import mask_iou
from ...models.toyworld.world import segment_object


class PointTracker(Protocol):
    name: str

    def track(self, frames: np.ndarray, points: np.ndarray) -> np.ndarray: ...


def _check_inputs(frames: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames, points = np.asarray(frames), np.asarray(points, np.float64).reshape(-1, 2)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be [T >= 1, H, W, 3], got {frames.shape}")
    return frames, points


# ----- ground truth on the toy world -------------------------------------------------------------


def _rotate_mask(mask: np.ndarray, center: tuple[float, float], angle: float) -> np.ndarray:
    """The mask turned by ``angle`` (image coordinates) about ``center``, nearest neighbour."""
    h, w = mask.shape
    y, x = np.mgrid[:h, :w].astype(np.float64)
    c, s = math.cos(angle), math.sin(angle)
    sx = center[0] + c * (x - center[0]) + s * (y - center[1])
    sy = center[1] - s * (x - center[0]) + c * (y - center[1])
    ix, iy = np.round(sx).astype(int), np.round(sy).astype(int)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    out = np.zeros_like(mask)
    out[inside] = mask[iy[inside], ix[inside]]
    return out


def mask_rotation(
    first: np.ndarray, current: np.ndarray, around: float = 0.0, degrees: float = 35.0, step: float = 0.5
) -> float:
    """The angle (radians) that, applied to ``first`` about its centroid and moved onto ``current``'s
    centroid, overlaps ``current`` best (IoU), searched within +-``degrees`` of ``around`` (below half the
    symmetry angle of every toy shape, 72 degrees for the star, so the answer is not a symmetric twin)."""
    ys, xs = np.nonzero(first)
    cys, cxs = np.nonzero(current)
    centred = np.roll(
        np.roll(first, round(cys.mean() - ys.mean()), axis=0), round(cxs.mean() - xs.mean()), axis=1
    )
    center = (cxs.mean(), cys.mean())
    best, best_iou = 0.0, -1.0
    for angle in around + np.radians(np.arange(-degrees, degrees + step / 2, step)):
        turned = _rotate_mask(centred, center, angle)
        iou = mask_iou(turned, current)
        if iou > best_iou + 1e-9 or (
            abs(iou - best_iou) <= 1e-9 and abs(angle - around) < abs(best - around)
        ):
            best, best_iou = float(angle), iou
    return best


class ToyWorldTracker:
    """Ground-truth tracking on toy-world frames through each point's object colour."""

    name = "toyworld-segmentation"

    def __init__(self, colors: list[str], rotation: list[bool] | None = None, min_pixels: int = 4):
        self.colors = list(colors)
        self.rotation = list(rotation) if rotation is not None else [False] * len(self.colors)
        self.min_pixels = min_pixels

    def track(self, frames: np.ndarray, points: np.ndarray) -> np.ndarray:
        frames, points = _check_inputs(frames, points)
        if len(points) != len(self.colors):
            raise ValueError(f"{len(points)} points but {len(self.colors)} object colours")
        out = np.full((len(frames), len(points), 2), np.nan)
        for i, (color, turn) in enumerate(zip(self.colors, self.rotation)):
            first = segment_object(frames[0], color)
            if first.sum() < self.min_pixels:
                continue
            y0, x0 = np.nonzero(first)
            c0 = np.array([x0.mean(), y0.mean()])
            angle = 0.0
            for t, frame in enumerate(frames):
                mask = segment_object(frame, color)
                if mask.sum() < self.min_pixels:
                    continue
                ys, xs = np.nonzero(mask)
                if turn:
                    angle = mask_rotation(first, mask, around=angle)
                c, s = math.cos(angle), math.sin(angle)
                dx, dy = points[i] - c0
                out[t, i] = (xs.mean() + c * dx - s * dy, ys.mean() + s * dx + c * dy)
        return out


# ----- pyramidal Lucas-Kanade ----------------------------------------------------------------------


def _gray(frame: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(frame, np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0)


def _pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    out = [image]
    for _ in range(levels - 1):
        if min(out[-1].shape) < 16:
            break
        out.append(F.avg_pool2d(out[-1][None, None], 2)[0, 0])
    return out


def _sample(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``image [H, W]`` at pixel positions ``x``, ``y`` (border values outside)."""
    h, w = image.shape
    grid = torch.stack([x / max(w - 1, 1) * 2 - 1, y / max(h - 1, 1) * 2 - 1], dim=-1)
    return F.grid_sample(
        image[None, None],
        grid[None].to(image.dtype),
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
    )[0, 0]


class LucasKanadeTracker:
    """Pyramidal Lucas-Kanade point tracking, frame to frame (no learned weights)."""

    name = "lucas-kanade"

    def __init__(self, radius: int = 7, levels: int = 3, iterations: int = 20, min_eigen: float = 1e-4):
        self.radius, self.levels, self.iterations, self.min_eigen = radius, levels, iterations, min_eigen

    def _step(
        self, prev: torch.Tensor, nxt: torch.Tensor, points: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions of ``points [N, 2]`` of ``prev`` in ``nxt`` and whether each is trackable."""
        pyr_prev, pyr_next = _pyramid(prev, self.levels), _pyramid(nxt, self.levels)
        offsets = torch.arange(-self.radius, self.radius + 1, dtype=prev.dtype)
        oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
        ox, oy = ox.reshape(1, -1), oy.reshape(1, -1)
        flow = torch.zeros_like(points)
        ok = torch.ones(len(points), dtype=torch.bool)
        for level in reversed(range(len(pyr_prev))):
            scale = 2.0**level
            a, b = pyr_prev[level], pyr_next[level]
            gy, gx = torch.gradient(a)
            px, py = points[:, :1] / scale + ox, points[:, 1:] / scale + oy
            ix, iy, template = _sample(gx, px, py), _sample(gy, px, py), _sample(a, px, py)
            gxx, gxy, gyy = (ix * ix).sum(1), (ix * iy).sum(1), (iy * iy).sum(1)
            det = gxx * gyy - gxy**2
            trace_half = (gxx + gyy) / 2
            min_eig = trace_half - torch.sqrt((trace_half**2 - det).clamp_min(0))
            good = min_eig / ix.shape[1] > self.min_eigen
            if level == 0:
                ok &= good
            d = flow / scale
            for _ in range(self.iterations):
                error = _sample(b, px + d[:, :1], py + d[:, 1:]) - template
                bx, by = -(ix * error).sum(1), -(iy * error).sum(1)
                step = torch.stack(
                    [
                        (gyy * bx - gxy * by) / det.clamp_min(1e-12),
                        (gxx * by - gxy * bx) / det.clamp_min(1e-12),
                    ],
                    1,
                )
                step = torch.where(good[:, None], step, torch.zeros_like(step))
                d = d + step
                if step.abs().max() < 1e-3:
                    break
            flow = d * scale
        return points + flow, ok

    def track(self, frames: np.ndarray, points: np.ndarray) -> np.ndarray:
        frames, points = _check_inputs(frames, points)
        h, w = frames.shape[1:3]
        out = np.full((len(frames), len(points), 2), np.nan)
        current = torch.as_tensor(points, dtype=torch.float64)
        alive = torch.ones(len(points), dtype=torch.bool)
        out[0] = points
        previous = _gray(frames[0])
        for t in range(1, len(frames)):
            image = _gray(frames[t])
            current, ok = self._step(previous, image, current)
            inside = (
                (current[:, 0] >= 0)
                & (current[:, 0] <= w - 1)
                & (current[:, 1] >= 0)
                & (current[:, 1] <= h - 1)
            )
            alive &= ok & inside & torch.isfinite(current).all(1)
            out[t][alive.numpy()] = current[alive].numpy()
            previous = image
        return out


# ----- CoTracker from a local checkpoint -----------------------------------------------------------


class CoTrackerTracker:
    """CoTracker, loaded only from a local checkpoint file (needs the ``cotracker`` package)."""

    name = "cotracker"

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(
                f"no CoTracker checkpoint at {checkpoint}: download it once (e.g. scaled_offline.pth) and pass "
                "its local path; nothing is fetched at run time"
            )
        try:
            from cotracker.predictor import CoTrackerPredictor
        except ImportError as error:
            raise ImportError(
                "CoTracker tracking needs the cotracker package (pip install from its repository); "
                "the default tracker needs nothing"
            ) from error
        self.device = device
        self.model = CoTrackerPredictor(checkpoint=str(checkpoint)).to(device).eval()

    @torch.no_grad()
    def track(self, frames: np.ndarray, points: np.ndarray) -> np.ndarray:
        frames, points = _check_inputs(frames, points)
        video = torch.as_tensor(frames).permute(0, 3, 1, 2)[None].float().to(self.device)
        queries = torch.cat([torch.zeros(len(points), 1), torch.as_tensor(points, dtype=torch.float32)], 1)
        tracks, visible = self.model(video, queries=queries[None].to(self.device))
        out = tracks[0].cpu().numpy().astype(np.float64)
        out[~visible[0].cpu().numpy()] = np.nan
        return out


def make_tracker(name: str, checkpoint: str | None = None, device: str = "cpu") -> PointTracker:
    """A tracker for videos without ground truth: ``"lucas-kanade"`` (default) or ``"cotracker"``."""
    if name == "lucas-kanade":
        return LucasKanadeTracker()
    if name == "cotracker":
        if checkpoint is None:
            raise ValueError("the cotracker tracker needs --tracker-checkpoint PATH (a local file)")
        return CoTrackerTracker(checkpoint, device)
    raise ValueError(f"unknown tracker {name!r}; choose lucas-kanade or cotracker")
