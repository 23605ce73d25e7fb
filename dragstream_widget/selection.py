"""Click to select: the region of the object under a click, proposed from the backend's own features.

No segmentation model is needed. The proposal reads what a drag reads, the features of the block on
screen at the drag layers (step T', the context the block saw: ``StreamSession.reference_of``), so it
works on every backend the engine drives, the real backbones as the embedded model:

1. the cosine similarity of every cell's features to the clicked cell's (features centred on their mean
   over the frame, so what all cells share does not count);
2. the cells that lie most of the way from the frame's typical similarity to the clicked cell's,
   grown from the clicked cell over 4-connected cells (:func:`token_region`);
3. refined at pixel level (:func:`refine_pixels`): the pixels within a cell of the upsampled region
   join where their colour is nearer to the colours around the click than to every colour of the sure
   background (beyond two cells); the connected part holding the click, holes filled, is the proposal.

``bench select`` (:mod:`.bench.select`) measures it against the toy world's ground-truth masks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .engine.session import BlockRecord, StreamSession
from .geometry import grow
from .models.base import LatentLayout

Point = tuple[float, float]
SIMILAR = 0.6  # how far from the typical cell towards the clicked one a cell must be to join
COLOUR_SAMPLES = 512  # sure pixels per side the band's colours are compared with


def propose_region(
    session: StreamSession, point: Point, frame: int = -1, block: BlockRecord | None = None
) -> np.ndarray:
    """A boolean ``[H, W]`` mask of the object under ``point`` (x, y model pixels) on frame ``frame`` of
    ``block`` (default: the last frame of the block on screen)."""
    if block is None:
        if not session.blocks:
            raise ValueError("there is no frame on screen to select on yet: generate a block first")
        block = session.blocks[-1]
    return propose_from_features(
        block_features(session, block), block.frames, point, frame, session.backend.layout
    )


@torch.no_grad()
def block_features(session: StreamSession, block: BlockRecord) -> torch.Tensor:
    """The features ``[D, F, h, w]`` a drag of ``block`` reads (unfiltered, at the drag layers, step T')."""
    return session.reference_of(block, session.config, cutoffs=(1.0,))[1.0].float()


def propose_from_features(
    features: torch.Tensor, frames: np.ndarray, point: Point, frame: int, layout: LatentLayout
) -> np.ndarray:
    """:func:`propose_region` from a block's :func:`block_features` and its decoded ``frames``."""
    height, width = layout.pixel_size
    x, y = point
    if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
        raise ValueError(f"the click ({x:.1f}, {y:.1f}) lies outside the {width}x{height} frame")
    latent_frame = (frame % len(frames)) // layout.pixel_frames_per_latent
    cell = (
        min(int(y * layout.height / height), layout.height - 1),
        min(int(x * layout.width / width), layout.width - 1),
    )
    similarity = feature_similarity(features[:, latent_frame], cell)
    cells = token_region(similarity, cell)
    return refine_pixels(cells, frames[frame], (round(y), round(x)))


def feature_similarity(features: torch.Tensor, cell: tuple[int, int]) -> torch.Tensor:
    """Cosine similarity ``[h, w]`` of every cell's features ``[D, h, w]`` to those of ``cell``, the
    features centred on their mean over the frame first."""
    centred = features - features.mean(dim=(1, 2), keepdim=True)
    unit = F.normalize(centred, dim=0)
    return torch.einsum("dhw,d->hw", unit, unit[:, cell[0], cell[1]])


def connected_part(mask: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The 4-connected part of ``mask`` holding ``seed`` (row, column); empty if the seed is outside it."""
    allowed = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    region = torch.zeros_like(allowed)
    if not mask[seed]:
        return np.zeros_like(mask, dtype=bool)
    region[0, 0, seed[0], seed[1]] = 1
    cross = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)[None, None]
    while True:
        grown = (F.conv2d(region, cross, padding=1) > 0).float() * allowed
        if torch.equal(grown, region):
            return region[0, 0].numpy().astype(bool)
        region = grown


def token_region(similarity: torch.Tensor, cell: tuple[int, int]) -> np.ndarray:
    """Cells whose similarity to ``cell`` lies ``SIMILAR`` of the way from the frame's typical cell (the
    median) to the clicked one, grown from ``cell`` over 4-connected cells."""
    values = similarity.numpy()
    typical = float(np.median(values))
    return connected_part(values >= typical + SIMILAR * (float(values[cell]) - typical), cell)


def refine_pixels(cells: np.ndarray, pixels: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """The cell region at pixel level. Pixels within a cell of the upsampled region may belong; those
    farther than two cells are sure background. Each that may belong joins where its colour is nearer
    to the colours around the click (within half a cell) than to every sure background colour; thin
    threads are opened off, and the part holding ``seed`` (row, column), holes filled, is the mask."""
    height, width = pixels.shape[:2]
    scale = max(round(height / cells.shape[0]), 1)
    coarse = F.interpolate(
        torch.from_numpy(cells.astype(np.float32))[None, None], (height, width), mode="bilinear"
    )[0, 0].numpy()
    region = coarse >= 0.5
    region[seed] = True
    candidates = grow(region, scale)
    outside = ~grow(region, 2 * scale)
    rows, cols = np.mgrid[:height, :width]
    radius = max(scale // 2, 1)
    around_click = ((rows - seed[0]) ** 2 + (cols - seed[1]) ** 2 <= radius**2) & region
    colours = pixels.reshape(-1, 3).astype(np.float32)
    if outside.any():
        rng = np.random.default_rng(0)
        wanted = colours[candidates.ravel()]
        nearest = []
        for sure in (around_click, outside):
            index = np.flatnonzero(sure.ravel())
            samples = colours[rng.choice(index, min(len(index), COLOUR_SAMPLES), replace=False)]
            nearest.append(np.sqrt(((wanted[:, None] - samples[None]) ** 2).sum(-1)).min(1))
        labelled = np.zeros_like(region)
        labelled[candidates] = nearest[0] <= nearest[1]
        opened = grow(~grow(~labelled, 1), 1)
        labelled = opened if opened[seed] else labelled
    else:  # the region fills the frame: nothing to tell it from
        labelled = region
    labelled[seed] = True
    return fill_holes(connected_part(labelled, seed))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every part of its complement not connected to the border filled."""
    padded = np.pad(~mask, 1, constant_values=True)
    return ~connected_part(padded, (0, 0))[1:-1, 1:-1]
