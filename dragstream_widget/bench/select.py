"""Click to select, measured: one click per object on frames of the toy world, whose renderer knows
every object's true mask.

Each prompt's clip is rendered by the world and given to a session as its opening frames (so the
frames on screen are the world's, decoded by the model's codec); on every frame, each object with
enough visible pixels is clicked once, at its innermost pixel (farthest from its outline), and the
proposal (:func:`~dragstream_widget.selection.propose_region`) is compared with its visible mask.

    python -m dragstream_widget bench select [--frames 50] [--out DIR]

prints the median and quartiles of the IoU and writes DIR/select.json (every click) and
DIR/select.png (the frames with the proposals outlined, worst first) where ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..arguments import at_least
from ..engine.presets import TOY_DRAG_CONFIG
from ..engine.session import StreamSession
from ..export import contact_sheet, save_image
from ..geometry import grow, mask_iou
from ..models.toyworld.model import load_model
from ..models.toyworld.world import render_clip, scene_from_prompt
from ..selection import block_features, propose_from_features

PROMPTS = (
    "a red circle and a blue square on a striped background",
    "a yellow star on a plain background",
    "a green square and a white circle on a gradient background",
    "a cyan triangle and a purple circle on a checkered background",
)
MIN_PIXELS = 20  # objects smaller than this on a frame (hidden, leaving) are not clicked
CLIP_BLOCKS = 4


def innermost_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(row, column) of the pixel of ``mask`` farthest from its outline (the one nearest the centroid
    among the last left by repeated erosion)."""
    current = mask.copy()
    while True:
        eroded = ~grow(~current, 1)
        if not eroded.any():
            break
        current = eroded
    rows, cols = np.nonzero(current)
    centre = np.array(np.nonzero(mask)).mean(axis=1)
    best = int(np.argmin((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2))
    return int(rows[best]), int(cols[best])


def outlined(frame: np.ndarray, proposal: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``frame`` with the true outline in white and the proposal's in yellow."""
    out = frame.copy()
    for mask, colour in ((truth, (255, 255, 255)), (proposal, (255, 220, 0))):
        out[mask & grow(~mask, 1)] = colour
    return out


def measure(frames: int, seed: int = 0) -> tuple[list[dict], list[tuple[float, np.ndarray]]]:
    """One record per click (prompt, seed, frame, object, click, IoU, seconds), and per click its IoU
    with the frame outlined (:func:`outlined`)."""
    backend = load_model()
    per_block = backend.layout.frames_per_block
    records, pictures = [], []
    progress = tqdm(total=frames, desc="frames clicked", unit="frame")
    clip_seed = seed
    while progress.n < frames:
        prompt = PROMPTS[clip_seed % len(PROMPTS)]
        clip = render_clip(
            scene_from_prompt(prompt, np.random.default_rng(clip_seed)), CLIP_BLOCKS * per_block
        )
        session = StreamSession(backend, prompt, clip_seed, TOY_DRAG_CONFIG, start_frames=clip.frames)
        for position, block in enumerate(session.blocks):
            started = time.perf_counter()
            features = block_features(session, block)
            feature_seconds = time.perf_counter() - started
            for k in range(per_block):
                if progress.n >= frames:
                    break
                index = position * per_block + k
                for obj in range(clip.visible_masks.shape[1]):
                    truth = clip.visible_masks[index, obj]
                    if truth.sum() < MIN_PIXELS:
                        continue
                    row, col = innermost_pixel(truth)
                    started = time.perf_counter()
                    proposal = propose_from_features(features, block.frames, (col, row), k, backend.layout)
                    seconds = time.perf_counter() - started + feature_seconds
                    iou = mask_iou(proposal, truth)
                    records.append(
                        {
                            "prompt": prompt,
                            "seed": clip_seed,
                            "frame": index,
                            "object": obj,
                            "click": [col, row],
                            "iou": round(iou, 4),
                            "seconds": round(seconds, 4),
                        }
                    )
                    pictures.append((iou, outlined(block.frames[k], proposal, truth)))
                progress.update(1)
        clip_seed += 1
    progress.close()
    return records, pictures


def summary(records: list[dict]) -> dict:
    ious = np.array([r["iou"] for r in records])
    return {
        "clicks": len(records),
        "frames": len({(r["seed"], r["frame"]) for r in records}),
        "median_iou": round(float(np.median(ious)), 4),
        "quartiles_iou": [round(float(q), 4) for q in np.percentile(ious, [25, 75])],
        "share_at_least_0.8": round(float(np.mean(ious >= 0.8)), 4),
        "median_seconds": round(float(np.median([r["seconds"] for r in records])), 4),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=at_least(1), default=50, help="frames to click on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first clip")
    parser.add_argument("--out", default=None, help="write select.json and select.png to this folder")


def main(args: argparse.Namespace) -> dict:
    records, pictures = measure(args.frames, args.seed)
    result = summary(records)
    print(json.dumps(result, indent=2))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "select.json").write_text(json.dumps({"summary": result, "clicks": records}, indent=1))
        worst = [p for _, p in sorted(pictures, key=lambda t: t[0])[:24]]
        save_image(contact_sheet(np.stack(worst), columns=8, scale=3), out / "select.png")
    return result
