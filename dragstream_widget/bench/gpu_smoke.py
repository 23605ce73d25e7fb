"""Real-size smoke run: a Wan-1.3B-shaped causal model with random weights at 832x480 on a GPU.

Streams blocks without a drag, then applies one animation drag, and prints the time per block with
and without the drag, the peak GPU memory and the device name (also saved as JSON with ``--out``).

    python -m dragstream_widget bench gpu-smoke --out smoke.json [--blocks 3] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ..arguments import at_least
from ..engine.config import DragConfig
from ..engine.session import StreamSession
from ..models.random_model import WAN_1_3B_480P, random_backend
from ..ops import DragInstruction, HandleRegion, Mode, Operation
from . import report, timed


def curved_animation(height: int, width: int, frames: int) -> DragInstruction:
    """A disc-shaped handle in the middle of the frame moving along a quarter circle."""
    yy, xx = np.mgrid[:height, :width]
    cx, cy = width / 2, height / 2
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= 40**2
    angles = np.linspace(0, np.pi / 2, frames + 1)[1:]
    targets = tuple((float(cx + 60 * np.sin(a)), float(cy - 60 * (1 - np.cos(a)))) for a in angles)
    region = HandleRegion(mask, Operation.TRANSLATE, (cx, cy), targets)
    return DragInstruction(Mode.ANIMATE, (height, width), (region,)).validate()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blocks", type=at_least(1), default=3, help="blocks streamed before the drag")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--out", default=None, help="write the numbers to this JSON file")


def main(args: argparse.Namespace) -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype)
    backend, load_s = timed(
        lambda: random_backend(
            WAN_1_3B_480P, device=device, dtype=dtype, cache_max_frames=21, cache_sink_frames=3
        )
    )
    layout = backend.layout
    session = StreamSession(backend, "a red fox running through fresh snow", seed=0, config=DragConfig())
    plain_times = []
    for _ in range(args.blocks):
        _, seconds = timed(session.step)
        plain_times.append(seconds)
        print(f"block {session.num_blocks - 1} without drag: {seconds:.3f} s", flush=True)
    instruction = curved_animation(*layout.pixel_size, frames=2 * layout.frames_per_block)
    session.apply(instruction)
    drag_times = []
    for _ in range(2):
        record, seconds = timed(session.step)
        drag_times.append(seconds)
        iterations = len(record.losses)
        print(
            f"block {record.index} with animation drag ({iterations} iterations): {seconds:.3f} s", flush=True
        )
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "dtype": args.dtype,
        "resolution": f"{layout.pixel_width}x{layout.pixel_height}",
        "latent": [layout.channels, layout.frames_per_block, layout.height, layout.width],
        "parameters": sum(p.numel() for p in backend.transformer.parameters()),
        "build_seconds": load_s,
        "seconds_per_block_without_drag": plain_times,
        "seconds_per_block_with_drag": drag_times,
        "drag_iterations_per_block": [len(b.losses) for b in session.blocks[-2:]],
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "final_losses": session.blocks[-1].losses[-1] if session.blocks[-1].losses else None,
    }
    return report(result, args.out)
