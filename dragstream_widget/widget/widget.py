"""DragStreamWidget: the streamed video in a notebook cell, draggable at any time.

The Python side holds the traits both sides share and routes browser messages to the controller
(``controller.py``); frames travel through the pacer (``frames.py``); the front end is the ES module
built from ``js/`` into ``static/``. Every browser event is handled inside a guard: a bad one shows
a plain-words error in the status line and leaves the session as it was. Messages are parsed in
``protocol.py``; trait values are checked by the widget's one validator (``LIMITS``), from Python and
from the browser alike; drags are checked by the session they enter.

The ADSR, SFS and CSS switches are the widget's view of its session's :class:`DragConfig`: the
session drags with the config the widget was given less the components whose switch is off
(``DragConfig.without``), a switch turned on again restores its component, and the switches read as
the session's config.
"""

from __future__ import annotations

import threading
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
from ..ops import MAX_SEED, DragInstruction, check_prompt, short
from .controller import StreamController, describe
from .frames import Frame, FramePacer
from .live import LiveStrips
from .protocol import Ack, Apply, Control, Drawing, ProtocolError, parse_message

STATIC = Path(__file__).parent / "static"
StartFrames = Callable[[str, int], np.ndarray]
SWITCHES = ("adsr", "sfs", "css")  # the method's components the widget switches on and off
# Traits only the kernel sets: the browser's values for them are refused.
KERNEL_TRAITS = ("frame_size", "frame", "frame_index", "status", "state", "playing", "generation_fps")
# The trait values the widget takes: the test each one passes, and what it must be, in words.
LIMITS: dict[str, tuple[Callable[[float], bool], str]] = {
    "speed": (lambda v: 0.5 <= v <= 120.0, "between 0.5 and 120 frames per second"),
    "seed": (lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}"),
    "animation_frames": (lambda v: v >= 1, "an integer >= 1"),
    "display_width": (lambda v: v >= 1, "at least 1 pixel"),
}


def short_message(text: str, limit: int = 300) -> str:
    """A status message cut short (a refused value can be a huge input)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    from given frames (image-to-video). From Python: :meth:`play`, :meth:`pause`, :meth:`step`,
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
        start_frames: np.ndarray | StartFrames | None = None,
        speed: float = 16.0,
        display_width: int = 512,
        undo_depth: int = 16,
    ):
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
        """Restart the stream (with a new prompt and/or seed)."""
        if prompt is not None:
            self.prompt = prompt
        if seed is not None:
            self.seed = seed
        return self._controller.reset(self.prompt, self.seed)

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
        try:
            message = parse_message(content, tuple(self.backend.layout.pixel_size))
            if isinstance(message, Ack):
                self._pacer.ack(message.seq)
            elif isinstance(message, Control):
                self._on_control(message.name)
            elif isinstance(message, Apply):
                self._on_apply(message)
            elif isinstance(message, Drawing):
                self._controller.prepare_drag()
        except ProtocolError as error:
            self._report("error", short_message(str(error)))
            self._refuse_apply(content, short_message(str(error)))
        except Exception as error:  # a widget event must never take the kernel down
            self._report("error", short_message(describe(error)))

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
        future = self._controller.apply(message.instruction, drag_id=message.id)
        future.add_done_callback(lambda f: self._send_applied(message.id, f))

    def _refuse_apply(self, content: object, error: str) -> None:
        """Answer a refused drag message that carries a usable id, so the browser stops waiting for it."""
        if isinstance(content, dict) and content.get("type") == "apply":
            drag_id = content.get("id")
            if isinstance(drag_id, int) and not isinstance(drag_id, bool) and 0 <= drag_id < 2**53:
                self._send_message({"type": "applied", "id": drag_id, "ok": False, "error": error})

    def _send_applied(self, drag_id: int, future: Future) -> None:
        error = future.exception()
        self._send_message(
            {
                "type": "applied",
                "id": drag_id,
                "ok": error is None,
                "error": short_message(describe(error)) if error else None,
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
            self._report("error", short_message(str(error)))
            with self._sync_lock:
                names = sync_data if isinstance(sync_data, dict) else ()
                self.send_state([name for name in names if name in self.keys])

    @traitlets.observe(*SWITCHES)
    def _switches_changed(self, _change: traitlets.Bunch) -> None:
        controller = getattr(self, "_controller", None)
        if controller is not None:
            controller.set_config(self.config)

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
