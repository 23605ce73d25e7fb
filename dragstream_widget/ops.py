"""Drag instructions, the paper's U^k: what a person asked for, validated and serialisable.

Points are ``(x, y)`` floats in model pixels (x right, y down, pixel centres at integers); masks are
``bool [H, W]`` in model pixels. Angles follow ``geometry``: ``atan2(dy, dx)`` in image coordinates,
so a positive angle turns from +x towards +y, i.e. clockwise as seen on screen.

Fields given as plain strings, lists or 0/1 integer masks are normalised on construction when they
are valid (``Mode``/``Operation`` members, float tuples, bool masks); anything else is left as given
for :meth:`DragInstruction.validate` to reject with a message naming the region and the field.
"""

from __future__ import annotations

import json
import math
import reprlib
from dataclasses import dataclass
from enum import Enum
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from .geometry import mask_centroid, signed_angle

FORMAT = "dragstream-instruction/1"
Point = tuple[float, float]

_INSTRUCTION_KEYS = {"format", "mode", "frame_size", "frame_index", "frozen_mask", "regions"}
_REGION_KEYS = {"operation", "handle", "targets", "center", "mask"}
_MASK_KEYS = {"size", "counts"}
MAX_SIDE = 16384  # pixels: the largest frame side an instruction may name
MAX_PIXELS = 1 << 26  # pixels: the largest frame an instruction may name (a 64 MB boolean mask)
MAX_SEED = 2**32 - 1  # seeds are integers in [0, MAX_SEED]
MAX_PROMPT = 2000  # characters


def short(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut short, for error messages: never builds the whole repr of a huge input."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cut(text: str, limit: int = 300) -> str:
    """A message cut short."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json_object(path: Path, max_bytes: int, what: str, error: type[Exception]) -> dict:
    """The JSON object in the file at ``path``, its size checked before it is read; ``error`` names the
    file and what is wrong (``what``: the kind of file, for the message)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise error(f"{path.name}: {size} bytes; {what} has at most {max_bytes}")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as failure:
        raise error(f"{path.name}: not JSON ({cut(str(failure))})") from None
    if not isinstance(data, dict):
        raise error(f"{path.name}: {what} holds a JSON object, got {type(data).__name__}")
    return data


_SHORT = reprlib.Repr()
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlong = 30
_SHORT.maxlevel = 3


def field_names(names) -> str:
    """Field names for a message: the first few, sorted, each cut short."""
    names = sorted(str(n)[:40] for n in names)
    more = f" and {len(names) - 6} more" if len(names) > 6 else ""
    return ", ".join(names[:6]) + more


def check_seed(seed: object, field: str = "seed") -> int:
    """A seed as a plain ``int`` in ``[0, MAX_SEED]``; anything else is refused naming ``field``."""
    if not isinstance(seed, Integral) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{field} must be an integer from 0 to {MAX_SEED}, got {short(seed)}")
    return int(seed)


def check_prompt(prompt: object, field: str = "prompt") -> str:
    """A prompt: a string with some text, at most ``MAX_PROMPT`` characters."""
    if not isinstance(prompt, str):
        raise ValueError(f"{field} must be a string, got {type(prompt).__name__} {short(prompt)}")
    if not prompt.strip():
        raise ValueError(f"{field} is empty: say what the video should show")
    if len(prompt) > MAX_PROMPT:
        raise ValueError(f"{field} has {len(prompt)} characters; at most {MAX_PROMPT}: {short(prompt)}")
    return prompt


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


# ----- lenient coercion (None when the value cannot be used) ------------------------------------


def _as_enum(cls: type[Enum], value) -> Enum | None:
    try:
        return cls(value)
    except (TypeError, ValueError):
        return None


def _as_point(value) -> Point | None:
    if isinstance(value, (str, bytes)):
        return None
    try:
        items = tuple(value)
    except TypeError:
        return None
    if len(items) != 2 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in items):
        return None
    return (_as_float(items[0]), _as_float(items[1]))


def _as_float(value: Real) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float: not a finite coordinate
        return math.inf if value > 0 else -math.inf


def _as_mask(value) -> np.ndarray | None:
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nested lists
        return None
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf" or not np.isin(array, (0, 1)).all():
        return None
    return array.astype(bool)


def _is_sequence(value) -> bool:
    return np.iterable(value) and not isinstance(value, (str, bytes, dict))


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


# ----- strict conversion (raises InvalidInstruction naming the field) ----------------------------


def _enum(cls: type[Enum], value, where: str) -> Enum:
    member = _as_enum(cls, value)
    if member is None:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise InvalidInstruction(f"{where}unknown {cls.__name__.lower()} {short(value)}; allowed: {allowed}")
    return member


