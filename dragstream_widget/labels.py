"""Import and export of the reference implementation's saved drag labels.

A label folder holds ``block_{k}_{Drag|Animation}_trajectory.json`` with its mask PNGs (white = 1):
one per trajectory (the handle region) and one "movable area" (where the video may change; the rest is
our non-editable region M). Points are ``(x, y)`` pixels of the frame the masks have. A translation
trajectory lists its start and then one point per latent frame; a rotation lists the centre, the arm's
start and then one arm point per latent frame. ``block_trajectories`` repeat that as deltas from the
start (pixels, or signed degrees, positive clockwise on screen), three latent frames per block.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import stat
import sys
from dataclasses import dataclass
from numbers import Real
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image

from .ops import (
    MAX_REGIONS,
    MAX_TARGETS,
    DragInstruction,
    HandleRegion,
    InvalidInstruction,
    Mode,
    Operation,
    check_frame_size,
    cut,
    read_json_object,
    short,
)

MODES = {"Drag": Mode.EDIT, "Animation": Mode.ANIMATE}
FRAMES_PER_BLOCK = 3  # the reference code's block length, used for its per-block deltas
NAME = re.compile(r"block_(\d+)_(Drag|Animation)_trajectory\.json")
MAX_LABEL_BYTES = 16 * 2**20  # a label JSON larger than this is refused unread


@dataclass(frozen=True)
class LabelledDrag:
    """A drag with what the label file says around it: the prompt and the block it was drawn on."""

    instruction: DragInstruction
    prompt: str
    block: int

    def to_json(self) -> dict:
        return {"prompt": self.prompt, "block": self.block, "instruction": self.instruction.to_json()}


def regular_file(path: Path, what: str) -> Path:
    """``path`` when it is a regular file (a FIFO or a device would block or never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InvalidInstruction(f"{what} {path.name} is missing from {path.parent}") from None
    except OSError as error:
        raise InvalidInstruction(f"{what} {path.name}: {error.strerror}") from None
    if not stat.S_ISREG(mode):
        raise InvalidInstruction(f"{what} {path.name} is not a regular file")
    return path


def member(folder: Path, name: object, field: str) -> Path:
    """The file ``name`` that a label names, confined to ``folder``: a relative path without ``..``
    that does not lead out of the folder through a symlink, to a regular file."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise InvalidInstruction(f"{field}: expected a file name, got {short(name)}")
    if (
        PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or PureWindowsPath(name).drive
    ):
        raise InvalidInstruction(
            f"{field}: {short(name)} is an absolute path; name a file in the label folder"
        )
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise InvalidInstruction(f"{field}: {short(name)} leads out of the label folder")
    path = folder / name
    root = folder.resolve()
    if not path.resolve().is_relative_to(root):
        raise InvalidInstruction(f"{field}: {short(name)} leads out of the label folder through a link")
    return regular_file(path, f"{field}:")


def read_mask(path: Path, field: str, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask PNG (white = 1); its size is read from its header and checked (against ``frame_size``
    when given) before the image is decoded."""
    try:
        with Image.open(path, formats=["PNG"]) as image:
            height, width = check_frame_size([image.height, image.width], f"{field} {path.name}: size")
            if frame_size is not None and (height, width) != tuple(frame_size):
                raise InvalidInstruction(
                    f"{field} {path.name} is {width}x{height}, but the frame is {frame_size[1]}x{frame_size[0]}"
                )
            return np.array(image.convert("L")) > 0
    except InvalidInstruction:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidInstruction(f"{field} {path.name}: not a readable PNG ({cut(str(error))})") from None


def label_file(folder: Path) -> Path:
    """The one trajectory JSON in ``folder`` (or ``folder`` itself when it is that file)."""
    if not folder.is_dir():
        return regular_file(folder, "label file")
    found = sorted(p for p in folder.glob("*_trajectory.json") if NAME.fullmatch(p.name))
    if len(found) != 1:
        names = ", ".join(p.name for p in found[:6]) or "none"
        raise InvalidInstruction(f"expected one block_*_trajectory.json in {folder}, found {names}")
    return regular_file(found[0], "label file")


def read_label(path: Path) -> dict:
    return read_json_object(path, MAX_LABEL_BYTES, "a label file", InvalidInstruction)


def import_labels(path: str | Path, frame_size: tuple[int, int] | None = None) -> LabelledDrag:
    """Read a reference label folder (or its JSON file) as a validated :class:`DragInstruction`. Every
    file it names must lie in its folder; masks must have one size (``frame_size`` when given)."""
    path = label_file(Path(path))
    data = read_label(path)
    missing = {"prompt", "drag_or_animation_select", "movable_area_mask_file", "trajectories"} - set(data)
    if missing:
        raise InvalidInstruction(f"{path.name}: missing field(s) {', '.join(sorted(missing))}")
    kind = data["drag_or_animation_select"]
    if not isinstance(kind, str) or kind not in MODES:
        raise InvalidInstruction(
            f"{path.name}: unknown drag_or_animation_select {short(kind)}; expected Drag or Animation"
        )
    if not isinstance(data["prompt"], str):
        raise InvalidInstruction(f"{path.name}: prompt must be a string, got {short(data['prompt'])}")
    trajectories = data["trajectories"]
    if not isinstance(trajectories, list) or not 0 < len(trajectories) <= MAX_REGIONS:
        raise InvalidInstruction(
            f"{path.name}: trajectories must be a list of 1 to {MAX_REGIONS}, got {short(trajectories)}"
        )
    folder = path.parent
    field = f"{path.name}: movable_area_mask_file"
    movable = read_mask(member(folder, data["movable_area_mask_file"], field), field, frame_size)
    regions = tuple(
        trajectory_region(t, folder, i, movable.shape, path.name) for i, t in enumerate(trajectories)
    )
    frozen = None if movable.all() else ~movable
    instruction = DragInstruction(MODES[kind], movable.shape, regions, frozen)
    match = NAME.fullmatch(path.name)
    block = int(match.group(1)) if match else 0
    try:
        instruction.validate()
    except InvalidInstruction as error:
        raise InvalidInstruction(f"{path.name}: {error}") from None
    return LabelledDrag(instruction, data["prompt"], block)


def label_points(value: object, where: str) -> list[tuple[float, float]]:
    if not isinstance(value, list) or len(value) > MAX_TARGETS:
        raise InvalidInstruction(f"{where}: expected a list of [x, y] points, got {short(value)}")
    points = []
    for k, point in enumerate(value):
        ok = isinstance(point, list) and len(point) == 2
        if not ok or not all(isinstance(v, Real) and not isinstance(v, bool) for v in point):
            raise InvalidInstruction(f"{where}[{k}]: expected [x, y], got {short(point)}")
        try:
            points.append((float(point[0]), float(point[1])))
        except OverflowError:
            raise InvalidInstruction(f"{where}[{k}]: {short(point)} is not a finite point") from None
    return points


def trajectory_region(
    trajectory: object, folder: Path, index: int, frame_size: tuple[int, int], name: str = "label"
) -> HandleRegion:
    where = f"{name}: trajectories[{index}]"
    if not isinstance(trajectory, dict) or not isinstance(trajectory.get("original_trajectory"), dict):
        raise InvalidInstruction(f"{where}: expected an object with an original_trajectory object")
    original = trajectory["original_trajectory"]
    rotation = original.get("is_rotation")
    if not isinstance(rotation, bool):
        raise InvalidInstruction(f"{where}.original_trajectory.is_rotation: expected true or false")
    points = label_points(original.get("points"), f"{where}.original_trajectory.points")
    field = f"{where}.mask_file"
    mask = read_mask(member(folder, trajectory.get("mask_file"), field), field, frame_size)
    default = "rotate_2d" if rotation else "translate"
    try:
        operation = Operation(trajectory.get("operation", default))
    except (ValueError, TypeError):
        raise InvalidInstruction(f"{where}.operation: unknown {short(trajectory.get('operation'))}") from None
    if rotation:
        if len(points) < 3:
            raise InvalidInstruction(f"{where}: a rotation needs a centre, a start and an end point")
        return HandleRegion(mask, operation, points[1], tuple(points[2:]), points[0])
    if len(points) < 2:
        raise InvalidInstruction(f"{where}: a translation needs a start and at least one more point")
    return HandleRegion(mask, operation, points[0], tuple(points[1:]))


def block_deltas(region: HandleRegion) -> list[dict]:
    """The reference's ``block_trajectories``: deltas from the start, three latent frames per block."""
    rotation = region.operation == Operation.ROTATE_2D
    if rotation:
        deltas = [math.degrees(region.angle(i)) for i in range(len(region.targets))]
    else:
        deltas = [list(region.displacement(i)) for i in range(len(region.targets))]
    blocks = []
    for start in range(0, len(deltas), FRAMES_PER_BLOCK):
        block = {
            "is_rotation": rotation,
            "deltas": deltas[start : start + FRAMES_PER_BLOCK],
            "start_point": list(region.handle),
        }
        if rotation:
            block["rotation_center"] = list(region.rotation_center())
        blocks.append(block)
    return blocks


def export_labels(drag: LabelledDrag, folder: str | Path) -> Path:
    """Write ``drag`` in the reference format (JSON + mask PNGs) into ``folder``; returns the JSON path."""
    instruction = drag.instruction.validate()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kind = "Drag" if instruction.mode == Mode.EDIT else "Animation"
    stem = f"block_{drag.block}_{kind}"
    Image.fromarray(instruction.editable_mask().astype(np.uint8) * 255).save(
        folder / f"{stem}_movable_mask.png"
    )
    trajectories = []
    for i, region in enumerate(instruction.regions):
        mask_name = f"{stem}_traj_{i}_mask.png"
        Image.fromarray(np.asarray(region.mask, bool).astype(np.uint8) * 255).save(folder / mask_name)
        rotation = region.operation == Operation.ROTATE_2D
        head = [list(region.rotation_center()), list(region.handle)] if rotation else [list(region.handle)]
        points = head + [list(t) for t in region.targets]
        original = {"is_rotation": rotation, "points": points}
        if not rotation:
            original["control_points"] = points
        trajectories.append(
            {
                "original_trajectory": original,
                "block_trajectories": block_deltas(region),
                "mask_file": mask_name,
                "operation": Operation(region.operation).value,
            }
        )
    blocks = 1 if kind == "Drag" else math.ceil(instruction.num_targets / FRAMES_PER_BLOCK)
    data = {
        "block_number": blocks,
        "prompt": drag.prompt,
        "drag_or_animation_select": kind,
        "movable_area_mask_file": f"{stem}_movable_mask.png",
        "trajectories": trajectories,
    }
    path = folder / f"{stem}_trajectory.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``labels import|export``: one label folder to or from one instruction JSON file."""
    direction = parser.add_subparsers(dest="direction", required=True, metavar="DIRECTION")
    importing = direction.add_parser("import", help="label folder (JSON + mask PNGs) -> instruction JSON")
    importing.add_argument("source", help="a folder holding one block_*_trajectory.json, or that file")
    importing.add_argument("--out", required=True)
    exporting = direction.add_parser("export", help="instruction JSON -> label folder")
    exporting.add_argument("source", help="a JSON file written by 'labels import'")
    exporting.add_argument("--out", required=True, help="folder to write the label JSON and mask PNGs into")


def main(args: argparse.Namespace) -> LabelledDrag:
    """Run the conversion; a bad label folder or file stops with one line naming the file and the
    field, and exit status 2."""
    try:
        return convert(args)
    except (InvalidInstruction, OSError, KeyError, TypeError) as error:
        text = (
            str(error) if isinstance(error, InvalidInstruction | OSError) else f"missing or bad field {error}"
        )
        print(f"labels {args.direction}: {args.source}: {cut(text, 300)}", file=sys.stderr)
        sys.exit(2)


def convert(args: argparse.Namespace) -> LabelledDrag:
    if args.direction == "import":
        drag = import_labels(args.source)
        Path(args.out).write_text(json.dumps(drag.to_json()))
        regions = len(drag.instruction.regions)
        print(f"wrote {args.out}: {drag.instruction.mode.value}, {regions} region(s), block {drag.block}")
    else:
        data = read_label(regular_file(Path(args.source), "instruction file"))
        drag = LabelledDrag(DragInstruction.from_json(data["instruction"]), data["prompt"], data["block"])
        print(f"wrote {export_labels(drag, args.out)}")
    return drag
