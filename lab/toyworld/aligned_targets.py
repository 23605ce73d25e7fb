"""Training targets that agree with a generated context.

A clip streamed by the model from its real opening block drifts from the real clip: after a few blocks
its objects sit a few pixels off the real path. With the real clip as the target, the model learns to
jump from where its context puts an object to where the real clip has it. Here the target is the real
clip re-drawn from where the rollout put each object: for every block, each object's real path shifted
by the offset between its centroid on the rollout's last frame before that block and its real centre
there, with its real shape, size, angle and motion. The context then stays the model's own, and the
target asks it only to keep drawing the scene's objects as they are, from wherever they were drawn.
"""

from __future__ import annotations

import numpy as np
import torch

from dragstream_widget.models.toyworld.world import (
    OBJECT_COLORS,
    Scene,
    WorldConfig,
    object_centers,
    render_shifted,
)

# RGB distance within which a pixel counts as an object's colour: the toy world's object colours lie
# at least 80 apart and its muted backgrounds further still.
COLOR_TOLERANCE = 50.0
MIN_PIXELS = 4  # fewer pixels of an object's colour: not found on that frame


def object_centroids(
    frames: torch.Tensor, colors: torch.Tensor, tolerance: float = COLOR_TOLERANCE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids ``(x, y)`` ``[B, K, N, 2]`` of each object's colour on ``frames`` ``[B, K, 3, H, W]``
    (RGB 0-255), for ``colors`` ``[B, N, 3]``, and ``[B, K, N]`` whether it was found at all."""
    height, width = frames.shape[-2:]
    distance = (frames[:, :, None] - colors[:, None, :, :, None, None]).norm(dim=3)  # [B, K, N, H, W]
    weight = (distance < tolerance).float()
    count = weight.sum(dim=(-2, -1))
    ys = torch.arange(height, device=frames.device, dtype=weight.dtype)
    xs = torch.arange(width, device=frames.device, dtype=weight.dtype)
    x = (weight.sum(-2) * xs).sum(-1) / count.clamp_min(1)
    y = (weight.sum(-1) * ys).sum(-1) / count.clamp_min(1)
    return torch.stack([x, y], dim=-1), count >= MIN_PIXELS


def block_offsets(
    centroids: np.ndarray, found: np.ndarray, real_centers: np.ndarray, frames_per_block: int
) -> np.ndarray:
    """Per frame and object, the offset ``[T, N, 2]`` of the target from the real path: zero in the opening
    block; in block k, the object's rollout centroid on the last frame of block k - 1 (``centroids``
    ``[K, N, 2]`` with ``found`` ``[K, N]``, one per block from the opening one) minus its real centre
    there; where the object was not found, the offset of the block before."""
    frames, objects = real_centers.shape[:2]
    offsets = np.zeros((frames, objects, 2))
    current = np.zeros((objects, 2))
    for start in range(frames_per_block, frames, frames_per_block):
        block = start // frames_per_block - 1
        last = start - 1
        seen = found[block]
        current = np.where(seen[:, None], centroids[block] - real_centers[last], current)
        offsets[start : start + frames_per_block] = current
    return offsets


def scene_colors(scenes: list[Scene], device) -> torch.Tensor:
    """``[B, N_max, 3]`` RGB of each scene's objects, padded with an impossible colour (never found)."""
    most = max(len(s.objects) for s in scenes)
    table = np.full((len(scenes), most, 3), -1000.0)
    for i, scene in enumerate(scenes):
        for j, obj in enumerate(scene.objects):
            table[i, j] = OBJECT_COLORS[obj.color]
    return torch.as_tensor(table, device=device, dtype=torch.float32)


def aligned_clips(
    scenes: list[Scene], last_frames: torch.Tensor, frames: int, frames_per_block: int, config: WorldConfig
) -> np.ndarray:
    """``uint8 [B, T, H, W, 3]``: each scene's clip re-drawn from where a rollout put its objects, given
    ``last_frames`` ``[B, K, 3, H, W]`` (RGB 0-255): the last frame of every block of the rollout, the
    real opening block's first."""
    centroids, found = object_centroids(last_frames, scene_colors(scenes, last_frames.device))
    centroids, found = centroids.cpu().numpy(), found.cpu().numpy()
    clips = []
    for i, scene in enumerate(scenes):
        count = len(scene.objects)
        real_centers = object_centers(scene, frames, config)
        offsets = block_offsets(centroids[i, :, :count], found[i, :, :count], real_centers, frames_per_block)
        clips.append(render_shifted(scene, frames, offsets, config))
    return np.stack(clips)
