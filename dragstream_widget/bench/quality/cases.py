"""Bench cases: a drag instruction with the prompt, seed and moment at which it is applied.

A case file is a JSON list of objects::

    {"name": "edit-translate-0", "tags": ["edit", "translate"], "prompt": "...", "seed": 3,
     "start_frames": 3, "drag_block": 2, "follow_blocks": 2, "objects": ["red"],
     "instruction": {... DragInstruction.to_json() ...}}

``start_frames``: opening frames rendered by the toy world for the prompt and seed (image-to-video;
0 = free generation). ``drag_block``: the drag is applied once the stream holds this many blocks
(opening blocks included), on the last frame on screen. ``follow_blocks``: blocks streamed after the
drag has ended. ``objects``: for each handle region, the colour of the toy-world object it drags
(for ground-truth tracking), or null for videos without such ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...models.toyworld.world import OBJECT_COLORS
from ...ops import DragInstruction, InvalidInstruction, Mode

CASE_KEYS = {
    "name",
    "tags",
    "prompt",
    "seed",
    "start_frames",
    "drag_block",
    "follow_blocks",
    "objects",
    "instruction",
}
OPTIONAL_KEYS = {"start_frames": 0, "follow_blocks": 2, "objects": None, "tags": []}


class InvalidCase(ValueError):
    """A bench case that cannot be run; the message names the case and the field."""


@dataclass(frozen=True, eq=False)
class BenchCase:
    name: str
    tags: tuple[str, ...]
    prompt: str
    seed: int
    drag_block: int
    instruction: DragInstruction
    start_frames: int = 0
    follow_blocks: int = 2
    objects: tuple[str, ...] | None = None

    @property
    def mode(self) -> Mode:
        return self.instruction.mode

    def drag_blocks(self, frames_per_block: int) -> int:
        """Blocks the drag itself acts on: the edited block, or those the trajectory runs through."""
        if self.mode == Mode.EDIT:
            return 0
        return -(-self.instruction.num_targets // frames_per_block)

    def check_layout(self, frames_per_block: int, pixel_size: tuple[int, int]) -> None:
        """Checks that depend on the model: block size and frame size."""
        where = f"case {self.name!r}"
        if self.start_frames % frames_per_block:
            raise InvalidCase(
                f"{where}: start_frames {self.start_frames} is not a whole number of "
                f"{frames_per_block}-frame blocks"
            )
        opening = self.start_frames // frames_per_block
        if self.mode == Mode.EDIT and self.drag_block <= opening:
            raise InvalidCase(
                f"{where}: an edit needs a generated block on screen, but block {self.drag_block} "
                f"is one of the {opening} opening block(s)"
            )
        if tuple(self.instruction.frame_size) != tuple(pixel_size):
            h, w = self.instruction.frame_size
            raise InvalidCase(
                f"{where}: the instruction was drawn on {w}x{h} frames, the model makes "
                f"{pixel_size[1]}x{pixel_size[0]}"
            )
        expected = self.drag_block * frames_per_block - 1
        if self.instruction.frame_index is not None and self.instruction.frame_index != expected:
            raise InvalidCase(
                f"{where}: instruction frame_index {self.instruction.frame_index} is not the last "
                f"frame on screen at block {self.drag_block} ({expected})"
            )

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "tags": list(self.tags),
            "prompt": self.prompt,
            "seed": self.seed,
            "start_frames": self.start_frames,
            "drag_block": self.drag_block,
            "follow_blocks": self.follow_blocks,
            "objects": None if self.objects is None else list(self.objects),
            "instruction": self.instruction.to_json(),
        }


def _int(data: dict, key: str, where: str, minimum: int) -> int:
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidCase(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


def case_from_json(data, index: int) -> BenchCase:
    """One case from its JSON object; raises :class:`InvalidCase` naming the case and the field."""
    where = f"case {index}"
    if not isinstance(data, dict):
        raise InvalidCase(f"{where} must be a JSON object, got {type(data).__name__}")
    if isinstance(data.get("name"), str) and data["name"]:
        where = f"case {index} ({data['name']!r})"
    unknown = set(data) - CASE_KEYS
    missing = CASE_KEYS - set(data) - set(OPTIONAL_KEYS)
    if unknown:
        raise InvalidCase(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    if missing:
        raise InvalidCase(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    data = {**OPTIONAL_KEYS, **data}
    if not isinstance(data["name"], str) or not data["name"]:
        raise InvalidCase(f"{where}: name must be a non-empty string")
    if not isinstance(data["prompt"], str) or not data["prompt"].strip():
        raise InvalidCase(f"{where}: prompt must be a non-empty string")
    tags = data["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidCase(f"{where}: tags must be a list of non-empty strings, got {tags!r}")
    try:
        instruction = DragInstruction.from_json(data["instruction"])
    except InvalidInstruction as error:
        raise InvalidCase(f"{where}: instruction: {error}") from None
    objects = data["objects"]
    if objects is not None:
        if not isinstance(objects, list) or len(objects) != len(instruction.regions):
            raise InvalidCase(
                f"{where}: objects must list one colour per handle region "
                f"({len(instruction.regions)}), got {objects!r}"
            )
        for colour in objects:
            if colour not in OBJECT_COLORS:
                raise InvalidCase(
                    f"{where}: unknown object colour {colour!r}; colours: {', '.join(OBJECT_COLORS)}"
                )
        objects = tuple(objects)
    return BenchCase(
        name=data["name"],
        tags=tuple(tags),
        prompt=data["prompt"],
        seed=_int(data, "seed", where, 0),
        drag_block=_int(data, "drag_block", where, 1),
        instruction=instruction,
        start_frames=_int(data, "start_frames", where, 0),
        follow_blocks=_int(data, "follow_blocks", where, 0),
        objects=objects,
    )


def cases_from_json(data) -> list[BenchCase]:
    if not isinstance(data, list):
        raise InvalidCase(f"a case file holds a JSON list of cases, got {type(data).__name__}")
    if not data:
        raise InvalidCase("the case file holds no case")
    cases = [case_from_json(item, i) for i, item in enumerate(data)]
    seen: set[str] = set()
    for case in cases:
        if case.name in seen:
            raise InvalidCase(f"two cases are named {case.name!r}; names must be unique")
        seen.add(case.name)
    return cases


def load_cases(path: str | Path) -> list[BenchCase]:
    """Read and validate a case file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no case file at {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InvalidCase(f"{path} is not valid JSON: {error}") from None
    return cases_from_json(data)


def save_cases(cases: list[BenchCase], path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps([c.to_json() for c in cases], separators=(",", ":")) + "\n")
    return path
