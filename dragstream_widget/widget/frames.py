"""Frames from the kernel to the browser: encoding, pacing and flow control.

The generator hands whole blocks to a :class:`FramePacer`; its thread plays them to the browser evenly,
one frame per period: the chosen speed's, or the generator's own pace where that is slower (frames
spread over the time a block takes to make, rather than a burst and a hold). At most ``max_in_flight`` frames wait for the browser's acknowledgement; when the
browser falls a whole frame period behind, frames that a newer one has overtaken are dropped (stale)
rather than queued. When nothing new
has come for a moment the latest frame is sent once more, lossless, as a still that also lives in a
trait, so a view opened later shows it. Frames in flight for longer than ``ack_timeout`` seconds
count as lost (a closed tab never acknowledges), so a view that comes back gets frames again.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

# Playback behind a slower generator runs this much slower than it, so a few frames stay queued and a
# block that takes a little longer than the last does not empty the queue (a hold on screen).
PACE_MARGIN = 1.15
LOSSLESS_AREA = 256 * 256  # frames up to this many pixels always travel as PNG (cheap enough)


@dataclass(frozen=True)
class Frame:
    index: int  # position in the video
    block: int
    pixels: np.ndarray  # uint8 [H, W, 3]
    drag: int | None = None  # id of the drag whose effect this frame shows, if any


def encode_frame(pixels: np.ndarray, lossless: bool, quality: int = 90) -> tuple[str, bytes]:
    """``(format, bytes)``: PNG when ``lossless`` or the frame is small, otherwise JPEG."""
    image = Image.fromarray(np.ascontiguousarray(pixels))
    buffer = io.BytesIO()
    if lossless or pixels.shape[0] * pixels.shape[1] <= LOSSLESS_AREA:
        image.save(buffer, format="PNG", compress_level=1)
        return "png", buffer.getvalue()
    image.save(buffer, format="JPEG", quality=quality)
    return "jpeg", buffer.getvalue()


def next_frame_due(due: float, now: float, period: float) -> float:
    """When the frame after one sent at ``now`` (due at ``due``) is due: one period after the due time,
    so frames keep an even beat; after a late send (nothing was queued) the beat restarts from now."""
    return due + period if now - due < period else now + period


SendFrame = Callable[[dict, bytes], None]
ShowStill = Callable[[Frame, bytes], None]


class FramePacer:
    """Plays pushed frames to ``send`` at ``fps`` with flow control; see the module docstring."""

    def __init__(
        self,
        send: SendFrame,
        show_still: ShowStill,
        fps: float = 16.0,
        max_in_flight: int = 2,
        idle_after: float = 0.3,
        ack_timeout: float = 2.0,
    ):
        self._send, self._show_still = send, show_still
        self.fps = fps
        self.max_in_flight, self.idle_after, self.ack_timeout = max_in_flight, idle_after, ack_timeout
        self._queue: deque[Frame] = deque()
        self._changed = threading.Condition()
        self._sent_seq, self._acked_seq, self._last_send = 0, 0, 0.0
        self._latest: Frame | None = None
        self._still_shown: Frame | None = None
        self._last_activity = time.monotonic()
        self.sent = self.dropped = self.acked = 0
        self._ack_times: deque[float] = deque(maxlen=64)
        self._send_times: dict[int, float] = {}  # seq -> when it was sent, until acknowledged
        self.round_trip = 0.0  # seconds from sending a frame to its acknowledgement (moving average)
        self._last_ack_at: float | None = None
        self._first_unacked_send: float | None = None  # the first frame sent since the last acknowledgement
        self.producer_period = 0.0  # seconds per frame the generator delivers at (moving average; 0: unknown)
        self._held = False  # a drag is being drawn: the frame on screen stays, queued frames wait
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="dragstream-frames", daemon=True)
        self._thread.start()

    # ----- producer side ---------------------------------------------------------------------------

    def push(self, frames: list[Frame], made_in: float | None = None) -> None:
        """Queue frames; queued frames of the same blocks are replaced (an edit re-renders its block).
        ``made_in``: the seconds the generator took to make them, where they are new frames of the stream
        (it sets the pace of playback where the generator is slower than the chosen speed)."""
        blocks = {f.block for f in frames}
        with self._changed:
            if made_in is not None and frames:
                pace = made_in / len(frames)
                self.producer_period = (
                    pace if self.producer_period == 0 else 0.6 * self.producer_period + 0.4 * pace
                )
            kept = [f for f in self._queue if f.block not in blocks]
            self._queue = deque(kept + list(frames))
            self._last_activity = time.monotonic()
            self._changed.notify_all()

    def period(self) -> float:
        """Seconds between two frames sent: the chosen speed's period, or the generator's where it is slower
        and frames are not piling up (a replay or a backlog plays at the chosen speed)."""
        chosen = 1.0 / self.fps
        if len(self._queue) > 2 * self.max_in_flight + 3:
            return chosen
        return max(chosen, min(PACE_MARGIN * self.producer_period, 1.0))

    def hold(self) -> None:
        """Keep the frame on screen: queued frames wait until :meth:`release` (or :meth:`clear`)."""
        with self._changed:
            self._held = True
            self._changed.notify_all()

    def release(self) -> None:
        with self._changed:
            self._held = False
            self._changed.notify_all()

    @property
    def held(self) -> bool:
        return self._held

    @property
    def latest_index(self) -> int | None:
        """The position in the video of the frame last sent (the one on screen), if any."""
        latest = self._latest
        return None if latest is None else latest.index

    def clear(self, latest: Frame | None = None) -> None:
        """Drop everything queued and end a hold; ``latest`` becomes the frame on screen (after an undo
        or reset)."""
        with self._changed:
            self._held = False
            self._queue.clear()
            if latest is not None:
                self._latest, self._still_shown = latest, None
            self._last_activity = time.monotonic()
            self._changed.notify_all()

    @property
    def backlog(self) -> int:
        with self._changed:
            return len(self._queue)

    def wait_for_backlog(self, limit: int, timeout: float) -> bool:
        """Block until at most ``limit`` frames are queued (generation pacing); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._queue) <= limit or self._closed, timeout)

    # ----- browser side ----------------------------------------------------------------------------

    def ack(self, seq: int) -> None:
        with self._changed:
            if self._acked_seq < seq <= self._sent_seq:
                self.acked += seq - self._acked_seq
                self._acked_seq = seq
                self._last_ack_at = time.monotonic()
                self._first_unacked_send = None
                sent_at = self._send_times.pop(seq, None)
                self._send_times = {k: v for k, v in self._send_times.items() if k > seq}
                if sent_at is not None:
                    trip = self._last_ack_at - sent_at
                    self.round_trip = trip if self.round_trip == 0 else 0.8 * self.round_trip + 0.2 * trip
                self._ack_times.append(self._last_ack_at)
                self._changed.notify_all()

    def delivered_fps(self) -> float:
        """Frames per second the browser acknowledged, over the recent acknowledgements."""
        with self._changed:
            times = list(self._ack_times)
        if len(times) < 2 or time.monotonic() - times[-1] > 1.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def silent_view_seconds(self) -> float:
        """How long a view that used to acknowledge frames has left the frames sent since unacknowledged
        (a closed tab), counted from the first of them: time with nothing sent (paused) does not count.
        0 when frames are being acknowledged or no view ever acknowledged one."""
        with self._changed:
            if self._last_ack_at is None or self._first_unacked_send is None:
                return 0.0
            return time.monotonic() - self._first_unacked_send

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout=5)

    # ----- the pacing thread -----------------------------------------------------------------------

    def _in_flight(self, now: float) -> int:
        if self._sent_seq > self._acked_seq and now - self._last_send > self.ack_timeout:
            self._acked_seq = self._sent_seq  # never acknowledged: the view is gone
            self._send_times.clear()
        return self._sent_seq - self._acked_seq

    def _next_action(self) -> tuple[str, Frame | None, int]:
        """Wait for the next thing to do: ("send", frame, seq), ("still", frame, 0) or ("stop", None, 0).

        The frame at the head of the queue is due now. While the browser has ``max_in_flight`` frames
        unacknowledged it waits; once it is a whole frame period late and a newer frame is queued, it
        is stale and dropped.
        """
        due = time.monotonic()
        with self._changed:
            while not self._closed:
                now, period = time.monotonic(), self.period()
                playing = bool(self._queue) and not self._held
                if playing and now >= due:
                    if self._in_flight(now) < self.max_in_flight:
                        frame = self._queue.popleft()
                        self._latest, self._still_shown, self._last_activity = frame, None, now
                        self._sent_seq += 1
                        self._last_send = now
                        if self._first_unacked_send is None:
                            self._first_unacked_send = now
                        self._send_times[self._sent_seq] = now
                        return "send", frame, self._sent_seq
                    if len(self._queue) > 1 and now - due >= period:
                        self._latest, self._still_shown = self._queue.popleft(), None
                        self.dropped += 1
                        due += period
                        continue
                    self._changed.wait(max(due + period - now, 0.001))
                    continue
                idle = now - self._last_activity
                if not playing and self._latest is not None and self._still_shown is not self._latest:
                    if idle >= self.idle_after:
                        self._still_shown = self._latest
                        return "still", self._latest, 0
                    self._changed.wait(self.idle_after - idle)
                    continue
                self._changed.wait(max(due - now, 0.0) if playing else None)
        return "stop", None, 0

    def _run(self) -> None:
        next_due = time.monotonic()
        while True:
            self._sleep_until(next_due)
            action, frame, seq = self._next_action()
            if action == "stop":
                return
            if action == "still":
                _, data = encode_frame(frame.pixels, lossless=True)
                self._show_still(frame, data)
                continue
            fmt, data = encode_frame(frame.pixels, lossless=False)
            meta = {"type": "frame", "seq": seq, "index": frame.index, "block": frame.block, "format": fmt}
            meta["drag"] = frame.drag
            self._send(meta, data)
            self.sent += 1
            next_due = next_frame_due(next_due, time.monotonic(), self.period())

    def _sleep_until(self, moment: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._closed, max(moment - time.monotonic(), 0.0))
