"""Measure the toy world model: do rollouts hold their objects, keep their shapes, stay clean?

    python -m lab evaluate --out runs/eval --scenes 16 [--jobs 15]

Metrics (each compared with the same metric on real world clips where that makes sense):
* survival: per object and frame, the object's colour is present with an area within 0.5-2x of its
  opening area and its centroid within 16 px of where it was last seen;
* shape IoU: the object's colour mask against the best-fitting template of its own shape class
  (searched over angle and scale, centred on the blob), for surviving objects, also per class: a
  round blob scores well against a circle and a square, so the mean alone flatters melted shapes;
* shape recognised: how often the best-fitting class is the object's own class (every 4th frame);
* size: |area / opening area - 1| for surviving objects, and the median area ratio per block (does
  the object shrink or grow as the stream goes on?);
* motion: how far surviving objects move per frame (median), and how far each one's centre lies from
  the same object's in the real clip, per block (the world is deterministic from its opening frames,
  so a rollout that follows it stays close; objects that stop or snap back score high survival but
  move less and drift from the real path);
* long run: a 300-frame rollout's latent mean/std per block and, on its last frame, whether each
  object is still there (its colour over 0.5-2x its opening area, as for survival) and how far the
  background's mean colour moved from the opening frame's (a collapsed scene moves it); the same
  check on every block's last frame gives a trace (``long_run_trace.json`` and ``.png``) and, per
  300 frames, the share of blocks in which the scene held (every object there, background within
  10 levels);
* objects spawned or lost: on the last frame of every block, the connected patches of each object
  colour (``scenes.object_counts``) against the truth: the real clip's count on that frame or the
  scene's own (one patch per object named); a block whose counts match neither spawned (a split, a
  duplicate, a foreign colour) or lost an object;
* free generation: the same measures on streams started without opening frames, from the prompt
  alone (the truth is then the scene's own counts);
* speed: generated frames per second on this machine (decode included).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dragstream_widget.arguments import add_float_streaming_flag, at_least
from dragstream_widget.bench.workers import map_on_toy_model
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.export import save_image, side_by_side
from dragstream_widget.geometry import grow, mask_centroid
from dragstream_widget.models import base
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR, load_model
from dragstream_widget.models.toyworld.scenes import count_changes, object_counts
from dragstream_widget.models.toyworld.world import (
    OBJECT_COLORS,
    SHAPES,
    render_clip,
    sample_scene,
    segment_object,
    template_ious,
)

SURVIVAL_DISTANCE = 16.0
CLEAN_BACKGROUND_LEVELS = 10.0  # a background whose mean colour moved further is another scene
HELD_SEGMENT_FRAMES = 300
SCALES = np.linspace(0.7, 1.4, 8)
ANGLES = np.linspace(0, 2 * math.pi, 24, endpoint=False)


def best_template_iou(mask: np.ndarray, shape: str, radius: float) -> float:
    """IoU of a blob with the best template of ``shape`` centred on it (over angle and scale)."""
    center = mask_centroid(mask)
    angles = ANGLES[:1] if shape == "circle" else ANGLES
    best = 0.0
    for scale in SCALES:
        best = max(best, float(template_ious(mask, shape, radius * scale, angles, center).max()))
    return best


def recognized_shape(mask: np.ndarray, radius: float, known: dict[str, float] | None = None) -> str:
    """The shape class whose best-fitting template overlaps the blob most (``known``: fits already
    computed, by class)."""
    fits = dict(known or {})
    for shape in SHAPES:
        if shape not in fits:
            fits[shape] = best_template_iou(mask, shape, radius)
    return max(SHAPES, key=fits.__getitem__)


def track_objects(frames: np.ndarray, scene, opening_areas: list[float], recognize_every: int = 3) -> dict:
    """Per object and frame: survival flag, area ratio, the shape IoU of surviving objects (per class), and
    every ``recognize_every`` frames (the first of each block by default) whether the blob is recognised as
    its own shape class."""
    survived, ratios, ious, recognized, centers = [], [], [], [], []
    per_shape: dict[str, list[float]] = {}
    for i, obj in enumerate(scene.objects):
        last = None
        centers.append({})
        for t, frame in enumerate(frames):
            mask = segment_object(frame, obj.color)
            area = float(mask.sum())
            ratio = area / opening_areas[i] if opening_areas[i] else 0.0
            alive = 0.5 <= ratio <= 2.0
            if alive:
                center = mask_centroid(mask)
                alive = last is None or math.dist(center, last) <= SURVIVAL_DISTANCE
                last = center
            survived.append(alive)
            if alive:
                centers[-1][t] = last
                ratios.append((t, ratio))
                ious.append(best_template_iou(mask, obj.shape, obj.radius))
                per_shape.setdefault(obj.shape, []).append(ious[-1])
                if t % recognize_every == 0:
                    own = {obj.shape: ious[-1]}
                    recognized.append((t, float(recognized_shape(mask, obj.radius, own) == obj.shape)))
    return {
        "survived": survived,
        "ratios": ratios,  # (frame, area / opening area) of surviving objects
        "ious": ious,
        "per_shape": per_shape,
        "recognized": recognized,  # (frame, 1.0 where recognised as its own class else 0.0)
        "centers": centers,  # per object: frame -> centroid (x, y) where it survives
    }


def summarize(tracks: list[dict], frames_per_block: int = 3) -> dict:
    survived = [s for t in tracks for s in t["survived"]]
    ratios = [r for t in tracks for r in t["ratios"]]
    sizes = [abs(ratio - 1.0) for _, ratio in ratios]
    ious = [s for t in tracks for s in t["ious"]]
    recognized = [r for t in tracks for r in t["recognized"]]
    recognized_values = [value for _, value in recognized]
    shapes = {k for t in tracks for k in t["per_shape"]}
    per_shape = {
        k: float(np.mean([v for t in tracks for v in t["per_shape"].get(k, [])])) for k in sorted(shapes)
    }
    return {
        "shape_iou_per_class": per_shape,
        "shape_recognized": float(np.mean(recognized_values)) if recognized else 0.0,
        "shape_recognized_per_block": per_block(recognized, frames_per_block, np.mean),
        "survival": float(np.mean(survived)) if survived else 0.0,
        "shape_iou": float(np.mean(ious)) if ious else 0.0,
        "size_error_median": float(np.median(sizes)) if sizes else None,
        "size_within_20_percent": float(np.mean(np.array(sizes) <= 0.2)) if sizes else 0.0,
        "size_ratio_median_per_block": per_block(ratios, frames_per_block),
        "speed_median_px_per_frame": median_speed(tracks),
    }


def median_speed(tracks: list[dict]) -> float | None:
    """Median distance a surviving object's centre moves from one frame to the next (None: no pairs)."""
    steps = [
        math.dist(centers[t], centers[t - 1])
        for track in tracks
        for centers in track["centers"]
        for t in centers
        if t - 1 in centers
    ]
    return float(np.median(steps)) if steps else None