def _mask(value, where: str) -> np.ndarray:
    mask = _as_mask(value)
    if mask is None:
        raise InvalidInstruction(f"{where}: mask values must be boolean or 0/1")
    return mask


def _point(value, where: str) -> Point:
    point = _as_point(value)
    if point is None:
        raise InvalidInstruction(f"{where} must be two numbers (x, y), got {short(value)}")
    return point


def _shape_text(shape: tuple[int, ...]) -> str:
    return f"{shape[1]}x{shape[0]}" if len(shape) == 2 else f"of shape {shape}"


@dataclass(frozen=True, eq=False)
class HandleRegion:
    """One handle region H_i with its operation, handle point, target point(s) and rotation centre."""

    mask: np.ndarray
    operation: Operation
    handle: Point
    targets: tuple[Point, ...]
    center: Point | None = None

    def __post_init__(self) -> None:
        _normalise(self, "mask", _as_mask(self.mask))
        _normalise(self, "operation", _as_enum(Operation, self.operation))
        _normalise(self, "handle", _as_point(self.handle))
        if _is_sequence(self.targets):
            _normalise(self, "targets", tuple(_as_point(t) or t for t in self.targets))
        if self.center is not None:
            _normalise(self, "center", _as_point(self.center))

    def rotation_center(self) -> Point:
        """The rotation centre c_i: ``center`` when given, else the centroid of the mask."""
        return self.center if self.center is not None else mask_centroid(self.mask)

    def angle(self, i: int) -> float:
        """Signed angle in radians at the rotation centre from the handle to ``targets[i]``.

        Measured in image coordinates as ``atan2(dy, dx)``: positive turns from +x towards +y,
        which is clockwise as seen on screen. In (-pi, pi].
        """
        return signed_angle(self.rotation_center(), self.handle, self.targets[i])

    def displacement(self, i: int) -> Point:
        """``targets[i] - handle`` as ``(dx, dy)``."""
        return (self.targets[i][0] - self.handle[0], self.targets[i][1] - self.handle[1])


