"""The messages between the browser and the kernel, parsed strictly into small commands.

Browser -> kernel (JSON content of anywidget custom messages):

- ``{"type": "ack", "seq": n}``: frame ``n`` is on screen (flow control).
- ``{"type": "control", "name": "play" | "pause" | "step" | "replay" | "undo" | "reset" | "stop"}``.
- ``{"type": "apply", "id": n, "instruction": {...}}``: a drag in the ``dragstream-instruction/1``
  format (``ops.DragInstruction.to_json``), in model pixels; the session it enters checks that it fits
  the model's frames.
- ``{"type": "drawing"}``: a drag is being drawn on the frame on screen (sent at each stroke), so the
  kernel may get ready for it.

Kernel -> browser: ``{"type": "frame", "seq", "index", "block", "format", "drag"}`` with the encoded
image as the one binary buffer, and ``{"type": "applied", "id", "ok", "error"}``.

Anything else is a :class:`ProtocolError` whose message says in plain words what was wrong; the
widget shows it in its status line and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from ..ops import DragInstruction, InvalidInstruction

CONTROLS = ("play", "pause", "step", "replay", "undo", "reset", "stop")


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


def parse_message(content: object) -> Message:
    """Parse one browser message."""
    if not isinstance(content, dict):
        raise ProtocolError(f"a widget message must be a JSON object, got {type(content).__name__}")
    kind = content.get("type")
    if kind not in _FIELDS:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {', '.join(_FIELDS)}")
    _check_fields(content, _FIELDS[kind], kind)
    if kind == "ack":
        return Ack(_count(content["seq"], "ack seq"))
    if kind == "control":
        if content["name"] not in CONTROLS:
            raise ProtocolError(f"unknown control {content['name']!r}; expected one of {', '.join(CONTROLS)}")
        return Control(content["name"])
    if kind == "drawing":
        return Drawing()
    return Apply(_count(content["id"], "drag id"), parse_instruction(content["instruction"]))


def parse_instruction(data: object) -> DragInstruction:
    """A drag from the browser, read from its JSON form (``DragInstruction.from_json``)."""
    try:
        return DragInstruction.from_json(data)
    except InvalidInstruction as error:
        raise ProtocolError(f"invalid drag: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise ProtocolError(f"malformed drag: {error}") from None


def _check_fields(content: dict, expected: set[str], kind: str) -> None:
    unknown, missing = set(content) - expected, expected - set(content)
    if unknown:
        raise ProtocolError(f"{kind} message: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    if missing:
        raise ProtocolError(f"{kind} message: missing field(s) {', '.join(sorted(missing))}")


def _count(value: object, what: str) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)