def path_errors(generated: list[dict], real: list[dict], frames_per_block: int) -> dict:
    """Distance between each object's centre in the rollout and in the real clip, in the frames where it
    survives in both: the median overall and per block of frames (None: no such frame)."""
    pairs = [
        (t, math.dist(ours[t], theirs[t]))
        for gen_track, real_track in zip(generated, real)
        for ours, theirs in zip(gen_track["centers"], real_track["centers"])
        for t in ours
        if t in theirs
    ]
    return {
        "path_error_median_px": float(np.median([d for _, d in pairs])) if pairs else None,
        "path_error_median_px_per_block": per_block(pairs, frames_per_block),
    }


def per_block(
    values: list[tuple[int, float]], frames_per_block: int, statistic=np.median
) -> list[float | None]:
    """A statistic (the median by default) of (frame, value) pairs per block of frames, in frame order
    (None: no value there)."""
    if not values:
        return []
    blocks = max(t for t, _ in values) // frames_per_block + 1
    grouped: list[list[float]] = [[] for _ in range(blocks)]
    for t, value in values:
        grouped[t // frames_per_block].append(value)
    return [float(statistic(g)) if g else None for g in grouped]


def apart_at_opening(clip, frames: int, gap: int = 2) -> bool:
    """Every object whole in the first ``frames`` frames: nothing in front of it, clear of the border
    by ``gap`` pixels, and at least ``gap`` pixels from every other object."""
    full = clip.full_masks[:frames]
    if (clip.visible_masks[:frames] != full).any():
        return False
    if full[..., gap:-gap, gap:-gap].sum() != full.sum():
        return False
    grown = np.stack([[grow(mask, (gap + 1) // 2) for mask in frame] for frame in full])
    return bool((grown.sum(axis=1) <= 1).all())


def opening_scene(rng: np.random.Generator, frames: int, clip_frames: int, tries: int = 200):
    """A random scene whose objects are whole and apart in its first ``frames`` frames, and its clip."""
    for _ in range(tries):
        scene = sample_scene(rng)
        clip = render_clip(scene, clip_frames)
        if apart_at_opening(clip, frames):
            return scene, clip
    raise RuntimeError(f"no scene with objects apart in its opening frames after {tries} tries")


def rollout_tracks(backend: base.VideoBackend, index: int, scene, real, frames: int) -> dict:
    """One scene streamed on from its real opening block (session seed ``index``): the tracks of the
    rollout, of the real clip and of the real clip through the codec, and the rollout's frames and time."""
    fpb = backend.layout.frames_per_block
    opening = [float(segment_object(real.frames[fpb - 1], o.color).sum()) for o in scene.objects]
    session = StreamSession(backend, scene.prompt, seed=index, start_frames=real.frames[:fpb])
    started = time.perf_counter()
    while len(session.frames()) < frames:
        session.step()
    seconds = time.perf_counter() - started
    video = session.frames()[:frames]
    round_trip = backend.new_decoder().decode(backend.encode_frames(real.frames))
    return {
        "changes": block_changes(video, scene, fpb, real.frames),
        "generated": track_objects(video[fpb:], scene, opening),
        "real": track_objects(real.frames[fpb:], scene, opening),
        "codec": track_objects(round_trip[fpb:], scene, opening),
        "video": video,
        "seconds": seconds,
        "made": len(session.frames()) - fpb,
    }


def scene_counts(scene) -> dict[str, int]:
    """How many objects of each colour the scene names."""
    counts: dict[str, int] = {}
    for obj in scene.objects:
        counts[obj.color] = counts.get(obj.color, 0) + 1
    return counts


def block_changes(
    video: np.ndarray, scene, frames_per_block: int, real: np.ndarray | None = None
) -> list[dict]:
    """Per generated block (after the opening one), on its last frame: objects spawned and lost against
    the truth (``scenes.count_changes``), zero where the counts match the real clip's frame (``real``,
    when given) or the scene's own counts."""
    named = scene_counts(scene)
    changes = []
    for end in range(2 * frames_per_block - 1, len(video), frames_per_block):
        counts = object_counts(video[end])
        truths = [named] + ([object_counts(real[end])] if real is not None and end < len(real) else [])
        changes.append(
            min((count_changes(counts, t) for t in truths), key=lambda c: c["spawned"] + c["lost"])
        )
    return changes


def changes_summary(changes: list[list[dict]]) -> dict:
    """Share of blocks (over all streams) that spawned an object, lost one, or either."""
    blocks = [c for stream in changes for c in stream]
    if not blocks:
        return {}
    return {
        "blocks": len(blocks),
        "blocks_spawned": float(np.mean([c["spawned"] > 0 for c in blocks])),
        "blocks_lost": float(np.mean([c["lost"] > 0 for c in blocks])),
        "blocks_spawned_or_lost": float(np.mean([c["spawned"] + c["lost"] > 0 for c in blocks])),
    }


def free_tracks(backend: base.VideoBackend, index: int, scene, real, frames: int) -> dict:
    """One scene streamed from its prompt alone (no opening frames; session seed ``index``): its tracks
    (sizes against the real clip's opening areas) and its blocks' spawned and lost objects."""
    fpb = backend.layout.frames_per_block
    opening = [float(segment_object(real.frames[fpb - 1], o.color).sum()) for o in scene.objects]
    session = StreamSession(backend, scene.prompt, seed=index)
    while len(session.frames()) < frames:
        session.step()
    video = session.frames()[:frames]
    return {
        "generated": track_objects(video[fpb:], scene, opening),
        "changes": block_changes(video, scene, fpb),
    }


def evaluate(
    backend: base.VideoBackend,
    scenes: int,
    frames: int,
    seed: int,
    out: Path,
    jobs: int = 1,
    weights: str | None = None,
    streaming: dict | None = None,
) -> dict:
    """Rollouts of ``scenes`` scenes drawn from ``seed``; with ``jobs`` > 1 in that many worker processes
    of one thread each, each loading the toy world model from ``weights`` (None: the shipped ones) with
    the ``streaming`` overrides of ``backend``: the same numbers, the time per frame that of one busy worker."""
    fpb = backend.layout.frames_per_block
    rng = np.random.default_rng(seed)
    # Objects whole and apart in the opening frames, so the opening areas mean something.
    tasks = [(index, *opening_scene(rng, fpb, frames), frames) for index in range(scenes)]
    if jobs == 1:
        runs = [rollout_tracks(backend, *task) for task in tqdm(tasks, desc="rollouts")]
    else:
        runs = map_on_toy_model(rollout_tracks, tasks, jobs, weights, streaming or {}, "rollouts", "scene")
    if jobs == 1:
        free = [free_tracks(backend, *task) for task in tqdm(tasks, desc="free generation")]
    else:
        free = map_on_toy_model(
            free_tracks, tasks, jobs, weights, streaming or {}, "free generation", "scene"
        )
    generated_tracks = [run["generated"] for run in runs]
    report = {
        "scenes": scenes,
        "frames": frames,
        "generated": summarize(generated_tracks, fpb),
        "real": summarize([run["real"] for run in runs], fpb),
        "codec_round_trip": summarize(
            [run["codec"] for run in runs], fpb
        ),  # the real clips encoded and decoded
        "frames_per_second": sum(run["made"] for run in runs) / sum(run["seconds"] for run in runs),
        "threads": 1 if jobs > 1 else torch.get_num_threads(),
        "jobs": jobs,
    }
    report["survival_vs_real"] = report["generated"]["survival"] / max(report["real"]["survival"], 1e-9)
    report["generated"].update(changes_summary([run["changes"] for run in runs]))
    report["free_generation"] = summarize([run["generated"] for run in free], fpb)
    report["free_generation"].update(changes_summary([run["changes"] for run in free]))
    report["generated"].update(path_errors(generated_tracks, [run["real"] for run in runs], fpb))
    sheets = [
        strip
        for (_, _, real, _), run in zip(tasks[:6], runs)
        for strip in (real.frames[::4], run["video"][::4])
    ]
    save_image(side_by_side(sheets, columns=12, scale=2), out / "rollouts_vs_real.png")
    return report


def scene_at_end(last: np.ndarray, opening: np.ndarray, scene) -> dict:
    """Whether ``last`` still holds the scene of ``opening`` (``uint8 [H, W, 3]`` frames): each object's
    colour over 0.5-2x its opening area, and the distance (RGB levels) between the mean colours of the
    two frames outside their objects."""
    areas, backgrounds = [], []
    for frame in (opening, last):
        masks = [segment_object(frame, o.color) for o in scene.objects]
        covered = np.logical_or.reduce(masks) if masks else np.zeros(frame.shape[:2], bool)
        backgrounds.append(frame[~covered].reshape(-1, 3).mean(0) if (~covered).any() else np.zeros(3))
        areas.append([float(m.sum()) for m in masks])
    ratios = [end / start if start else 0.0 for start, end in zip(*areas)]
    return {
        "objects_present_at_end": [bool(0.5 <= r <= 2.0) for r in ratios],
        "object_area_ratios_at_end": ratios,
        "background_shift_levels": float(np.linalg.norm(backgrounds[1] - backgrounds[0])),
    }


def scene_held(check: dict) -> bool:
    """Whether a :func:`scene_at_end` check found every object and the background within
    ``CLEAN_BACKGROUND_LEVELS`` of its opening colour."""
    return (
        all(check["objects_present_at_end"]) and check["background_shift_levels"] <= CLEAN_BACKGROUND_LEVELS
    )


def held_summary(trace: list[dict], segment_frames: int = HELD_SEGMENT_FRAMES) -> dict:
    """Per ``segment_frames`` of a long run's trace, the share of blocks in which the scene held, and the
    frame from which it never held again (None if it held at the end)."""
    held = [scene_held(check) for check in trace]
    segments: dict[int, list[bool]] = {}
    for check, ok in zip(trace, held):
        segments.setdefault(check["frame"] // segment_frames, []).append(ok)
    lost_from = None
    for check, ok in zip(reversed(trace), reversed(held)):
        if ok:
            break
        lost_from = check["frame"]
    return {
        "held_share_per_segment": [float(np.mean(segments[k])) for k in sorted(segments)],
        "segment_frames": segment_frames,
        "lost_for_good_from_frame": lost_from,
    }


def save_long_run_trace(trace: list[dict], colors: list[str], path: Path) -> None:
    """The long run's background shift and object area ratios against the frame, one figure."""
    from matplotlib.figure import Figure

    frames = [check["frame"] for check in trace]
    figure = Figure(figsize=(9, 3.2), layout="constrained")
    background, areas = figure.subplots(1, 2)
    shifts = [max(check["background_shift_levels"], 0.1) for check in trace]  # log axis: 0.1 stands for less
    background.plot(frames, shifts, color="black")
    background.axhline(CLEAN_BACKGROUND_LEVELS, color="grey", linestyle="--", label="clean limit")
    background.set(title="background's mean colour moved", xlabel="frame", ylabel="RGB levels", yscale="log")
    background.legend(fontsize=8)
    for index, color in enumerate(colors):
        ratios = [max(check["object_area_ratios_at_end"][index], 1e-3) for check in trace]
        areas.plot(frames, ratios, color=np.array(OBJECT_COLORS[color]) / 255, label=color)
    for limit in (0.5, 2.0):
        areas.axhline(limit, color="grey", linestyle="--")
    areas.set(title="object area / opening area", xlabel="frame", yscale="log", ylim=(1e-3, 10))
    areas.legend(fontsize=8)
    figure.savefig(path, dpi=110)


def long_run(backend: base.VideoBackend, frames: int, seed: int, out: Path) -> dict:
    """A long free-running stream from real opening frames: latent statistics, the scene check on every
    block's last frame, and presence at the end."""
    fpb = backend.layout.frames_per_block
    scene, real = opening_scene(np.random.default_rng(seed + 1000), fpb, fpb)
    # Every block's latents are kept: the run's latent statistics read them all.
    session = StreamSession(
        backend, scene.prompt, seed=seed, start_frames=real.frames, latent_blocks=max(frames // fpb + 1, 64)
    )
    opening, trace = real.frames[-1], []
    for _ in tqdm(range(frames // fpb - 1), desc="long run"):  # the opening block counts
        record = session.step()
        changes = count_changes(object_counts(record.frames[-1]), scene_counts(scene))
        trace.append(
            {
                "frame": (record.index + 1) * fpb - 1,
                **scene_at_end(record.frames[-1], opening, scene),
                "changes": changes,
            }
        )
    z = session.latents()[0]
    means = z.mean(dim=(0, 2, 3)).reshape(-1, fpb).mean(1)
    stds = z.std(dim=(0, 2, 3)).reshape(-1, fpb).mean(1)
    video = session.frames()
    save_image(side_by_side([video[:: max(1, len(video) // 24)]], columns=12, scale=2), out / "long_run.png")
    (out / "long_run_trace.json").write_text(json.dumps(trace))
    save_long_run_trace(trace, [o.color for o in scene.objects], out / "long_run_trace.png")
    return {
        "prompt": scene.prompt,
        "frames": len(video),
        "block_mean_first_last": [float(means[1]), float(means[-1])],
        "block_std_first_last": [float(stds[1]), float(stds[-1])],
        "block_std_range": [float(stds[1:].min()), float(stds[1:].max())],
        **{key: value for key, value in trace[-1].items() if key != "frame"},  # the last frame's check
        **held_summary(trace),
        **changes_summary([[check["changes"] for check in trace]]),
        "finite": bool(torch.isfinite(z).all()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m lab evaluate", description="Measure the toy world model's rollouts on the CPU."
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--weights", default=str(WEIGHTS_DIR))
    parser.add_argument("--scenes", type=at_least(1), default=16)
    parser.add_argument("--frames", type=at_least(1), default=48)
    parser.add_argument(
        "--long-frames", type=at_least(0), default=300, help="frames of the long free stream (0: none)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps", default=None, help="sampler steps to try instead of the saved ones, e.g. 1000,750,500,250"
    )
    parser.add_argument(
        "--sampler-update", choices=("euler", "renoise"), default=None, help="instead of the saved one"
    )
    parser.add_argument(
        "--cache-frames", type=at_least(1), default=None, help="KV window, instead of the saved one"
    )
    parser.add_argument(
        "--sink-frames",
        type=at_least(0),
        default=None,
        help="first frames kept in the KV window (attention sinks)",
    )
    parser.add_argument(
        "--jobs", type=at_least(1), default=1, help="worker processes (one thread each) for the scenes"
    )
    add_float_streaming_flag(parser)
    args = parser.parse_args(argv)
    overrides = {
        "steps": None if args.steps is None else tuple(int(s) for s in args.steps.split(",")),
        "sampler_update": args.sampler_update,
        "int8_streaming": False if args.float_streaming else None,
        "cache_frames": args.cache_frames,
        "sink_frames": args.sink_frames,
    }
    streaming = {k: v for k, v in overrides.items() if v is not None}
    try:
        backend = load_model(args.weights, **streaming)
    except ValueError as error:
        parser.error(str(error))
    fpb = backend.layout.frames_per_block
    if args.frames < 2 * fpb:
        parser.error(
            f"--frames must cover the opening block and one generated block ({2 * fpb} frames or more)"
        )
    if args.long_frames and args.long_frames < 2 * fpb:
        parser.error(f"--long-frames must be 0 (no long run) or at least two blocks ({2 * fpb} frames)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = evaluate(backend, args.scenes, args.frames, args.seed, out, args.jobs, args.weights, streaming)
    if args.long_frames:
        report["long_run"] = long_run(backend, args.long_frames, args.seed, out)
    report["shapes"] = list(SHAPES)
    report["sampler"] = {"steps": list(backend.sampler.steps), "update": backend.sampler.update}
    report["int8_streaming"] = backend.streaming_transformer is not None
    report["kv_window"] = {"cache_frames": backend.cache_max_frames, "sink_frames": backend.cache_sink_frames}
    (out / "evaluation.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report
