"""Drag settings tuned for particular backends, found by the backend's ``name``.

The paper's settings (``DragConfig()``) are tuned for Wan at 832x480; a backend without a preset here
uses them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..models.toyworld.model import MODEL_NAME as TOYWORLD
from ..models.wan import PRESETS as WAN_PRESETS
from .config import DragConfig

if TYPE_CHECKING:
    from ..models.base import VideoBackend

# The paper's settings are tuned for Wan at 832x480; on the toy model a drag at T'=3 of 4 with the
# paper's step size moves objects about half a pixel. Optimising one step later (sigma 0.75 rather
# than 0.9) with a much larger step moves them all the way in four iterations; measured in lab/NOTES.md
# (drag sweep), where eight iterations at 0.1 land about twice as far off in 1.5x the time.
# L_rec as a squared error (the released code's choice) and a CSS map twice as wide as the paper's:
# animations follow their path about 1 px closer and 14 px edits land about 2 px closer, leaving
# half the ghost, at the same cost (lab/NOTES.md, "The shipped drag settings").
# 2D rotations repeat L_rec and L_cst on the x0 prediction at weight 30 and walk 15-degree segments:
# a square spans about two tokens here, too few for warped token features to turn it (lab/NOTES.md,
# "Rotations: L_rec in latent space").
# The CSS map, 1.5x wider still, weighs AdamW's step rather than the gradient, where Adam would undo it
# element by element: drags land as close and turn as often, the rest of the frame keeps about 1 dB
# more, and twelve edits in a row drift about a fifth less (lab/NOTES.md, "The CSS map on AdamW's step").
# Cheaper drags: an animated block walks only its own stretch of the trajectory, from where the
# previous block left the object, in at most three iterations. Over the quality bench's 23 animations,
# paired against four iterations per segment walked from the reference frame: ObjMC -0.10 px,
# non-editable PSNR +0.29 dB, at 3 iterations a block instead of 4-12; edits are unchanged. Edits of
# two larger steps would also fit 0.3 s, but raise the drift of repeated edits by about a fifth
# (lab/NOTES.md, "Cheaper drags").
TOY_DRAG_CONFIG = DragConfig(
    optimize_step=2,
    learning_rate=0.6,
    iterations=4,
    reconstruction_loss="mse",
    css_alpha=3.0,
    css_on="step",
    rotation_x0_weight=30.0,
    segment_degrees=15.0,
    walk_from="previous_block",
    animation_max_iterations=3,
)

# Faster edits: an edit of one trajectory segment (up to a token, 8 px) optimises later still (sigma
# 0.5) with three larger steps and lands as close in about 0.8x the time; longer edits and animations
# keep the settings above. Not the default: at that low noise level ADSR raises the latent drift of
# repeated edits instead of lowering it, and twelve edits in a row drift about 40 % more (lab/NOTES.md).
TOY_FAST_EDIT_CONFIG = replace(
    TOY_DRAG_CONFIG, edit_optimize_step=3, edit_iterations=3, edit_learning_rate=0.8, edit_max_segments=1
)

# Wan at 832x480: the paper's settings, with each animated block walking only its own stretch of the
# trajectory (from where the previous block left the object) in at most three iterations, shared by
# the segments of a longer walk. The reference animation's blocks then run 3 iterations rather than
# 20 and 32, and a dragged block costs under 2x the FLOPs of a plain one rather than 7x (docs/bench.md,
# "Speed"); the same two changes keep the embedded model's animations as good (lab/NOTES.md, "Cheaper
# drags"). Their quality on real weights is still to be measured on a GPU.
WAN_DRAG_CONFIG = DragConfig(walk_from="previous_block", animation_max_iterations=3)

PRESETS: dict[str, DragConfig] = {
    TOYWORLD: TOY_DRAG_CONFIG,
    **{f"wan-{preset}": WAN_DRAG_CONFIG for preset in WAN_PRESETS},
}


def drag_config_of(backend: VideoBackend) -> DragConfig:
    """The drag settings tuned for ``backend`` (by its ``name``), or the paper's where none are."""
    return PRESETS.get(getattr(backend, "name", None), DragConfig())
