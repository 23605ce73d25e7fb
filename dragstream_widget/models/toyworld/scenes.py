"""Scenes of the toy world for scripted drags: opening frames rendered from a prompt, objects found on a
frame by their colour, and how many objects of each colour a frame shows."""

from __future__ import annotations

import numpy as np

from ...geometry import component_sizes, mask_centroid
from .world import OBJECT_COLORS, object_labels, render_clip, scene_from_prompt, segment_object, template_ious

DEFAULT_PROMPT = "a red circle and a blue square on a striped background"
# A connected patch of an object's colour smaller than this is a speck, not an object (the smallest
# object the world draws covers about 40 pixels).
MIN_OBJECT_PIXELS = 8
COLOR_INDEX = {color: index for index, color in enumerate(OBJECT_COLORS)}


def opening_frames(prompt: str, seed: int, frames: int) -> np.ndarray:
    """Crisp opening frames for ``prompt`` from the world renderer (image-to-video start)."""
    return render_clip(scene_from_prompt(prompt, np.random.default_rng(seed)), frames).frames


def centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """The mask's centroid, or None when the object is not visible."""
    return mask_centroid(mask) if mask.any() else None


class ObjectNotVisible(RuntimeError):
    """The object a scripted drag should take is not on the frame (hidden, melted away or gone)."""


def object_region(frame: np.ndarray, color: str) -> tuple[np.ndarray, tuple[float, float]]:
    mask = segment_object(frame, color)
    center = centroid(mask)
    if center is None:
        raise ObjectNotVisible(f"the {color} object is not visible on the current frame")
    return mask, center


def square_fit(mask: np.ndarray, radius: float) -> tuple[float, float]:
    """Orientation of a square blob in degrees, modulo 90, by best template fit (0.5 degree steps), and
    that template's IoU with the blob (how square it is)."""
    degrees = np.arange(0, 90, 0.5)
    ious = template_ious(mask, "square", radius, np.radians(degrees), centroid(mask))
    best = int(np.argmax(ious))  # the first of equal fits
    return float(degrees[best]), float(ious[best])


def object_counts(frame: np.ndarray, colors=tuple(OBJECT_COLORS)) -> dict[str, int]:
    """Per colour, the connected patches of that object colour on ``frame`` of at least
    ``MIN_OBJECT_PIXELS`` pixels: one per object where the frame is right, two where an object split or
    was duplicated, none where it was lost."""
    labels = object_labels(frame)
    return {
        color: sum(size >= MIN_OBJECT_PIXELS for size in component_sizes(labels == COLOR_INDEX[color]))
        for color in colors
    }


def count_changes(counts: dict[str, int], truth: dict[str, int]) -> dict[str, int]:
    """Objects spawned (patches beyond the truth's count, any colour) and lost (below it) on one frame."""
    spawned = sum(max(counts[c] - truth.get(c, 0), 0) for c in counts)
    lost = sum(max(truth.get(c, 0) - counts.get(c, 0), 0) for c in truth)
    return {"spawned": spawned, "lost": lost}


def foreign_color_pixels(frame: np.ndarray, region: np.ndarray, own_color: str) -> int:
    """Pixels inside ``region`` that have the colour of an object other than ``own_color``."""
    labels = object_labels(frame)
    return int(((labels >= 0) & (labels != COLOR_INDEX[own_color]) & region).sum())
