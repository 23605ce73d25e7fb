"""The kernel-side controller: a streaming session driven from a worker thread.

Every request (play, step, a drag, undo, reset, new drag settings, the compare switch) is queued and
carried out by the worker between blocks, so the kernel's main thread stays free for widget events
while the video streams, and a drag sent mid-generation is applied at the next block boundary; an
edit does not wait for a block under way without a drag, which is abandoned so the edit reaches the
frame on screen at once (the block is generated again after it). Requests return futures. Errors
never escape the worker: they resolve the request's future with the exception and are reported
through ``report``; the session itself restores its state when an action fails.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.branches import adsr_comparison, animation_blocks
from ..engine.config import DragConfig
from ..engine.events import EventBus
from ..engine.rollout import BlockInterrupted
from ..engine.session import BlockRecord, StreamSession, latent_statistics
from ..ops import DragInstruction, Mode
from .frames import Frame, FramePacer

VIEW_TIMEOUT = 10.0  # seconds a view may stay silent while playing before the stream pauses
SessionFactory = Callable[[str, int, DragConfig], StreamSession]
OpeningFrames = Callable[[str, int], np.ndarray | None]  # the opening frames of a stream, if any
# What the status line calls each action undone or redone.
ACTION_NAMES = {
    "edit": "edit",
    "animate": "animation",
    "reset": "reset",
    "prompt": "prompt change",
    "block": "block",
}
Report = Callable[[str, str], None]  # (state, message); state is "ready", "busy" or "error"


@dataclass
class _Request:
    name: str
    args: tuple = ()
    future: Future = field(default_factory=Future)


class StreamController:
    """Owns a :class:`StreamSession` in a worker thread; see the module docstring. Every session it
    makes runs with the latest ``config`` it was given."""

    def __init__(
        self,
        make_session: SessionFactory,
        prompt: str,
        seed: int,
        config: DragConfig,
        pacer: FramePacer,
        report: Report,
        events: EventBus,
        opening: OpeningFrames | None = None,
    ):
        """``make_session`` starts the first stream; a reset restarts the same session (an action undo
        takes back) from the opening frames ``opening`` gives for the prompt and seed."""
        self._make_session, self._config = make_session, config
        self._opening = opening or (lambda prompt, seed: None)
        self._pacer, self._report = pacer, report
        self._requests: queue.Queue[_Request] = queue.Queue()
        # Guards _playing and _blocks_to_go: the worker changes them, and stop() reads them from the
        # kernel's main thread.
        self._lock = threading.Lock()
        self._playing = False
        self._blocks_to_go = 0
        self._animation_blocks = 0  # blocks an animation asked for while paused; Stop and Pause end them
        self._generated = 0  # blocks the worker has generated
        self._step_futures: list[tuple[int, Future]] = []  # (generated count that resolves it, future)
        self._animation_id: int | None = None  # the drag whose animation is running
        self._resume_after_drag = False  # the stream was playing when a drawing held it
        self._compare = False  # run Figure 2a's no-drag and no-ADSR branches before each drag
        self._events = events
        self.session: StreamSession | None = None
        self.generation_fps = 0.0
        self.last_edit_seconds: float | None = None  # how long the last edit took in the worker
        self._last_status = 0.0
        self._closed = threading.Event()
        events.subscribe("iteration", self._on_iteration)
        self._thread = threading.Thread(target=self._run, name="dragstream-worker", daemon=True)
        self._request("reset", prompt, seed)
        self._thread.start()

    # ----- requests (any thread) -------------------------------------------------------------------

    def play(self) -> Future:
        return self._request("play")

    def pause(self) -> Future:
        return self._request("pause")

    def step(self, blocks: int = 1) -> Future:
        """Generate ``blocks`` more blocks; the future resolves when the last one is committed."""
        if not isinstance(blocks, int) or blocks < 1:
            raise ValueError(f"blocks must be a positive integer, got {blocks!r}")
        return self._request("step", blocks)

    def apply(self, instruction: DragInstruction, drag_id: int | None = None) -> Future:
        """Apply a drag at the next block boundary. An edit abandons a block under way without a drag
        (it is made again afterwards). When paused, an animation plays until it ends."""
        future = self._request("apply", instruction, drag_id)
        session = self.session
        if getattr(instruction, "mode", None) == Mode.EDIT and session is not None and not future.done():
            session.request_interrupt()
        return future

    def prepare_drag(self) -> Future:
        """Get a drag of the frame on screen ready while it is drawn: the worker computes the reference
        features the drag will read (``StreamSession.prepare_drag``), unless blocks are on their way (playing,
        or steps asked for), when another frame will be on screen by the time the drag arrives. Resolves
        with whether it did."""
        return self._request("prepare_drag")

    def undo(self) -> Future:
        """Undo the person's last action: a drag (an animation whole), a reset or a prompt change, with
        the blocks streamed since; resolves with the action's name."""
        return self._request("undo")

    def hold_for_drawing(self) -> Future:
        """Hold the stream on the frame on screen while a drag is drawn on it: playback pauses and the
        frames queued after it wait; the next Apply, Play or Step resumes (resolves with whether the
        stream was playing)."""
        return self._request("hold")

    def redo(self) -> Future:
        """Redo what the last undo took back; resolves with the action's name."""
        return self._request("redo")

    def save(self, path: str | Path) -> Future:
        """Write the session to ``path`` (``StreamSession.save``) once the requests before are done."""
        return self._request("save", path)

    def replay(self) -> Future:
        """Pause, then play back every frame of the stream so far at the playback speed."""
        return self._request("replay")

    def reset(self, prompt: str, seed: int) -> Future:
        return self._request("reset", prompt, seed)

    def set_config(self, config: DragConfig, note: str | None = None) -> Future:
        """Drag with ``config`` from the next request on, in this session and those after a reset;
        ``note`` is the status line that confirms it."""
        return self._request("config", config, note)

    def set_compare(self, compare: bool) -> Future:
        """Whether each drag first runs Figure 2a's branches (no drag, the drag without ADSR)."""
        return self._request("compare", compare)

    def stop(self) -> None:
        """Stop now: pause, end a running optimisation early (its block keeps the latent reached so
        far), abandon a block under way without a drag unless blocks asked for by ``step`` are still
        to come (it is made again on play) and drop frames waiting to be shown (a replay ends)."""
        with self._lock:
            self._playing = False
            self._animation_blocks = 0
            steps_to_come = self._blocks_to_go > 0
        session = self.session
        if session is not None:
            session.request_stop()
            if not steps_to_come:
                session.request_interrupt()
            last = frames_of(session, session.blocks[-1:])
            self._pacer.clear(last[-1] if last else None)

    @property
    def playing(self) -> bool:
        return self._playing

    def run(self, work: Callable[[StreamSession], object]) -> Future:
        """Run ``work(session)`` in the worker between blocks (it may read the session, not change it);
        resolves with what it returns."""
        return self._request("run", work)

    def idle(self) -> Future:
        """A future resolved once every request queued so far has been carried out."""
        return self._request("sync")

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker (after the block it is on) and the frame pacer; never blocks for long."""
        self._closed.set()
        self.stop()
        self._requests.put(_Request("close"))
        self._thread.join(timeout)
        self._pacer.close()

    def _request(self, name: str, *args) -> Future:
        request = _Request(name, args)
        if self._closed.is_set():
            request.future.set_exception(RuntimeError("the widget is closed"))
        else:
            self._requests.put(request)
        return request.future

    # ----- the worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                request = self._requests.get(timeout=None if not self._wants_blocks() else 0)
            except queue.Empty:
                self._generate_next()
                continue
            if request.name == "close":
                break
            self._carry_out(request)
        self._drain("the widget was closed")

    def _wants_blocks(self) -> bool:
        return self.session is not None and (
            self._playing or self._blocks_to_go > 0 or self._animation_blocks > 0
        )

    def _carry_out(self, request: _Request) -> None:
        try:
            if self.session is None and request.name not in ("reset", "sync"):
                raise RuntimeError(
                    "there is no stream yet: starting it failed (see above); reset to try again"
                )
            result = getattr(self, f"_do_{request.name}")(*request.args)
        except Exception as error:  # reported, never raised in the worker
            self._report("error", describe(error))
            request.future.set_exception(error)
            return
        if request.name == "step":
            to_come = self._blocks_to_go + self._animation_blocks
            self._step_futures.append((self._generated + to_come, request.future))
        else:
            request.future.set_result(result)

    def _drain(self, reason: str) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                break
            request.future.set_exception(RuntimeError(reason))
        self._fail_steps(reason)

    # ----- actions ---------------------------------------------------------------------------------

    def _do_sync(self) -> None:
        return None

    def _do_run(self, work: Callable[[StreamSession], object]) -> object:
        return work(self.session)

    def _set_playing(self, playing: bool) -> None:
        with self._lock:
            self._playing = playing

    def _do_play(self) -> None:
        self._release_hold()
        self._set_playing(True)
        self._status()

    def _do_pause(self) -> None:
        with self._lock:
            self._playing, self._animation_blocks = False, 0
        self._status()

    def _do_step(self, blocks: int) -> None:
        self._release_hold()
        with self._lock:
            self._blocks_to_go += blocks

    # ----- holding the frame while a drag is drawn ---------------------------------------------------

    def _do_hold(self) -> bool:
        if self._pacer.held:
            return self._resume_after_drag
        with self._lock:
            self._resume_after_drag = self._playing
            self._playing = False
        self._pacer.hold()
        frame = self._pacer.latest_index
        self._status(f"held on frame {frame} while you draw: Apply or Clear resumes")
        return self._resume_after_drag

    def _release_hold(self) -> None:
        """End a hold: the frames queued behind it play on."""
        self._resume_after_drag = False
        self._pacer.release()

    def _resume_after_hold(self) -> None:
        """After a drag drawn on a held frame: play again where the stream was playing."""
        resume = self._resume_after_drag and self._pacer.held
        self._release_hold()
        if resume:
            self._set_playing(True)

    def _do_prepare_drag(self) -> bool:
        return not self._wants_blocks() and self.session.prepare_drag()

    def _do_config(self, config: DragConfig, note: str | None = None) -> DragConfig:
        self._config = self.session.config = config
        self._status(note)
        return config

    def _do_compare(self, compare: bool) -> None:
        self._compare = compare
        self._status()

    def _do_reset(self, prompt: str, seed: int) -> None:
        self._report("busy", f"starting a new stream: {prompt!r}, seed {seed}")
        self._halt()
        self._fail_steps("the stream was reset")
        if self.session is None:
            self.session = self._make_session(prompt, seed, self._config)
        else:
            self.session.reset(prompt, seed, self._opening(prompt, seed))
        self._show_from_start()
        self._status()

    def _show_from_start(self) -> None:
        """Show the stream from its start: its opening frames, or a blank frame 0 until the first block
        comes (never the last stream's frame under its old number)."""
        session = self.session
        frames = frames_of(session, session.blocks)
        height, width = session.backend.layout.pixel_size
        self._pacer.clear(frames[0] if frames else Frame(0, 0, np.zeros((height, width, 3), np.uint8), None))
        self._pacer.push(frames[1:])

    def _do_redo(self) -> str:
        self._halt()
        self._fail_steps("a redo interrupted the steps")
        action = self.session.redo()
        self._show_last()
        self._status(f"redid the {ACTION_NAMES.get(action, action)}")
        return action

    def _do_save(self, path: str | Path) -> Path:
        saved = self.session.save(path)
        self._status(f"saved the session to {saved}")
        return saved

    def _show_last(self) -> None:
        """After an undo or redo: the last frame of the stream now on screen, or a blank frame 0; the
        recorders hear of its last block again, so they drop what came after it."""
        blocks = self.session.blocks
        if blocks and blocks[-1].z0 is not None:
            last = blocks[-1]
            edited = last.instruction is not None
            self._events.emit(
                "block", lambda: {"index": last.index, "frames": last.frames, "z0": last.z0, "edited": edited}
            )
            self._events.emit("latent_stats", lambda: latent_statistics(last.index, last.z0))
        if blocks and blocks[-1].frames.size:
            self._pacer.clear(frames_of(self.session, blocks[-1:])[-1])
        else:
            self._show_from_start()

    def _do_replay(self) -> int:
        self._release_hold()
        self._set_playing(False)
        frames = frames_of(self.session, self.session.blocks)
        self._pacer.clear()
        self._pacer.push(frames)
        self._status(f"replaying {len(frames)} frames")
        return len(frames)

    def _do_undo(self) -> str:
        self._halt()
        self._fail_steps("an undo interrupted the steps")
        action = self.session.undo_action()
        self._show_last()
        self._status(f"undid the {ACTION_NAMES.get(action, action)}")
        return action

    def _do_apply(self, instruction: DragInstruction, drag_id: int | None) -> BlockRecord | None:
        session = self.session
        if self._compare:
            self._run_comparison(instruction)
        what = "editing the frame on screen" if instruction.mode == Mode.EDIT else "starting the animation"
        self._report("busy", f"{what} ...")
        started = time.perf_counter()
        blocks_before = session.num_blocks
        try:
            record = session.apply(instruction)
        except Exception:
            self._resume_after_hold()
            raise
        if session.num_blocks < blocks_before:  # drawn on an earlier frame: the blocks after it went
            self._pacer.clear()
        if record is not None:
            self._pacer.push(frames_of(session, (record,), drag_id))
            self._resume_after_hold()
            self.last_edit_seconds = time.perf_counter() - started
            self._status(f"edited in {self.last_edit_seconds:.2f} s")
        else:
            self._animation_id = drag_id
            self._resume_after_hold()
            with self._lock:
                if not self._playing:
                    self._animation_blocks += animation_blocks(session, instruction)
            self._status("animating the next frames")
        return record

    def _run_comparison(self, instruction: DragInstruction) -> None:
        self._report("busy", "comparing: the same blocks without the drag, and with it but without ADSR ...")
        session = self.session
        branches = adsr_comparison(session, instruction)  # runs silently; its result is one event
        self._events.emit("comparison", lambda: {"block": session.blocks[-1].index, "branches": branches})

    def _generate_next(self) -> None:
        session = self.session
        if self._playing and self._pacer.silent_view_seconds() > VIEW_TIMEOUT:
            self._set_playing(False)
            self._report("ready", f"paused: no view has shown a frame for {VIEW_TIMEOUT:.0f} s (tab closed?)")
            return
        per_block = session.backend.layout.frames_per_block * session.backend.layout.pixel_frames_per_latent
        while not self._pacer.wait_for_backlog(per_block, timeout=0.05):
            if not self._requests.empty() or self._closed.is_set():
                return  # a request comes first; generation resumes after it
        animating = session.animating
        started = time.perf_counter()
        try:
            record = session.step()
        except BlockInterrupted:
            return  # an edit came first; the block is made again after it
        except Exception as error:
            self._halt()
            self._fail_steps(describe(error))
            self._report("error", describe(error))
            return
        elapsed = time.perf_counter() - started
        drag = self._animation_id if animating else None
        if not session.animating:
            self._animation_id = None
        # The pace of playback follows plain blocks: a drag's slower blocks would hold it back after the drag.
        self._pacer.push(frames_of(session, (record,), drag), made_in=None if animating else elapsed)
        if not animating:  # drag blocks would understate the streaming speed
            rate = len(record.frames) / max(elapsed, 1e-6)
            self.generation_fps = rate if self.generation_fps == 0 else 0.7 * self.generation_fps + 0.3 * rate
        self._generated += 1
        with self._lock:
            if animating and self._animation_blocks > 0:
                self._animation_blocks -= 1
            else:
                self._blocks_to_go = max(self._blocks_to_go - 1, 0)
        self._resolve_steps()
        self._status()

    def _halt(self) -> None:
        """Neither play nor generate the blocks still asked for."""
        with self._lock:
            self._playing, self._blocks_to_go, self._animation_blocks = False, 0, 0

    def _resolve_steps(self) -> None:
        done = [f for target, f in self._step_futures if target <= self._generated]
        self._step_futures = [(t, f) for t, f in self._step_futures if t > self._generated]
        for future in done:
            future.set_result(self.session.blocks[-1])

    def _fail_steps(self, reason: str) -> None:
        for _, future in self._step_futures:
            future.set_exception(RuntimeError(reason))
        self._step_futures = []

    # ----- status ----------------------------------------------------------------------------------

    def _status(self, message: str | None = None) -> None:
        session = self.session
        frames = sum(b.num_frames for b in session.blocks)
        to_go = self._blocks_to_go or self._animation_blocks
        state = "playing" if self._playing else ("generating" if to_go else "paused")
        if session.animating:
            state += ", animating"
        text = message or f"{state} · {frames} frames"
        if self.generation_fps and self._wants_blocks():
            text += f" · generating at {self.generation_fps:.1f} frames/s"
        self._report("ready", text)

    def _on_iteration(self, payload: dict) -> None:
        now = time.monotonic()
        if now - self._last_status < 0.1:
            return
        self._last_status = now
        self._report(
            "busy",
            f"optimising the drag: segment {payload['segment']}/{payload['num_segments']}, "
            f"iteration {payload['iteration'] + 1}/{payload['num_iterations']}, L_rec {payload['l_rec']:.4f}",
        )


def frames_of(
    session: StreamSession, records: tuple[BlockRecord, ...], drag: int | None = None
) -> list[Frame]:
    """The frames of committed blocks of ``session`` with their positions in the video."""
    first = {b.index: i for i, b in enumerate(session.blocks)}
    out = []
    for record in records:
        before = sum(b.num_frames for b in session.blocks[: first[record.index]])
        out += [Frame(before + k, record.index, f, drag) for k, f in enumerate(record.frames)]
    return out


def describe(error: BaseException) -> str:
    """An error in plain words for the status line."""
    text = str(error) or type(error).__name__
    return text if isinstance(error, ValueError | IndexError) else f"{type(error).__name__}: {text}"
