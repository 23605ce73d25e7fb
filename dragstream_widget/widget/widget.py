"""DragStreamWidget: the streamed video in a notebook cell, draggable at any time.

The Python side holds the traits both sides share and routes browser messages to the controller
(``controller.py``); frames travel through the pacer (``frames.py``); the front end is the ES module
built from ``js/`` into ``static/``. Every browser event is handled inside a guard: a bad one shows
a plain-words error in the status line and leaves the session as it was. Messages are parsed in
``protocol.py``; trait values are checked by the widget's one validator (``LIMITS``), from Python and
from the browser alike; drags are checked by the session they enter.

Beyond the protocol's messages the front end sends two of its own, read here: ``{"type": "select",
"x", "y"}`` (a click proposes the region of the object under it, :mod:`..selection`) and
``{"type": "export"}`` (the stream so far and its instructions written to ``export_dir``).

The ADSR, SFS and CSS switches are the widget's view of its session's :class:`DragConfig`: the
session drags with the config the widget was given less the components whose switch is off
(``DragConfig.without``), a switch turned on again restores its component, and the switches read as
the session's config.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import anywidget
import numpy as np
import traitlets

from ..engine.config import DragConfig
from ..engine.events import EventBus
from ..engine.presets import drag_config_of
from ..engine.session import StreamSession
from ..export import save_gif, save_mp4
from ..models.base import VideoBackend
from ..models.toyworld.model import MODEL_NAME as TOYWORLD
from ..models.toyworld.scenes import DEFAULT_PROMPT, opening_frames
from ..models.toyworld.world import parse_prompt
from ..ops import MAX_SEED, DragInstruction, check_prompt, cut, encode_mask, short
from ..selection import propose_region
from .controller import StreamController, describe
from .frames import Frame, FramePacer
from .live import LiveStrips
from .protocol import Ack, Apply, Control, Drawing, ProtocolError, parse_message

STATIC = Path(__file__).parent / "static"
StartFrames = Callable[[str, int], np.ndarray]
SWITCHES = ("adsr", "sfs", "css")  # the method's components the widget switches on and off
SWITCH_NAMES = {"adsr": "ADSR", "sfs": "SFS", "css": "CSS"}
WHOLE_FRAME = 0.9  # a handle region covering more of the frame than this is refused
WORLD_OPENING = "world"  # start_frames: the embedded model's world renders the opening frames
# Traits only the kernel sets: the browser's values for them are refused.
KERNEL_TRAITS = ("frame_size", "frame", "frame_index", "status", "state", "playing", "generation_fps")
# The trait values the widget takes: the test each one passes, and what it must be, in words.
LIMITS: dict[str, tuple[Callable[[float], bool], str]] = {
    "speed": (lambda v: 0.5 <= v <= 120.0, "between 0.5 and 120 frames per second"),
    "seed": (lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}"),
    "animation_frames": (lambda v: v >= 1, "an integer >= 1"),
    "display_width": (lambda v: v >= 1, "at least 1 pixel"),
}


def check_backend_prompt(backend: VideoBackend, prompt: str) -> None:
    """Raise ValueError, in plain words, for a prompt the backend would not stream well: not a string
    (:func:`ops.check_prompt`), an empty one, and on the embedded model one its world's grammar cannot
    read (its text encoder takes any string of its words, so a shuffled prompt would stream noise) or
    one with words it does not know."""
    prompt = check_prompt(prompt)
    if not prompt.strip():
        raise ValueError("the prompt is empty: describe the scene, e.g. " + repr(DEFAULT_PROMPT))
    backend.encode_prompt(prompt)  # the backend's own refusal (unknown words, too long)
    if getattr(backend, "name", None) == TOYWORLD:
        parse_prompt(prompt)


def world_opening_frames(backend: VideoBackend) -> StartFrames:
    """Opening frames of one block rendered by the embedded model's world for a prompt and seed."""
    return lambda prompt, seed: opening_frames(prompt, seed, backend.layout.frames_per_block)


