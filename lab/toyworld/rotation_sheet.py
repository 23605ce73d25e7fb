"""A picture of rotation drags: per seed, the frame the drag was drawn on above the frame measured after
it, each with the square fitted to the dragged object outlined, and the turn that was measured."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from dragstream_widget.models.toyworld.world import shape_template

if TYPE_CHECKING:
    from .drag_checks import RotationView


def rotation_sheet(views: Sequence[RotationView], path: str | Path, title: str) -> Path:
    """Save the sheet of ``views`` (one column each) as an image at ``path``."""
    if not views:
        raise ValueError("no rotation drags to draw: every seed was skipped")
    path = Path(path)
    figure = Figure(figsize=(max(4.0, 0.4 + 1.25 * len(views)), 3.3), layout="constrained")
    axes = figure.subplots(2, len(views), squeeze=False)
    for column, view in enumerate(views):
        rows = ((view.before, view.square_before), (view.after, view.square_after))
        for axis, (frame, square) in zip(axes[:, column], rows):
            axis.imshow(frame)
            axis.set_xticks([])
            axis.set_yticks([])
            if square is not None:
                center, radius, degrees = square
                outline = shape_template("square", radius, math.radians(degrees), frame.shape[:2], center)
                axis.contour(outline, levels=[0.5], colors="white", linewidths=0.7)
        axes[0, column].set_title(f"seed {view.seed}", fontsize=8)
        measured = "lost" if view.turned_degrees is None else f"{view.turned_degrees:.1f}°"
        axes[1, column].set_xlabel(measured, fontsize=8)
    axes[0, 0].set_ylabel("drawn on", fontsize=8)
    axes[1, 0].set_ylabel("after", fontsize=8)
    figure.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
