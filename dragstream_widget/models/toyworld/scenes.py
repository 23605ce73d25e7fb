"""Scenes of the toy world for scripted drags: opening frames rendered from a prompt, and objects
found on a frame by their colour."""

from __future__ import annotations

import numpy as np

from ...geometry import mask_centroid
from .world import render_clip, scene_from_prompt, segment_object, template_ious

DEFAULT_PROMPT = "a red circle and a blue square on a striped background"


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
