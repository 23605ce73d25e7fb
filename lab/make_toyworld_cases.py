"""Writes ``revel_toyworld.json``, the bench's cases on the embedded toy world.

    python -m lab make-cases [--out FILE]

Each case streams its prompt (from opening frames rendered by the world, or freely) up to the drag
block, exactly as the bench will; the handle regions are the dragged objects' colour segments on the
frame the drag is drawn on (the world's ground truth names which objects exist and their colours), so
masks really cover objects. A seed whose object is missing or cut on that frame is skipped for the next.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from dragstream_widget.bench.quality.cases import BenchCase, save_cases
from dragstream_widget.bench.quality.cli import DEFAULT_CASES
from dragstream_widget.bench.quality.runner import opening_frames
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.geometry import mask_centroid
from dragstream_widget.models.toyworld.model import load_model
from dragstream_widget.models.toyworld.world import parse_prompt, segment_object
from dragstream_widget.ops import DragInstruction, HandleRegion, Mode, Operation

FRAMES_PER_SECOND = 8  # the rate the toy world's videos are played and exported at (demo.py)
LONG_VIDEO_SECONDS = 20
TRAJECTORY_FRAMES = 9
ROTATION_DEGREES = 30.0  # below half the star's 72-degree symmetry, so the turn can be measured
# Seeds tried per case before it is left out (a model that loses an object by the drag block fails
# every seed; a long-video try streams 55 blocks).
SEED_TRIES = 50


@dataclass(frozen=True)
class Spec:
    name: str
    prompt: str
    mode: Mode
    operations: tuple[Operation, ...]  # one per dragged object, in the prompt's order from the first
    tags: tuple[str, ...]
    drag_block: int = 2
    start_frames: int = 3
    amount: float = 10.0  # px for translations, degrees for 2D rotations
    path: str = "line"  # animations: line, curve, leave (to the border and back), onto (the other object)


def _inward(center: np.ndarray, size: int, turn: float) -> np.ndarray:
    """A unit direction from ``center`` towards the frame centre, turned by ``turn`` radians."""
    d = np.array([(size - 1) / 2, (size - 1) / 2]) - center
    angle = math.atan2(d[1], d[0]) + turn if np.hypot(*d) > 1 else turn
    return np.array([math.cos(angle), math.sin(angle)])


def _clip(p: np.ndarray, size: int) -> tuple[float, float]:
    return (float(np.clip(p[0], 0, size - 1)), float(np.clip(p[1], 0, size - 1)))


def _path(start: np.ndarray, end: np.ndarray, kind: str, count: int, size: int) -> tuple:
    if kind == "leave":
        half = count // 2
        out = [start + (end - start) * k / half for k in range(1, half + 1)]
        out += [end + (start - end) * k / (count - half) for k in range(1, count - half + 1)]
    elif kind == "curve":
        normal = np.array([-(end - start)[1], (end - start)[0]]) * 0.35
        out = [
            start + (end - start) * u + normal * math.sin(math.pi * u)
            for u in np.arange(1, count + 1) / count
        ]
    else:
        out = [start + (end - start) * k / count for k in range(1, count + 1)]
    return tuple(_clip(p, size) for p in out)


def _region(
    mask: np.ndarray, op: Operation, spec: Spec, mode: Mode, rng, other: np.ndarray | None
) -> HandleRegion:
    size = mask.shape[0]
    center = np.array(mask_centroid(mask))
    ys, xs = np.nonzero(mask)
    direction = _inward(center, size, float(rng.uniform(-0.6, 0.6)))
    count = 1 if mode == Mode.EDIT else TRAJECTORY_FRAMES
    if op == Operation.ROTATE_2D:
        far = np.argmax(np.hypot(xs - center[0], ys - center[1]))
        handle = np.array([xs[far], ys[far]], np.float64)
        sign = 1 if rng.random() < 0.5 else -1
        angles = [sign * math.radians(spec.amount) * k / count for k in range(1, count + 1)]
        offset = handle - center
        targets = tuple(
            _clip(
                center
                + [
                    math.cos(a) * offset[0] - math.sin(a) * offset[1],
                    math.sin(a) * offset[0] + math.cos(a) * offset[1],
                ],
                size,
            )
            for a in angles
        )
        return HandleRegion(mask, op, tuple(handle), targets, tuple(center))
    if op in (Operation.DEFORM, Operation.ROTATE_3D):
        if op == Operation.DEFORM:  # the edge region facing the drag
            along = (xs - center[0]) * direction[0] + (ys - center[1]) * direction[1]
            part = along > 0.35 * along.max()
        else:  # the upper half, moved sideways; the prior turns the rest
            part = ys < center[1]
            direction = np.array([1.0 if center[0] < size / 2 else -1.0, 0.0])
        sub = np.zeros_like(mask)
        sub[ys[part], xs[part]] = True
        mask, handle = sub, np.array(mask_centroid(sub))
    else:
        handle = center
    if spec.path == "leave":
        end = np.array([0.0 if handle[0] < size / 2 else size - 1.0, handle[1]])
    elif spec.path == "onto" and other is not None:
        end = np.array(mask_centroid(other))
    else:
        end = handle + direction * spec.amount
    if mode == Mode.EDIT:
        targets = (_clip(end, size),)
    else:
        targets = _path(handle, end, spec.path, 12 if spec.path == "leave" else count, size)
    return HandleRegion(mask, op, _clip(handle, size), targets)


def _drawn_frame(backend, case_prompt: str, seed: int, start_frames: int, drag_block: int) -> np.ndarray:
    start = opening_frames(case_prompt, seed, start_frames)
    session = StreamSession(backend, case_prompt, seed, TOY_DRAG_CONFIG, start_frames=start)
    while session.num_blocks < drag_block:
        session.step()
    return session.frames()[-1]


def _usable(mask: np.ndarray, min_pixels: int = 60) -> bool:
    """A visible, whole object: enough pixels, none on the frame border."""
    return mask.sum() >= min_pixels and not (
        mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
    )


class NoUsableSeed(RuntimeError):
    """No seed tried gave a frame on which the case's drag can be drawn."""


