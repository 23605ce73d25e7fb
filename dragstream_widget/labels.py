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
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .ops import DragInstruction, HandleRegion, InvalidInstruction, Mode, Operation

MODES = {"Drag": Mode.EDIT, "Animation": Mode.ANIMATE}
FRAMES_PER_BLOCK = 3  # the reference code's block length, used for its per-block deltas
NAME = re.compile(r"block_(\d+)_(Drag|Animation)_trajectory\.json")


@dataclass(frozen=True)
class LabelledDrag:
    """A drag with what the label file says around it: the prompt and the block it was drawn on."""

    instruction: DragInstruction
    prompt: str
    block: int

    def to_json(self) -> dict:
        return {"prompt": self.prompt, "block": self.block, "instruction": self.instruction.to_json()}


def read_mask(path: Path) -> np.ndarray:
    if not path.exists():
        raise InvalidInstruction(f"mask file {path.name} named by the label is missing from {path.parent}")
    return np.array(Image.open(path).convert("L")) > 0


def label_file(folder: Path) -> Path:
    """The one trajectory JSON in ``folder`` (or ``folder`` itself when it is that file)."""
    if folder.is_file():
        return folder
    found = sorted(p for p in folder.glob("*_trajectory.json") if NAME.fullmatch(p.name))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise InvalidInstruction(f"expected one block_*_trajectory.json in {folder}, found {names}")
    return found[0]


def import_labels(path: str | Path) -> LabelledDrag:
    """Read a reference label folder (or its JSON file) as a validated :class:`DragInstruction`."""
    path = label_file(Path(path))
    data = json.loads(path.read_text())
    missing = {"prompt", "drag_or_animation_select", "movable_area_mask_file", "trajectories"} - set(data)
    if missing:
        raise InvalidInstruction(f"{path.name}: missing field(s) {', '.join(sorted(missing))}")
    kind = data["drag_or_animation_select"]
    if kind not in MODES:
        raise InvalidInstruction(
            f"{path.name}: unknown drag_or_animation_select {kind!r}; expected Drag or Animation"
        )
    movable = read_mask(path.parent / data["movable_area_mask_file"])
    regions = tuple(trajectory_region(t, path.parent, i) for i, t in enumerate(data["trajectories"]))
    frozen = None if movable.all() else ~movable
    instruction = DragInstruction(MODES[kind], movable.shape, regions, frozen)
    match = NAME.fullmatch(path.name)
    block = int(match.group(1)) if match else 0
    return LabelledDrag(instruction.validate(), data["prompt"], block)


def trajectory_region(trajectory: dict, folder: Path, index: int) -> HandleRegion:
    original = trajectory["original_trajectory"]
    points = [(float(x), float(y)) for x, y in original["points"]]
    mask = read_mask(folder / trajectory["mask_file"])
    operation = Operation(
        trajectory.get("operation", "rotate_2d" if original["is_rotation"] else "translate")
    )
    if original["is_rotation"]:
        if len(points) < 3:
            raise InvalidInstruction(
                f"trajectory {index}: a rotation needs a centre, a start and an end point"
            )
        return HandleRegion(mask, operation, points[1], tuple(points[2:]), points[0])
    if len(points) < 2:
        raise InvalidInstruction(
            f"trajectory {index}: a translation needs a start and at least one more point"
        )
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
    if args.direction == "import":
        drag = import_labels(args.source)
        Path(args.out).write_text(json.dumps(drag.to_json()))
        regions = len(drag.instruction.regions)
        print(f"wrote {args.out}: {drag.instruction.mode.value}, {regions} region(s), block {drag.block}")
    else:
        data = json.loads(Path(args.source).read_text())
        drag = LabelledDrag(DragInstruction.from_json(data["instruction"]), data["prompt"], data["block"])
        print(f"wrote {export_labels(drag, args.out)}")
    return drag