@dataclass(frozen=True, eq=False)
class DragInstruction:
    """A drag instruction U^k: handle regions with their targets, drawn on one frame."""

    mode: Mode
    frame_size: tuple[int, int]  # (height, width)
    regions: tuple[HandleRegion, ...]
    frozen_mask: np.ndarray | None = None  # non-editable region M: pixels that must stay
    frame_index: int | None = None  # the frame it was drawn on

    def __post_init__(self) -> None:
        _normalise(self, "mode", _as_enum(Mode, self.mode))
        if _is_sequence(self.regions):
            _normalise(self, "regions", tuple(self.regions))
        if _is_sequence(self.frame_size):
            _normalise(self, "frame_size", tuple(self.frame_size))
        if self.frozen_mask is not None:
            _normalise(self, "frozen_mask", _as_mask(self.frozen_mask))

    @property
    def num_targets(self) -> int:
        """The longest trajectory over the regions (1 for an edit)."""
        return max(len(r.targets) for r in self.regions)

    def target_at(self, region_index: int, step: int) -> Point:
        """Target of a region at trajectory step ``step``; a shorter trajectory holds its last point."""
        if step < 0:
            raise IndexError(f"trajectory step must be >= 0, got {step}")
        targets = self.regions[region_index].targets
        return targets[min(step, len(targets) - 1)]

    def editable_mask(self) -> np.ndarray:
        """Complement of the non-editable region (all True when there is none)."""
        if self.frozen_mask is None:
            return np.ones(self.frame_size, bool)
        return ~_mask(self.frozen_mask, "non-editable region")

    # ----- validation ----------------------------------------------------------------------------

    def validate(self) -> DragInstruction:
        """Check everything; returns self, raises :class:`InvalidInstruction` naming the problem. The
        instruction is frozen, so once it has passed, asking again costs nothing."""
        if self.__dict__.get("_valid"):
            return self
        _enum(Mode, self.mode, "")
        self._validate_frame()
        if len(self.regions) == 0:
            raise InvalidInstruction("the instruction has no handle region")
        frozen = self._validate_frozen()
        for i, region in enumerate(self.regions):
            self._validate_region(i, region, frozen)
        object.__setattr__(self, "_valid", True)
        return self

    def _validate_frame(self) -> None:
        size = self.frame_size
        if not (isinstance(size, tuple) and len(size) == 2):
            raise InvalidInstruction(
                f"frame_size must be two positive integers (height, width), got {short(size)}"
            )
        check_frame_size(list(size), "frame_size")
        index = self.frame_index
        if index is not None and not (_is_int(index) and index >= 0):
            raise InvalidInstruction(f"frame_index must be None or an integer >= 0, got {short(index)}")

    def _validate_frozen(self) -> np.ndarray | None:
        if self.frozen_mask is None:
            return None
        frozen = _mask(self.frozen_mask, "non-editable region")
        height, width = self.frame_size
        if frozen.shape != (height, width):
            raise InvalidInstruction(
                f"non-editable region: mask is {_shape_text(frozen.shape)} but the frame is {width}x{height}"
            )
        if frozen.all():
            raise InvalidInstruction("non-editable region covers the whole frame: nothing could move")
        return frozen

    def _validate_region(self, i: int, region: HandleRegion, frozen: np.ndarray | None) -> None:
        where = f"region {i}"
        if not isinstance(region, HandleRegion):
            raise InvalidInstruction(f"{where} is not a HandleRegion, got {type(region).__name__}")
        operation = _enum(Operation, region.operation, f"{where}: ")
        mask = _mask(region.mask, f"{where}: handle")
        height, width = self.frame_size
        if mask.shape != (height, width):
            raise InvalidInstruction(
                f"{where}: handle mask is {_shape_text(mask.shape)} but the frame is {width}x{height}"
            )
        if not mask.any():
            raise InvalidInstruction(f"{where}: handle mask is empty; paint the region to drag")
        if frozen is not None and not (mask & ~frozen).any():
            raise InvalidInstruction(f"{where}: handle region lies entirely inside the non-editable region")
        self._validate_targets(where, region.targets)
        self._check_point(f"{where}: handle", region.handle)
        for k, target in enumerate(region.targets):
            self._check_point(f"{where}: target {k}", target)
        if region.center is not None:
            self._check_point(f"{where}: rotation centre", region.center)
        if operation == Operation.ROTATE_2D:
            c = region.rotation_center()
            if math.hypot(region.handle[0] - c[0], region.handle[1] - c[1]) < 0.5:
                raise InvalidInstruction(
                    f"{where}: the handle sits within 0.5 px of the rotation centre, so no angle is defined"
                )

    def _validate_targets(self, where: str, targets) -> None:
        if not isinstance(targets, tuple):
            raise InvalidInstruction(
                f"{where}: targets must be a sequence of (x, y) points, got {short(targets)}"
            )
        if len(targets) == 0:
            raise InvalidInstruction(f"{where}: no target point")
        if self.mode == Mode.EDIT and len(targets) != 1:
            raise InvalidInstruction(f"{where}: an edit takes exactly one target, got {len(targets)}")

    def _check_point(self, where: str, value) -> None:
        x, y = _point(value, where)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidInstruction(f"{where} ({x}, {y}) is not a finite number")
        height, width = self.frame_size
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            raise InvalidInstruction(f"{where} ({x:.1f}, {y:.1f}) lies outside the {width}x{height} frame")

    # ----- JSON ----------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """A ``json.dumps``-able dict in the ``dragstream-instruction/1`` format (validates first)."""
        self.validate()
        return {
            "format": FORMAT,
            "mode": self.mode.value,
            "frame_size": [int(v) for v in self.frame_size],
            "frame_index": None if self.frame_index is None else int(self.frame_index),
            "frozen_mask": None if self.frozen_mask is None else encode_mask(self.frozen_mask),
            "regions": [_region_to_json(r) for r in self.regions],
        }

    @classmethod
    def from_json(cls, data: dict, frame_size: tuple[int, int] | None = None) -> DragInstruction:
        """Read and validate an instruction written by :meth:`to_json`. Sizes are checked before any
        mask is built: every mask must have the instruction's ``frame_size``, which must be
        ``frame_size`` when given (the frames of the model it is meant for)."""
        _check_keys(data, _INSTRUCTION_KEYS, "instruction")
        if data["format"] != FORMAT:
            raise InvalidInstruction(f"unknown format {short(data['format'])}; expected {FORMAT!r}")
        size = check_frame_size(data["frame_size"], "frame_size")
        if frame_size is not None and tuple(size) != tuple(frame_size):
            raise InvalidInstruction(
                f"frame_size: the instruction was drawn on a {size[1]}x{size[0]} frame, "
                f"but the model makes {frame_size[1]}x{frame_size[0]} frames"
            )
        if not isinstance(data["regions"], list):
            raise InvalidInstruction(f"regions must be a list, got {type(data['regions']).__name__}")
        if len(data["regions"]) > MAX_REGIONS:
            raise InvalidInstruction(f"regions: {len(data['regions'])} regions; at most {MAX_REGIONS}")
        instruction = cls(
            mode=_enum(Mode, data["mode"], ""),
            frame_size=size,
            regions=tuple(_region_from_json(r, i, size) for i, r in enumerate(data["regions"])),
            frozen_mask=None
            if data["frozen_mask"] is None
            else decode_mask(data["frozen_mask"], "frozen_mask", size),
            frame_index=data["frame_index"],
        )
        return instruction.validate()