def build_case(backend, spec: Spec, first_seed: int, tries: int = SEED_TRIES) -> tuple[BenchCase, int]:
    colors = [c for c, _ in parse_prompt(spec.prompt).objects]
    for seed in range(first_seed, first_seed + tries):
        frame = _drawn_frame(backend, spec.prompt, seed, spec.start_frames, spec.drag_block)
        masks = [segment_object(frame, c) for c in colors]
        dragged = list(range(len(spec.operations)))
        if not all(_usable(masks[i]) for i in range(len(colors))):
            continue
        if any((masks[i] & masks[j]).any() for i in range(len(masks)) for j in range(i)):
            continue
        rng = np.random.default_rng(seed)
        other = masks[-1] if spec.path == "onto" else None
        regions = tuple(_region(masks[i], spec.operations[i], spec, spec.mode, rng, other) for i in dragged)
        instruction = DragInstruction(
            spec.mode, frame.shape[:2], regions, frame_index=spec.drag_block * 3 - 1
        )
        try:
            instruction.validate()
        except ValueError:
            continue
        case = BenchCase(
            spec.name,
            spec.tags,
            spec.prompt,
            seed,
            spec.drag_block,
            instruction,
            spec.start_frames,
            2,
            tuple(colors[i] for i in dragged),
        )
        return case, seed
    raise NoUsableSeed(
        f"{spec.name}: none of seeds {first_seed}-{first_seed + tries - 1} shows every object of "
        f"'{spec.prompt}' whole and apart at block {spec.drag_block}"
    )


SCENES = (
    "a red square and a blue circle on a striped background",
    "a yellow star on a checkered background",
    "a green triangle and an orange circle on a gradient background",
)
ROTATION_SCENES = (
    "a purple square on a plain background",
    "a cyan triangle and a red circle on a dotted background",
    "an orange star on a striped background",
)


