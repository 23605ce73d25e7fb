"""Running the bench: every case streams its prefix once, then each variant (and the branch without a
drag) continues from an exact fork of the session, so all of them see the very same frames before the
drag."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from ...engine.config import DragConfig
from ...engine.session import StreamSession
from ...metrics import frechet_distance, gaussian_statistics
from ...models.base import VideoBackend
from ...models.toyworld import scenes
from ...ops import Mode, Operation
from .cases import BenchCase
from .features import FeatureExtractor, proxy_extractor
from .measures import (
    drag_scores,
    evaluated_frames,
    latent_drift,
    non_editable_psnr,
    object_kept,
    side_effects,
)
from .tracking import LucasKanadeTracker, PointTracker, ToyWorldTracker
from .variants import Variant

NO_DRAG = "no_drag"


@dataclass
class Branch:
    """What one branch of a case produced from the drag on."""

    frames: np.ndarray  # uint8 [T, H, W, 3]: every frame from the first one the drag touches
    latents: torch.Tensor  # [1, C, F, h, w] of the same blocks
    drag_frames: np.ndarray  # the frames the drag acted on (edited block or trajectory blocks)
    frames_per_latent: int  # pixel frames decoded per latent frame in those blocks
    seconds: float


@dataclass
class CaseRun:
    case: BenchCase
    drawn: np.ndarray  # the frame the drag was drawn on
    branches: dict[str, Branch] = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)


def opening_frames(prompt: str, seed: int, count: int) -> np.ndarray | None:
    """``count`` opening frames the toy world renders for the prompt and seed (None for 0: free generation)."""
    return None if count == 0 else scenes.opening_frames(prompt, seed, count)


def tracker_for(case: BenchCase, default: PointTracker) -> PointTracker:
    """Ground truth on the toy world where the case names its objects, else the given tracker."""
    if case.objects is None:
        return default
    rotation = [r.operation == Operation.ROTATE_2D for r in case.instruction.regions]
    return ToyWorldTracker(list(case.objects), rotation)


def _run_branch(session: StreamSession, case: BenchCase, variant: Variant | None, base: DragConfig) -> Branch:
    layout = session.backend.layout
    first_block = session.num_blocks - 1 if case.mode == Mode.EDIT else session.num_blocks
    drag_blocks = case.drag_blocks(layout.frames_per_block)
    start = time.perf_counter()
    if variant is not None:
        session.config = variant.config(base)
        session.apply(variant.rewrite(case.instruction))
    for _ in range(drag_blocks):
        session.step()
    seconds = time.perf_counter() - start
    if case.mode == Mode.EDIT:
        drag_end = first_block + 1
    else:
        drag_end = first_block + drag_blocks
    for _ in range(case.follow_blocks):
        session.step()
    blocks = session.blocks[first_block:]
    dragged = session.blocks[first_block:drag_end]
    drag_frames = np.concatenate([b.frames for b in dragged])
    return Branch(
        frames=np.concatenate([b.frames for b in blocks]),
        latents=torch.cat([b.z0 for b in blocks], dim=2),
        drag_frames=drag_frames,
        frames_per_latent=max(1, len(drag_frames) // sum(b.z0.shape[2] for b in dragged)),
        seconds=seconds,
    )


def run_case(
    backend: VideoBackend,
    case: BenchCase,
    variants: list[Variant],
    base: DragConfig,
    tracker: PointTracker | None = None,
    dai_radius: int = 3,
    progress: tqdm | None = None,
) -> CaseRun:
    """Stream the case's prefix once, then the branch without a drag and one branch per variant."""
    layout = backend.layout
    case.check_layout(layout.frames_per_block, layout.pixel_size)
    start = opening_frames(case.prompt, case.seed, case.start_frames)
    session = StreamSession(backend, case.prompt, case.seed, base, start_frames=start)
    while session.num_blocks < case.drag_block:
        session.step()
    drawn = session.frames()[-1]
    restore = session.fork()
    run = CaseRun(case, drawn)
    for variant in [None, *variants]:
        name = NO_DRAG if variant is None else variant.name
        if progress is not None:
            progress.set_postfix_str(f"{case.name}: {name}")
        run.branches[name] = _run_branch(session, case, variant, base)
        restore()
        if progress is not None:
            progress.update(1)
    score_case(run, tracker_for(case, tracker or LucasKanadeTracker()), dai_radius)
    return run