def _normalise(obj, field: str, value) -> None:
    """Replace a field of a frozen dataclass by its normalised value, when there is one."""
    if value is not None:
        object.__setattr__(obj, field, value)


def _region_to_json(region: HandleRegion) -> dict:
    return {
        "operation": region.operation.value,
        "handle": list(region.handle),
        "targets": [list(t) for t in region.targets],
        "center": None if region.center is None else list(region.center),
        "mask": encode_mask(region.mask),
    }


def _region_from_json(data, i: int, frame_size: tuple[int, int]) -> HandleRegion:
    where = f"region {i}"
    _check_keys(data, _REGION_KEYS, where)
    if not isinstance(data["targets"], list):
        raise InvalidInstruction(f"{where}: targets must be a list of [x, y] points")
    if len(data["targets"]) > MAX_TARGETS:
        raise InvalidInstruction(f"{where}: {len(data['targets'])} targets; at most {MAX_TARGETS}")
    return HandleRegion(
        mask=decode_mask(data["mask"], f"{where}: handle mask", frame_size),
        operation=_enum(Operation, data["operation"], f"{where}: "),
        handle=_point(data["handle"], f"{where}: handle"),
        targets=tuple(_point(t, f"{where}: target {k}") for k, t in enumerate(data["targets"])),
        center=None if data["center"] is None else _point(data["center"], f"{where}: rotation centre"),
    )


def _check_keys(data, expected: set[str], where: str) -> None:
    if not isinstance(data, dict):
        raise InvalidInstruction(f"{where} must be a JSON object, got {type(data).__name__}")
    unknown, missing = set(data) - expected, expected - set(data)
    if unknown:
        raise InvalidInstruction(f"{where}: unknown field(s) {field_names(unknown)}")
    if missing:
        raise InvalidInstruction(f"{where}: missing field(s) {', '.join(sorted(missing))}")


def encode_mask(mask: np.ndarray) -> dict:
    """Row-major run-length code ``{"size": [H, W], "counts": [...]}``: alternating runs from False."""
    flat = np.asarray(mask, bool).ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(v) for v in np.shape(mask)], "counts": [int(c) for c in counts]}


def check_frame_size(size: object, where: str) -> tuple[int, int]:
    """``[height, width]`` of positive integers within ``MAX_SIDE`` and ``MAX_PIXELS``, as a tuple."""
    if not (isinstance(size, list | tuple) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size)):
        raise InvalidInstruction(f"{where} must be two positive integers [height, width], got {short(size)}")
    height, width = int(size[0]), int(size[1])
    if max(height, width) > MAX_SIDE or height * width > MAX_PIXELS:
        raise InvalidInstruction(
            f"{where} {width}x{height} is too large: at most {MAX_SIDE} pixels a side and {MAX_PIXELS} in all"
        )
    return height, width


MAX_REGIONS = 64
MAX_TARGETS = 4096


def decode_mask(data: dict, where: str = "mask", frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """Inverse of :func:`encode_mask`; raises :class:`InvalidInstruction` on a malformed code. The size
    (which must be ``frame_size`` when given) and the counts are checked before the mask is built."""
    _check_keys(data, _MASK_KEYS, where)
    height, width = check_frame_size(data["size"], f"{where}: size")
    if frame_size is not None and (height, width) != tuple(frame_size):
        raise InvalidInstruction(
            f"{where} is {width}x{height} but the frame is {frame_size[1]}x{frame_size[0]}"
        )
    counts, pixels = data["counts"], height * width
    if not isinstance(counts, list) or len(counts) > pixels + 1:
        raise InvalidInstruction(
            f"{where}: counts must be a list of at most {pixels + 1} run lengths, got {short(counts)}"
        )
    bad = next((c for c in counts if not (_is_int(c) and 0 <= c <= pixels)), None)
    if bad is not None:
        raise InvalidInstruction(
            f"{where}: counts must be integers from 0 to {pixels} (the frame's pixels), got {short(bad)}"
        )
    if sum(counts) != pixels:
        raise InvalidInstruction(
            f"{where}: counts add up to {sum(counts)} pixels, not {width}x{height} = {pixels}"
        )
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, np.asarray(counts, np.int64)).reshape(height, width)