def refuse_whole_frame_handles(instruction: DragInstruction) -> None:
    """A handle region painted over (nearly) the whole frame drags everything at once: refused, saying why."""
    for i, region in enumerate(instruction.regions):
        covered = float(np.mean(region.mask))
        if covered > WHOLE_FRAME:
            raise ValueError(
                f"region {i}'s handle covers {covered:.0%} of the frame: a drag moves what its handle covers, "
                "so paint the object alone (the eraser trims it)"
            )


def switch_note(name: str, on: bool) -> str:
    """The status line confirming a switch of the method."""
    what = {
        "adsr": "the dragged latent re-standardised to its neighbours",
        "sfs": "the context low-passed while optimising",
        "css": "the Gaussian map on the gradient",
    }[name]
    return f"{SWITCH_NAMES[name]} {'on' if on else 'off'}: drags from now on run {'with' if on else 'without'} {what}"


def switched(config: DragConfig, switches: dict[str, bool]) -> DragConfig:
    """``config`` with each component that ``switches`` marks False switched off and each one it marks
    True switched on (as ``config`` has it, where it is on there)."""
    off = [name for name, on in switches.items() if not on]
    return replace(config.without(*off), **{name: True for name, on in switches.items() if on})


class DragStreamWidget(anywidget.AnyWidget):
    """Streams ``prompt`` from ``backend`` live; paint, draw trajectories and apply drags in the cell.

    ``config`` defaults to the backend's own drag settings (the paper's where it has none); the
    switches turn its components off and on again (:attr:`config`).
    ``start_frames`` (frames, or a function of prompt and seed returning frames) starts each stream
    from given frames (image-to-video); by default (``"world"``) the embedded model starts from opening
    frames its world renders for the prompt and other backends generate from the first frame, which
    ``None`` asks of every backend. Prompts are checked before a stream starts (:func:`check_backend_prompt`);
    a refused one leaves the stream and the prompt as they were. ``export_dir`` is where the Export
    button writes. From Python: :meth:`play`, :meth:`pause`, :meth:`step`,
    :meth:`apply`, :meth:`undo`, :meth:`reset` queue work for the generation thread and return futures;
    :attr:`session` is the live :class:`StreamSession`, :attr:`events` the event bus every session of
    the widget reports to (attach recorders there), and :attr:`received` lists the drags the browser
    sent, in order.
    """

    _esm = STATIC / "widget.js"
    _css = STATIC / "widget.css"

    frame_size = traitlets.List(traitlets.Int(), [1, 1]).tag(sync=True)  # [height, width] in model pixels
    frame = traitlets.Bytes(b"").tag(sync=True)  # the latest frame, lossless (PNG)
    frame_index = traitlets.Int(0).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    state = traitlets.Unicode("busy").tag(sync=True)  # "ready", "busy" or "error"
    playing = traitlets.Bool(False).tag(sync=True)
    prompt = traitlets.Unicode("").tag(sync=True)
    seed = traitlets.Int(0).tag(sync=True)
    speed = traitlets.Float(16.0).tag(sync=True)  # playback, frames per second
    generation_fps = traitlets.Float(0.0).tag(sync=True)
    animation_frames = traitlets.Int(12).tag(sync=True)
    display_width = traitlets.Int(512).tag(sync=True)  # largest width on screen, CSS pixels
    adsr = traitlets.Bool(True).tag(sync=True)
    sfs = traitlets.Bool(True).tag(sync=True)
    css = traitlets.Bool(True).tag(sync=True)
    compare = traitlets.Bool(False).tag(sync=True)  # Figure 2a branches before each drag (live strips)

    def __init__(
        self,
        backend: VideoBackend,
        prompt: str,
        seed: int = 0,
        config: DragConfig | None = None,
        start_frames: np.ndarray | StartFrames | str | None = WORLD_OPENING,
        speed: float = 16.0,
        display_width: int = 512,
        undo_depth: int = 16,
        export_dir: str | Path = "dragstream_exports",
    ):
        check_backend_prompt(backend, prompt)
        if isinstance(start_frames, str):
            if start_frames != WORLD_OPENING:
                raise ValueError(f"start_frames must be frames, a function, None or {WORLD_OPENING!r}")
            start_frames = (
                world_opening_frames(backend) if getattr(backend, "name", None) == TOYWORLD else None
            )
        config = config or drag_config_of(backend)
        self._base_config = config
        height, width = backend.layout.pixel_size
        super().__init__(
            frame_size=[height, width],
            prompt=prompt,
            seed=seed,
            speed=speed,
            display_width=display_width,
            adsr=config.adsr,
            sfs=config.sfs,
            css=config.css,
        )
        self.backend = backend
        self.received: list[DragInstruction] = []
        self.events = EventBus()  # shared by every session of this widget, so recorders survive resets
        self._start_frames = start_frames
        self.export_dir = Path(export_dir)
        self._undo_depth = undo_depth
        self._sync_lock = threading.Lock()
        self._pacer = FramePacer(self._send_frame, self._show_still, fps=speed)
        self.on_msg(self._on_message)
        self._controller = StreamController(
            self._new_session,
            prompt,
            seed,
            config,
            self._pacer,
            self._report,
            self.events,
            opening=self._opening_frames,
        )
        self.wait()  # the first session exists once the constructor returns

    # ----- Python API ------------------------------------------------------------------------------

    @property
    def session(self) -> StreamSession | None:
        return self._controller.session

    @property
    def config(self) -> DragConfig:
        """The drag settings the switches give: the widget's config with the components switched off
        whose switch is off."""
        return switched(self._base_config, {name: getattr(self, name) for name in SWITCHES})

    def play(self) -> Future:
        return self._controller.play()

    def pause(self) -> Future:
        return self._controller.pause()

    def step(self, blocks: int = 1) -> Future:
        """Generate ``blocks`` blocks; the future resolves with the last block once it is committed."""
        return self._controller.step(blocks)

    def apply(self, instruction: DragInstruction) -> Future:
        """Apply a drag at the next block boundary (an edit resolves with the re-rendered block); the
        session checks it there, and the future raises what it finds wrong."""
        return self._controller.apply(instruction)

    def undo(self) -> Future:
        """Undo the last drag (an animation whole), reset or prompt change, with the blocks since."""
        return self._controller.undo()

    def redo(self) -> Future:
        """Redo what the last undo took back."""
        return self._controller.redo()

    def save(self, path: str | Path) -> Path:
        """Write the session to one JSON file (``StreamSession.save``); ``StreamSession.load`` and
        ``python -m dragstream_widget session replay`` replay it."""
        return self._controller.save(path).result()

    def replay(self) -> Future:
        """Pause and play back the whole stream so far (the future resolves with its frame count)."""
        return self._controller.replay()

    def reset(self, prompt: str | None = None, seed: int | None = None) -> Future:
        """Restart the stream (with a new prompt and/or seed). A prompt :func:`check_backend_prompt` refuses, or a
        stream that fails to start, leaves the stream going on and the prompt box showing its prompt."""
        try:
            check_backend_prompt(self.backend, self.prompt if prompt is None else prompt)
        except ValueError as error:
            future: Future = Future()
            future.set_exception(error)
            self._refuse_prompt(error)
            return future
        if prompt is not None:
            self.prompt = prompt
        if seed is not None:
            self.seed = seed
        future = self._controller.reset(self.prompt, self.seed)
        future.add_done_callback(lambda f: f.exception() and self._show_prompt_in_use())
        return future

    def _refuse_prompt(self, error: Exception | str) -> None:
        self._show_prompt_in_use()
        in_use = f" (still streaming {self.session.prompt!r})" if self.session is not None else ""
        reason = error if isinstance(error, str) else describe(error)
        self._report("error", f"prompt refused: {reason}{in_use}")

    def _show_prompt_in_use(self) -> None:
        """The prompt and seed boxes back to those of the stream going on."""
        session = self.session
        if session is not None:
            with self._sync_lock, self.hold_sync():
                self.prompt, self.seed = session.prompt, session.seed

    def export_all(self, folder: str | Path | None = None) -> list[Path]:
        """What the Export button writes: the stream so far as MP4 and GIF and the session's drag
        instructions as JSON, named by the time, in ``folder`` (default ``export_dir``)."""
        self.wait()
        folder = Path(folder or self.export_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / time.strftime("stream-%Y%m%d-%H%M%S")
        paths = [self.export(stem.with_suffix(suffix)) for suffix in (".mp4", ".gif")]
        instructions = stem.with_suffix(".json")
        instructions.write_text(json.dumps(session_instructions(self.session), indent=1))
        return [*paths, instructions]

    def export(self, path: str | Path, fps: float | None = None, scale: int = 1) -> Path:
        """Write the stream so far to ``path``: MP4 or GIF by its suffix (at the playback speed by default)."""
        self.wait()
        frames = self.session.frames()
        if len(frames) == 0:
            raise ValueError("nothing to export yet: generate a block first")
        savers = {".mp4": save_mp4, ".gif": save_gif}
        suffix = Path(path).suffix.lower()
        if suffix not in savers:
            raise ValueError(f"export writes .mp4 or .gif files, not {suffix or 'a file without suffix'!r}")
        return savers[suffix](frames, path, fps=fps or self.speed, scale=scale)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every request queued so far is done (not until blocks asked for by ``step``)."""
        self._controller.idle().result(timeout)

    def live_strips(self, window: int = 240) -> LiveStrips:
        """Live plots of this widget's streams (latent statistics per frame, drag losses), to show beside it."""
        return LiveStrips(self.events, self.backend.layout.frames_per_block, window)

    def delivered_fps(self) -> float:
        """Frames per second the browser acknowledged recently (0 when nothing is displaying)."""
        return self._pacer.delivered_fps()

    def close(self) -> None:
        """Stop generation and frame delivery, then close the widget; safe to call twice."""
        controller = getattr(self, "_controller", None)
        if controller is not None:
            controller.close()
        super().close()

    # ----- kernel side of the protocol -------------------------------------------------------------

    def _opening_frames(self, prompt: str, seed: int) -> np.ndarray | None:
        start = self._start_frames
        return start(prompt, seed) if callable(start) else start

    def _new_session(self, prompt: str, seed: int, config: DragConfig) -> StreamSession:
        start = self._opening_frames(prompt, seed)
        return StreamSession(
            self.backend, prompt, seed, config, self.events, start_frames=start, undo_depth=self._undo_depth
        )

    def _on_message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") in WIDGET_REQUESTS:
            self._on_widget_request(content)
            return
        try:
            message = parse_message(content, tuple(self.backend.layout.pixel_size))
            if isinstance(message, Ack):
                self._pacer.ack(message.seq)
            elif isinstance(message, Control):
                self._on_control(message.name)
            elif isinstance(message, Apply):
                self._on_apply(message)
            elif isinstance(message, Drawing):
                self._controller.hold_for_drawing()
                self._controller.prepare_drag()
        except ProtocolError as error:
            self._report("error", cut(str(error)))
            self._refuse_apply(content, cut(str(error)))
        except Exception as error:  # a widget event must never take the kernel down
            self._report("error", cut(describe(error)))

    def _on_control(self, name: str) -> None:
        if name == "stop":
            self._controller.stop()
            self._report("ready", "stopped")
        elif name == "reset":
            self.reset()
        else:
            getattr(self._controller, name)()

    def _on_apply(self, message: Apply) -> None:
        self.received.append(message.instruction)
        try:
            refuse_whole_frame_handles(message.instruction)
        except ValueError as error:
            future: Future = Future()
            future.set_exception(error)
            self._report("error", str(error))
        else:
            future = self._controller.apply(message.instruction, drag_id=message.id)
        future.add_done_callback(lambda f: self._send_applied(message.id, f))

    def _refuse_apply(self, content: object, error: str) -> None:
        """Answer a refused drag message that carries a usable id, so the browser stops waiting for it."""
        if isinstance(content, dict) and content.get("type") == "apply":
            drag_id = content.get("id")
            if isinstance(drag_id, int) and not isinstance(drag_id, bool) and 0 <= drag_id < 2**53:
                self._send_message({"type": "applied", "id": drag_id, "ok": False, "error": error})

    # ----- the front end's own requests: click to select, export -------------------------------------

    def _on_widget_request(self, content: dict) -> None:
        try:
            if content["type"] == "select":
                self._on_select(read_point(content, self.frame_size), read_frame(content))
            else:
                paths = self.export_all()
                self._report("ready", "exported " + ", ".join(str(p) for p in paths))
        except Exception as error:  # a widget event must never take the kernel down
            self._report("error", describe(error))

    def _on_select(self, point: tuple[float, float], frame: int | None) -> None:
        """Propose the region of the object under ``point`` on frame ``frame`` of the video (the one on
        screen; the last made where it is not given or no longer at hand), in the worker between blocks,
        and send it to the browser as a mask the brush can refine."""

        def propose(session: StreamSession) -> np.ndarray:
            block, k = locate_frame(session, frame)
            return propose_region(session, point, frame=k, block=block)

        future = self._controller.run(propose)
        future.add_done_callback(lambda f: self._send_selection(point, f))

    def _send_selection(self, point: tuple[float, float], future: Future) -> None:
        error = future.exception()
        if error is not None:
            self._report("error", f"selecting failed: {describe(error)}")
            return
        mask = future.result()
        self._send_message({"type": "selected", "point": list(point), "mask": encode_mask(mask)})
        self._report(
            "ready", f"selected {int(mask.sum())} pixels: refine with the brush or eraser, then draw"
        )

    def _send_applied(self, drag_id: int, future: Future) -> None:
        error = future.exception()
        self._send_message(
            {
                "type": "applied",
                "id": drag_id,
                "ok": error is None,
                "error": cut(describe(error)) if error else None,
            }
        )

    # ----- traits --------------------------------------------------------------------------------

    @traitlets.validate(*LIMITS)
    def _validate(self, proposal: traitlets.Bunch) -> float:
        name, value = proposal["trait"].name, proposal["value"]
        accepts, wanted = LIMITS[name]
        if not accepts(value):  # NaN fails every comparison, so it is refused too
            raise traitlets.TraitError(f"{name} must be {wanted}, got {short(value)}")
        return value

    @traitlets.validate("prompt")
    def _validate_prompt(self, proposal: traitlets.Bunch) -> str:
        try:
            return check_prompt(proposal["value"])
        except ValueError as error:
            raise traitlets.TraitError(str(error)) from None

    def set_state(self, sync_data: dict) -> None:
        """Trait values from the browser. Where a trait refuses one (or the update sets a trait only the
        kernel sets), the status line says why in a short message, every value of the update stays as it
        was, and the browser is sent them back."""
        try:
            if not isinstance(sync_data, dict):
                raise traitlets.TraitError(f"a state update must be an object, got {short(sync_data)}")
            kernel_only = [name for name in sync_data if name in KERNEL_TRAITS]
            if kernel_only:
                raise traitlets.TraitError(f"{', '.join(map(str, kernel_only))}: set by the kernel only")
            super().set_state(sync_data)
        except traitlets.TraitError as error:
            if isinstance(sync_data, dict) and "prompt" in sync_data:
                self._refuse_prompt(cut(str(error)))
            else:
                self._report("error", cut(str(error)))
            with self._sync_lock:
                names = sync_data if isinstance(sync_data, dict) else ()
                self.send_state([name for name in names if name in self.keys])

    @traitlets.observe(*SWITCHES)
    def _switches_changed(self, change: traitlets.Bunch) -> None:
        controller = getattr(self, "_controller", None)
        if controller is not None:
            controller.set_config(self.config, switch_note(change["name"], change["new"]))

    @traitlets.observe("prompt")
    def _prompt_changed(self, change: traitlets.Bunch) -> None:
        """A prompt typed in the box is checked at once; a refused one goes back to the prompt in use."""
        session = getattr(self, "_controller", None) and self.session
        if session is None or change["new"] == session.prompt:
            return
        try:
            check_backend_prompt(self.backend, change["new"])
        except ValueError as error:
            self._refuse_prompt(error)
        else:
            self._report("ready", f"new prompt {change['new']!r}: Reset starts it")

    @traitlets.observe("compare")
    def _compare_changed(self, change: traitlets.Bunch) -> None:
        controller = getattr(self, "_controller", None)
        if controller is not None:
            controller.set_compare(change["new"])

    @traitlets.observe("speed")
    def _speed_changed(self, change: traitlets.Bunch) -> None:
        pacer = getattr(self, "_pacer", None)
        if pacer is not None:
            pacer.fps = change["new"]

    # ----- thread-safe outgoing traffic ------------------------------------------------------------

    def _report(self, state: str, message: str) -> None:
        with self._sync_lock, self.hold_sync():
            self.state = state
            self.status = message
            controller = getattr(self, "_controller", None)
            if controller is not None:
                self.playing = controller.playing
                self.generation_fps = round(controller.generation_fps, 2)

    def _send_frame(self, meta: dict, data: bytes) -> None:
        self._send_message(meta, [data])

    def _show_still(self, frame: Frame, data: bytes) -> None:
        with self._sync_lock, self.hold_sync():
            self.frame_index = frame.index
            self.frame = data

    def _send_message(self, content: dict, buffers: list[bytes] | None = None) -> None:
        if self.comm is None:  # closed
            return
        with self._sync_lock:
            self.send(content, buffers)


WIDGET_REQUESTS = ("select", "export")  # the front end's messages read here, beside the protocol's


def read_point(content: dict, frame_size: list[int]) -> tuple[float, float]:
    """The ``x``, ``y`` of a select message: finite numbers inside the frame, in model pixels."""
    unknown = set(content) - {"type", "x", "y", "frame"}
    if unknown:
        raise ValueError(f"select message: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    height, width = frame_size
    point = []
    for name, limit in (("x", width), ("y", height)):
        value = content.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= limit - 1:
            raise ValueError(
                f"select message: {name} must be a number in [0, {limit - 1}], got {str(value)[:40]!r}"
            )
        point.append(float(value))
    return point[0], point[1]


def read_frame(content: dict) -> int | None:
    """The optional ``frame`` of a select message: the position in the video of the frame clicked."""
    frame = content.get("frame")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 0):
        raise ValueError(f"select message: frame must be an integer >= 0 or null, got {str(frame)[:40]!r}")
    return frame


def locate_frame(session: StreamSession, frame: int | None) -> tuple[object, int]:
    """The block holding frame ``frame`` of the video and the frame's place in it; the last frame of the
    last block where ``frame`` is None, past the end or in a block too old to have its features at hand."""
    start = 0
    for block in session.blocks:
        count = len(block.frames)
        if frame is not None and start <= frame < start + count and block.cache_before is not None:
            return block, frame - start
        start += count
    return None, -1


def session_instructions(session: StreamSession) -> dict:
    """The session's prompt, seed and every drag of its blocks in order (an animation once), as JSON."""
    drags, last = [], None
    for block in session.blocks:
        if block.instruction is not None and block.instruction is not last:
            drags.append({"block": block.index, "instruction": block.instruction.to_json()})
        last = block.instruction
    return {"prompt": session.prompt, "seed": session.seed, "drags": drags}
