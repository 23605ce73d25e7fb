"""Drag instructions, the paper's U^k: what a person asked for, validated and serialisable.

Points are ``(x, y)`` in model pixels (x right, y down, pixel centres at integers); masks are
``bool [H, W]`` in model pixels. Angles follow ``geometry``: positive turns clockwise on screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from .geometry import mask_centroid, signed_angle

FORMAT = "dragstream-instruction/1"
Point = tuple[float, float]


class InvalidInstruction(ValueError):
    """A drag instruction that cannot be carried out; the message says why in plain words."""


class Mode(str, Enum):
    EDIT = "edit"  # re-denoise the frame on screen
    ANIMATE = "animate"  # the next frames follow the trajectory


class Operation(str, Enum):
    TRANSLATE = "translate"
    DEFORM = "deform"  # translation of an edge region
    ROTATE_2D = "rotate_2d"  # rotation about a centre
    ROTATE_3D = "rotate_3d"  # translation of a sub-region; the model's prior turns the rest


def _enum(cls, value, what: str):
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise InvalidInstruction(f"unknown {what} {value!r}; allowed: {allowed}") from None


def _as_mask(mask, where: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
        raise InvalidInstruction(f"{where}: mask values must be boolean or 0/1")
    return array.astype(bool)


@dataclass(frozen=True, eq=False)
class HandleRegion:
    """One handle region H_i with its operation, handle point, target point(s) and rotation centre."""

    mask: np.ndarray
    operation: Operation
    handle: Point
    targets: tuple[Point, ...]
    center: Point | None = None

    def rotation_center(self) -> Point:
        return self.center if self.center is not None else mask_centroid(self.mask)

    def angle(self, i: int) -> float:
        """Signed angle (radians) at the rotation centre from the handle to ``targets[i]``."""
        return signed_angle(self.rotation_center(), self.handle, self.targets[i])

    def displacement(self, i: int) -> Point:
        return (self.targets[i][0] - self.handle[0], self.targets[i][1] - self.handle[1])


@dataclass(frozen=True, eq=False)
class DragInstruction:
    mode: Mode
    frame_size: tuple[int, int]  # (height, width)
    regions: tuple[HandleRegion, ...]
    frozen_mask: np.ndarray | None = None  # non-editable region M
    frame_index: int | None = None  # the frame it was drawn on

    @property
    def num_targets(self) -> int:
        return max(len(r.targets) for r in self.regions)

    def target_at(self, region_index: int, step: int) -> Point:
        """Target of a region at trajectory step ``step``; a shorter trajectory holds its last point."""
        targets = self.regions[region_index].targets
        return targets[min(step, len(targets) - 1)]

    def editable_mask(self) -> np.ndarray:
        if self.frozen_mask is None:
            return np.ones(self.frame_size, bool)
        return ~self.frozen_mask

    # ----- validation ----------------------------------------------------------------------------

    def validate(self) -> DragInstruction:
        """Check everything; returns self, raises :class:`InvalidInstruction` naming the problem."""
        _enum(Mode, self.mode, "mode")
        size = self.frame_size
        if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
            raise InvalidInstruction(
                f"frame_size must be two positive integers (height, width), got {size!r}"
            )
        if not self.regions:
            raise InvalidInstruction("the instruction has no handle region")
        frozen = None
        if self.frozen_mask is not None:
            frozen = _as_mask(self.frozen_mask, "non-editable region")
            if frozen.shape != tuple(size):
                raise InvalidInstruction(
                    f"non-editable region: mask is {frozen.shape[1]}x{frozen.shape[0]} but the frame is "
                    f"{size[1]}x{size[0]}"
                )
            if frozen.all():
                raise InvalidInstruction("non-editable region covers the whole frame: nothing could move")
        if self.frame_index is not None and (
            not isinstance(self.frame_index, (int, np.integer)) or self.frame_index < 0
        ):
            raise InvalidInstruction(f"frame_index must be a non-negative integer, got {self.frame_index!r}")
        for i, region in enumerate(self.regions):
            self._validate_region(i, region, frozen)
        return self

    def _validate_region(self, i: int, region: HandleRegion, frozen: np.ndarray | None) -> None:
        where = f"region {i}"
        operation = _enum(Operation, region.operation, f"{where}: operation")
        mask = _as_mask(region.mask, where)
        height, width = self.frame_size
        if mask.shape != (height, width):
            raise InvalidInstruction(
                f"{where}: handle mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]} "
                f"but the frame is {width}x{height}"
            )
        if not mask.any():
            raise InvalidInstruction(f"{where}: handle mask is empty; paint the region to drag")
        if frozen is not None and not (mask & ~frozen).any():
            raise InvalidInstruction(f"{where}: handle region lies entirely inside the non-editable region")
        if not region.targets:
            raise InvalidInstruction(f"{where}: no target point")
        if _enum(Mode, self.mode, "mode") == Mode.EDIT and len(region.targets) != 1:
            raise InvalidInstruction(f"{where}: an edit takes exactly one target, got {len(region.targets)}")
        named = [("handle", region.handle)] + [(f"target {k}", t) for k, t in enumerate(region.targets)]
        if region.center is not None:
            named.append(("rotation centre", region.center))
        for name, point in named:
            self._check_point(f"{where}: {name}", point)
        if operation == Operation.ROTATE_2D:
            c = region.rotation_center()
            if math.hypot(region.handle[0] - c[0], region.handle[1] - c[1]) < 0.5:
                raise InvalidInstruction(
                    f"{where}: the handle sits on the rotation centre, so no angle is defined"
                )

    def _check_point(self, where: str, point) -> None:
        height, width = self.frame_size
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError):
            raise InvalidInstruction(f"{where} must be two numbers (x, y), got {point!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInstruction(f"{where} ({x}, {y}) is not a finite number")
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            raise InvalidInstruction(f"{where} ({x:.1f}, {y:.1f}) lies outside the {width}x{height} frame")

    # ----- JSON ----------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "mode": Mode(self.mode).value,
            "frame_size": [int(v) for v in self.frame_size],
            "frame_index": self.frame_index,
            "frozen_mask": None if self.frozen_mask is None else encode_mask(self.frozen_mask),
            "regions": [
                {
                    "operation": Operation(r.operation).value,
                    "handle": [float(v) for v in r.handle],
                    "targets": [[float(v) for v in t] for t in r.targets],
                    "center": None if r.center is None else [float(v) for v in r.center],
                    "mask": encode_mask(r.mask),
                }
                for r in self.regions
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> DragInstruction:
        _check_keys(
            data, {"format", "mode", "frame_size", "frame_index", "frozen_mask", "regions"}, "instruction"
        )
        if data["format"] != FORMAT:
            raise InvalidInstruction(f"unknown format {data['format']!r}; expected {FORMAT!r}")
        if not isinstance(data["regions"], list):
            raise InvalidInstruction("regions must be a list")
        regions = []
        for i, r in enumerate(data["regions"]):
            if not isinstance(r, dict):
                raise InvalidInstruction(f"region {i} must be an object")
            _check_keys(r, {"operation", "handle", "targets", "center", "mask"}, f"region {i}")
            regions.append(
                HandleRegion(
                    decode_mask(r["mask"]),
                    _enum(Operation, r["operation"], f"region {i}: operation"),
                    _point(r["handle"], f"region {i}: handle"),
                    tuple(_point(t, f"region {i}: target {k}") for k, t in enumerate(_list(r["targets"], i))),
                    None if r["center"] is None else _point(r["center"], f"region {i}: rotation centre"),
                )
            )
        frozen = None if data["frozen_mask"] is None else decode_mask(data["frozen_mask"])
        size = data["frame_size"]
        if not isinstance(size, list) or len(size) != 2:
            raise InvalidInstruction(f"frame_size must be [height, width], got {size!r}")
        instruction = cls(
            _enum(Mode, data["mode"], "mode"), (size[0], size[1]), tuple(regions), frozen, data["frame_index"]
        )
        return instruction.validate()


def _list(value, i: int) -> list:
    if not isinstance(value, list):
        raise InvalidInstruction(f"region {i}: targets must be a list of [x, y] points")
    return value


def _point(value, where: str) -> Point:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InvalidInstruction(f"{where} must be [x, y], got {value!r}")
    try:
        return (float(value[0]), float(value[1]))
    except (TypeError, ValueError):
        raise InvalidInstruction(f"{where} must be two numbers, got {value!r}") from None


def _check_keys(data: dict, expected: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise InvalidInstruction(f"{where} must be a JSON object")
    unknown, missing = set(data) - expected, expected - set(data)
    if unknown:
        raise InvalidInstruction(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if missing:
        raise InvalidInstruction(f"{where}: missing field(s) {', '.join(sorted(missing))}")


def encode_mask(mask: np.ndarray) -> dict:
    """Row-major run-length code: counts of alternating runs, starting with False."""
    flat = np.asarray(mask, bool).ravel()
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(v) for v in np.shape(mask)], "counts": [int(c) for c in counts]}


def decode_mask(data: dict) -> np.ndarray:
    _check_keys(data, {"size", "counts"}, "mask")
    size, counts = data["size"], data["counts"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise InvalidInstruction(f"mask size must be [height, width], got {size!r}")
    if not isinstance(counts, list) or any(not isinstance(c, int) or c < 0 for c in counts):
        raise InvalidInstruction("mask counts must be non-negative integers")
    if sum(counts) != size[0] * size[1]:
        raise InvalidInstruction(f"mask counts add up to {sum(counts)} pixels, not {size[0] * size[1]}")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(size)