def specs() -> list[Spec]:
    out = []
    for mode in (Mode.EDIT, Mode.ANIMATE):
        for op in (Operation.TRANSLATE, Operation.DEFORM, Operation.ROTATE_2D, Operation.ROTATE_3D):
            scenes = ROTATION_SCENES if op == Operation.ROTATE_2D else SCENES
            for k, prompt in enumerate(scenes):
                amount = {
                    Operation.ROTATE_2D: ROTATION_DEGREES,
                    Operation.DEFORM: 6.0,
                    Operation.ROTATE_3D: 6.0,
                }.get(op, 10.0)
                out.append(
                    Spec(
                        f"{mode.value}-{op.value}-{k}",
                        prompt,
                        mode,
                        (op,),
                        (mode.value, op.value),
                        drag_block=2 + k % 2,
                        amount=amount,
                        path="curve" if k == 2 else "line",
                    )
                )
    two = "a red circle and a blue square on a plain background"
    three = "a green star, a yellow square and a purple circle on a checkered background"
    for mode in (Mode.EDIT, Mode.ANIMATE):
        out.append(
            Spec(
                f"{mode.value}-multi-0",
                two,
                mode,
                (Operation.TRANSLATE,) * 2,
                (mode.value, "translate", "multi_region"),
            )
        )
        out.append(
            Spec(
                f"{mode.value}-multi-1",
                three,
                mode,
                (Operation.TRANSLATE, Operation.ROTATE_2D, Operation.TRANSLATE),
                (mode.value, "multi_region"),
                amount=10.0,
            )
        )
        for k, prompt in enumerate((two, "a white triangle and a red square on a gradient background")):
            out.append(
                Spec(
                    f"{mode.value}-occlusion-{k}",
                    prompt,
                    mode,
                    (Operation.TRANSLATE,),
                    (mode.value, "translate", "occlusion"),
                    path="onto",
                )
            )
    for k, prompt in enumerate(SCENES + ("a blue star on a dotted background",)):
        out.append(
            Spec(
                f"animate-leave-{k}",
                prompt,
                Mode.ANIMATE,
                (Operation.TRANSLATE,),
                ("animate", "translate", "leave_reenter"),
                path="leave",
            )
        )
    long_block = math.ceil(LONG_VIDEO_SECONDS * FRAMES_PER_SECOND / 3) + 1
    for k, (mode, op) in enumerate(
        (
            (Mode.EDIT, Operation.TRANSLATE),
            (Mode.EDIT, Operation.ROTATE_2D),
            (Mode.ANIMATE, Operation.TRANSLATE),
            (Mode.ANIMATE, Operation.ROTATE_2D),
        )
    ):
        prompt = ROTATION_SCENES[k % 3] if op == Operation.ROTATE_2D else SCENES[k % 3]
        out.append(
            Spec(
                f"{mode.value}-long-{k}",
                prompt,
                mode,
                (op,),
                (mode.value, op.value, "long_video"),
                drag_block=long_block,
                amount=ROTATION_DEGREES if op == Operation.ROTATE_2D else 10.0,
            )
        )
    for mode in (Mode.EDIT, Mode.ANIMATE):
        out.append(
            Spec(
                f"{mode.value}-free-0",
                SCENES[0],
                mode,
                (Operation.TRANSLATE,),
                (mode.value, "translate", "free_generation"),
                drag_block=3,
                start_frames=0,
            )
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lab make-cases", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_CASES), help="case file (default: the bench's own)")
    args = parser.parse_args(argv)
    backend = load_model()
    cases, left_out = [], []
    for index, spec in enumerate(tqdm(specs(), desc="placing drags")):
        try:
            case, _ = build_case(backend, spec, first_seed=index * 7)
        except NoUsableSeed as reason:
            left_out.append(str(reason))
            continue
        cases.append(case)
    print(f"wrote {save_cases(cases, args.out)}: {len(cases)} cases")
    for reason in left_out:
        print(f"left out {reason}")
