"""The two baselines, adapted to streaming as the paper does, as configurations of the same engine.

* DragVideo-style: DragDiffusion-like motion supervision, extended to video. Features around each
  handle point (a small disc, not the painted region) are pulled to the target with an L1 loss; the
  rest of the block keeps its features; no ADSR, no SFS, no CSS.
* SG-I2V-style: the region is the bounding box of the painted mask; features of each new frame are
  aligned with those of the reference frame under a Gaussian weight over the box (MSE); after
  optimising, only the low frequencies of the change to the latent are kept; no ADSR, SFS or CSS.

Neither baseline takes the base configuration's latent-space rotation term
(``DragConfig.rotation_x0_weight``), which is this project's addition to DragStream, not theirs.

The parts of the original methods that do not transfer to a frozen few-step streaming model (LoRA
fine-tuning, point tracking between iterations, full-video re-denoising) are left out.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...engine.config import DragConfig
from ...geometry import mask_bbox
from ...ops import DragInstruction, HandleRegion

DRAGVIDEO_PATCH_FRACTION = 0.1  # handle disc radius as a fraction of the frame width (6.4 px at 64 px)
SG_I2V_LOWPASS = 0.5  # cutoff of the latent post-processing (fraction of the Nyquist frequency)


def dragvideo_config(base: DragConfig) -> DragConfig:
    return replace(
        base.without("adsr", "sfso"), reconstruction_loss="l1", constraint="features", rotation_x0_weight=0.0
    )


def handle_disc(region: HandleRegion, radius: float) -> np.ndarray:
    """A disc of ``radius`` pixels around the region's handle point (the motion-supervision patch)."""
    h, w = region.mask.shape
    y, x = np.mgrid[:h, :w]
    return (x - region.handle[0]) ** 2 + (y - region.handle[1]) ** 2 <= radius**2


def dragvideo_instruction(instruction: DragInstruction) -> DragInstruction:
    radius = max(1.5, DRAGVIDEO_PATCH_FRACTION * instruction.frame_size[1])
    regions = tuple(replace(r, mask=handle_disc(r, radius)) for r in instruction.regions)
    return replace(instruction, regions=regions)


def sg_i2v_config(base: DragConfig) -> DragConfig:
    return replace(
        base.without("adsr", "sfso"),
        reconstruction_loss="mse",
        reconstruction_weight="gaussian",
        latent_lowpass=SG_I2V_LOWPASS,
        rotation_x0_weight=0.0,
    )


def box_mask(mask: np.ndarray) -> np.ndarray:
    """The mask's bounding box, filled."""
    x0, y0, x1, y1 = mask_bbox(mask)
    box = np.zeros_like(mask, dtype=bool)
    box[y0 : y1 + 1, x0 : x1 + 1] = True
    return box


def sg_i2v_instruction(instruction: DragInstruction) -> DragInstruction:
    regions = tuple(replace(r, mask=box_mask(r.mask)) for r in instruction.regions)
    return replace(instruction, regions=regions)
