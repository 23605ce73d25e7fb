"""The scripted demo on the embedded toy world: stream a prompt, edit, then animate.

Two sessions share prompt, seed and opening frames: one streams untouched (the reference), the
other receives a scripted edit (the red object moved sideways) and a scripted animation (the other
object along a curved path). Objects are found by colour, so what moved is measured, not assumed.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .arguments import at_least
from .engine.config import DragConfig
from .engine.presets import TOY_DRAG_CONFIG
from .engine.session import StreamSession
from .export import save_gif, save_image, save_mp4, side_by_side
from .geometry import curved_path, grow
from .metrics import psnr
from .models.base import VideoBackend
from .models.toyworld.scenes import DEFAULT_PROMPT, centroid, object_region, opening_frames
from .models.toyworld.world import parse_prompt, segment_object
from .ops import DragInstruction, HandleRegion, Mode, Operation


@dataclass(frozen=True)
class DemoScript:
    prompt: str = DEFAULT_PROMPT
    seed: int = 0
    blocks: int = 10  # generated blocks after the opening frames
    edit_after: int = 2  # blocks streamed before the edit
    edit_shift: float = -10.0  # pixels to the right (negative: left, away from the blue square)
    animate_after: int = 4  # blocks streamed before the animation starts
    animation_frames: int = 12
    # The half circle ends beside the edited circle rather than on it (objects that meet fuse on the
    # toy model).
    animation_radius: float = 8.0


def run_demo(
    backend: VideoBackend,
    out: str | Path,
    script: DemoScript = DemoScript(),
    config: DragConfig | None = None,
) -> dict:
    """Run the script, write ``demo.mp4``, ``demo.gif``, ``drag_vs_nodrag.png``, ``plots.png`` and
    ``metrics.json`` into ``out``; return the metrics. ``config`` defaults to the backend's own drag
    settings (the paper's where it has none)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    layout = backend.layout
    start = opening_frames(script.prompt, script.seed, layout.frames_per_block)
    colors = [c for c, _ in parse_prompt(script.prompt).objects]
    reference = StreamSession(backend, script.prompt, script.seed, config, start_frames=start)
    dragged = StreamSession(backend, script.prompt, script.seed, config, start_frames=start)
    timings = {"block": [], "edit": None, "animation_blocks": []}
    metrics: dict = {"prompt": script.prompt, "seed": script.seed}
    animation_targets: list[tuple[float, float]] = []
    animation_first_frame = None
    edit_region = None
    for block in tqdm(range(script.blocks), desc="demo: streaming"):
        if block == script.edit_after:
            mask, center = object_region(dragged.frames()[-1], colors[0])
            target = (float(np.clip(center[0] + script.edit_shift, 0.0, layout.pixel_width - 1.0)), center[1])
            edit = DragInstruction(
                Mode.EDIT, layout.pixel_size, (HandleRegion(mask, Operation.TRANSLATE, center, (target,)),)
            )
            t = time.perf_counter()
            dragged.apply(edit)
            timings["edit"] = time.perf_counter() - t
            landed = centroid(segment_object(dragged.frames()[-1], colors[0]))
            metrics["edit"] = {
                "color": colors[0],
                "from": center,
                "target": target,
                "landed": landed,
                "error_px": None if landed is None else math.dist(landed, target),
            }
            edited_from = len(dragged.frames()) - layout.frames_per_block
            edit_region = (edited_from, mask | np.roll(mask, round(target[0] - center[0]), axis=1))
        if block == script.animate_after:
            color = colors[-1]
            mask, center = object_region(dragged.frames()[-1], color)
            animation_targets = curved_path(
                center, script.animation_radius, script.animation_frames, layout.pixel_width
            )
            dragged.apply(
                DragInstruction(
                    Mode.ANIMATE,
                    layout.pixel_size,
                    (HandleRegion(mask, Operation.TRANSLATE, center, tuple(animation_targets)),),
                )
            )
            animation_first_frame = len(dragged.frames())
        t = time.perf_counter()
        reference.step()
        timings["block"].append(time.perf_counter() - t)
        t = time.perf_counter()
        dragged.step()
        if dragged.blocks[-1].losses:
            timings["animation_blocks"].append(time.perf_counter() - t)
    frames, plain = dragged.frames(), reference.frames()
    if animation_targets:
        color = colors[-1]
        tracked = [
            centroid(segment_object(f, color))
            for f in frames[animation_first_frame : animation_first_frame + len(animation_targets)]
        ]
        errors = [math.dist(p, q) for p, q in zip(tracked, animation_targets) if p is not None]
        metrics["animation"] = {
            "color": color,
            "targets": animation_targets,
            "tracked": tracked,
            "mean_error_px": float(np.mean(errors)) if errors else None,
            "frames_tracked": len(errors),
        }
    if edit_region is not None:
        first, moved = edit_region
        # Frames before the edited block must be identical; in the edited block, the region outside the
        # handle and its target (grown by 3 px) should stay as it was.
        metrics["frames_before_edit_identical"] = bool(np.array_equal(frames[:first], plain[:first]))
        keep = ~grow(moved, 3)
        block = slice(first, first + layout.frames_per_block)
        metrics["psnr_non_editable_edited_block_db"] = psnr(
            frames[block], plain[block], np.broadcast_to(keep, frames[block].shape[:3])
        )
    metrics["seconds_per_block_no_drag"] = float(np.mean(timings["block"]))
    metrics["frames_per_second_no_drag"] = layout.frames_per_block / metrics["seconds_per_block_no_drag"]
    metrics["edit_seconds"] = timings["edit"]
    metrics["seconds_per_animated_block"] = (
        float(np.mean(timings["animation_blocks"])) if timings["animation_blocks"] else None
    )
    scale = max(1, 256 // layout.pixel_width)
    save_mp4(frames, out / "demo.mp4", fps=8, scale=scale)
    save_gif(frames, out / "demo.gif", fps=8, scale=scale)
    save_image(
        side_by_side([plain, frames], columns=min(len(frames), 15), scale=2), out / "drag_vs_nodrag.png"
    )
    save_plots(out / "plots.png", metrics, reference, dragged)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def save_plots(path: Path, metrics: dict, reference: StreamSession, dragged: StreamSession) -> None:
    """Trajectory (target vs tracked) and per-frame latent statistics, drag against no drag."""
    from matplotlib.figure import Figure  # not pyplot: leaves a notebook's backend alone

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    animation = metrics.get("animation")
    ax = axes[0]
    if animation:
        targets = np.array(animation["targets"])
        tracked = np.array([p for p in animation["tracked"] if p is not None])
        ax.plot(targets[:, 0], targets[:, 1], "o-", color="tab:blue", label="target trajectory")
        if len(tracked):
            ax.plot(tracked[:, 0], tracked[:, 1], "s--", color="tab:red", label="tracked object")
        ax.invert_yaxis()
        ax.set_aspect("equal")
        ax.legend()
    ax.set_title("animation: target vs tracked (pixels)")
    ax = axes[1]
    for session, name in ((reference, "no drag"), (dragged, "drag")):
        z = session.latents()[0].transpose(0, 1).flatten(1)
        ax.plot(z.mean(1).numpy(), label=f"mean, {name}")
        ax.plot(z.std(1).numpy(), label=f"std, {name}")
    ax.set_xlabel("latent frame")
    ax.set_title("latent statistics per frame")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder for demo.mp4, demo.gif, images and metrics.json")
    parser.add_argument("--prompt", default=None, help=f"the toy world prompt (default: {DEFAULT_PROMPT!r})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--blocks", type=at_least(1), default=10, help="generated blocks after the opening frames"
    )
    parser.add_argument(
        "--weights", default=None, help="toy world weights folder (default: the shipped ones)"
    )


def main(args: argparse.Namespace) -> dict:
    """The demo script on the embedded model with ``TOY_DRAG_CONFIG``; prints and returns its metrics."""
    from .models.toyworld.model import load_model

    script = replace(DemoScript(), seed=args.seed, blocks=args.blocks)
    if args.prompt:
        script = replace(script, prompt=args.prompt)
    metrics = run_demo(load_model(args.weights), args.out, script, TOY_DRAG_CONFIG)
    print(json.dumps({k: v for k, v in metrics.items() if k != "animation"}, indent=2))
    print(f"wrote {args.out}/demo.mp4, demo.gif, drag_vs_nodrag.png, plots.png, metrics.json")
    return metrics
