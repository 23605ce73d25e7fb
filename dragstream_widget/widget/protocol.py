"""The messages between the browser and the kernel, parsed strictly into small commands.

Browser -> kernel (JSON content of anywidget custom messages):

- ``{"type": "ack", "seq": n}``: frame ``n`` is on screen (flow control).
- ``{"type": "control", "name": "play" | "pause" | "step" | "replay" | "undo" | "redo" | "reset" | "stop"}``.
- ``{"type": "apply", "id": n, "instruction": {...}}``: a drag in the ``dragstream-instruction/1``
  format (``ops.DragInstruction.to_json``), in model pixels; its frame size must be the model's
  (checked before any mask is decoded), and ``frame_index`` names the frame it was drawn on.
- ``{"type": "drawing"}``: a drag is being drawn on the frame on screen (sent at each stroke), so the
  kernel may get ready for it.

Kernel -> browser: ``{"type": "frame", "seq", "index", "block", "format", "drag"}`` with the encoded
image as the one binary buffer, and ``{"type": "applied", "id", "ok", "error"}``.

Anything else is a :class:`ProtocolError` whose message says in plain words what was wrong, with
the input cut short; the widget shows it in its status line and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from ..ops import DragInstruction, InvalidInstruction, cut, field_names, short

CONTROLS = ("play", "pause", "step", "replay", "undo", "redo", "reset", "stop")


class ProtocolError(ValueError):
    """A message from the browser that cannot be used."""


@dataclass(frozen=True)
class Ack:
    seq: int


@dataclass(frozen=True)
class Control:
    name: str


@dataclass(frozen=True)
class Apply:
    id: int
    instruction: DragInstruction


@dataclass(frozen=True)
class Drawing:
    pass


Message = Ack | Control | Apply | Drawing

_FIELDS = {
    "ack": {"type", "seq"},
    "control": {"type", "name"},
    "apply": {"type", "id", "instruction"},
    "drawing": {"type"},
}


def parse_message(content: object, frame_size: tuple[int, int] | None = None) -> Message:
    """Parse one browser message; a drag must have been drawn on ``frame_size`` frames when given."""
    if not isinstance(content, dict):
        raise ProtocolError(f"a widget message must be a JSON object, got {type(content).__name__}")
    kind = content.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise ProtocolError(f"type: unknown message type {short(kind)}; expected one of {', '.join(_FIELDS)}")
    _check_fields(content, _FIELDS[kind], kind)
    if kind == "ack":
        return Ack(_count(content["seq"], "ack seq"))
    if kind == "control":
        name = content["name"]
        if not isinstance(name, str) or name not in CONTROLS:
            raise ProtocolError(f"name: unknown control {short(name)}; expected one of {', '.join(CONTROLS)}")
        return Control(name)
    if kind == "drawing":
        return Drawing()
    return Apply(_count(content["id"], "drag id"), parse_instruction(content["instruction"], frame_size))


def parse_instruction(data: object, frame_size: tuple[int, int] | None = None) -> DragInstruction:
    """A drag from the browser, read from its JSON form (``DragInstruction.from_json``): sizes are
    checked against ``frame_size`` (when given) before any mask is decoded."""
    try:
        return DragInstruction.from_json(data, frame_size)
    except InvalidInstruction as error:
        raise ProtocolError(f"invalid drag: {error}") from None
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise ProtocolError(f"malformed drag: {cut(str(error), 200)}") from None


def _check_fields(content: dict, expected: set[str], kind: str) -> None:
    unknown, missing = set(content) - expected, expected - set(content)
    if unknown:
        raise ProtocolError(f"{kind} message: unknown field(s) {field_names(unknown)}")
    if missing:
        raise ProtocolError(f"{kind} message: missing field(s) {', '.join(sorted(missing))}")


def _count(value: object, what: str) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"{what} must be a non-negative integer, got {short(value)}")
    return int(value)