def score_case(run: CaseRun, tracker: PointTracker, dai_radius: int) -> None:
    case, reference = run.case, run.branches[NO_DRAG]
    for name, branch in run.branches.items():
        scored = evaluated_frames(case.instruction, branch.drag_frames, branch.frames_per_latent)
        scores = drag_scores(case.instruction, run.drawn, scored, tracker, dai_radius)
        count = len(branch.drag_frames)
        scores["psnr_non_editable"] = non_editable_psnr(
            branch.drag_frames, reference.drag_frames[:count], case.instruction
        )
        scores["latent_drift"] = latent_drift(branch.latents, reference.latents)
        scores["object_kept"] = object_kept(run.drawn, scored[-1], case.objects) if case.objects else None
        if case.objects:
            unchanged = evaluated_frames(case.instruction, reference.drag_frames, reference.frames_per_latent)
            scores.update(side_effects(scored[-1], unchanged[-1], case.instruction, case.objects))
        scores["seconds"] = branch.seconds
        run.scores[name] = {k: _plain(v) for k, v in scores.items()}


def _plain(value):
    """JSON-safe numbers: NaN and infinities become None or a large sentinel-free string."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def bench_case(
    backend: VideoBackend,
    case: BenchCase,
    variants: list[Variant],
    base: DragConfig,
    tracker: PointTracker | None,
    extractor: FeatureExtractor,
    dai_radius: int,
    keep_frames: bool,
    progress: tqdm | None = None,
) -> tuple[CaseRun, dict[str, np.ndarray]]:
    """One case of the bench: its run (frames dropped unless ``keep_frames``) and each branch's
    Frechet features."""
    run = run_case(backend, case, variants, base, tracker, dai_radius, progress)
    features = {name: extractor.extract(branch.frames) for name, branch in run.branches.items()}
    if not keep_frames:
        run.branches = {}
    return run, features


def frechet_table(features: list[dict[str, np.ndarray]], extractor: FeatureExtractor) -> dict:
    """Frechet distance of each variant's frames, over all cases, against the undragged branches'."""
    reference = np.concatenate([f[NO_DRAG] for f in features])
    reference_stats = gaussian_statistics(reference)
    return {
        name: {
            "frechet_distance": frechet_distance(
                *gaussian_statistics(np.concatenate([f[name] for f in features])), *reference_stats
            ),
            "extractor": extractor.label,
            "proxy": extractor.is_proxy,
            "samples": int(len(reference)),
        }
        for name in features[0]
        if name != NO_DRAG
    }


def run_bench(
    backend: VideoBackend,
    cases: list[BenchCase],
    variants: list[Variant],
    base: DragConfig,
    tracker: PointTracker | None = None,
    extractor: FeatureExtractor | None = None,
    dai_radius: int = 3,
    keep_frames: int = 4,
) -> tuple[list[CaseRun], dict]:
    """Run every case; returns the runs (frames kept only for the first ``keep_frames`` cases) and the
    Frechet distance of each variant's frames from the drag on against the undragged branches'."""
    extractor = extractor or proxy_extractor()
    results = []
    with tqdm(total=len(cases) * (len(variants) + 1), desc="quality bench", unit="branch") as progress:
        for index, case in enumerate(cases):
            keep = index < keep_frames
            results.append(
                bench_case(backend, case, variants, base, tracker, extractor, dai_radius, keep, progress)
            )
    return [run for run, _ in results], frechet_table([f for _, f in results], extractor)
