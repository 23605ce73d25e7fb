"""The widget's kernel side: message protocol, every bad browser event, controller and frame flow."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import traitlets
from PIL import Image

from dragstream_widget import DragStreamWidget
from dragstream_widget.diagnostics.spectrum import frequency_contribution
from dragstream_widget.engine.presets import drag_config_of
from dragstream_widget.ops import DragInstruction, InvalidInstruction, encode_mask
from dragstream_widget.widget.frames import PACE_MARGIN, Frame, FramePacer, encode_frame
from dragstream_widget.widget.protocol import Ack, Apply, Control, Drawing, ProtocolError, parse_message

SIZE = (32, 32)  # the tiny random model's frames (height, width)


def square_mask(size=SIZE, box=(10, 10, 16, 16)) -> np.ndarray:
    mask = np.zeros(size, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def instruction_json(mode="edit", targets=((16.0, 12.0),), frame_index=None, **region_changes) -> dict:
    region = {
        "operation": "translate",
        "handle": [12.5, 12.5],
        "targets": [list(t) for t in targets],
        "center": None,
        "mask": encode_mask(square_mask()),
    }
    region.update(region_changes)
    return {
        "format": "dragstream-instruction/1",
        "mode": mode,
        "frame_size": list(SIZE),
        "frame_index": frame_index,  # None: the frame on screen
        "frozen_mask": None,
        "regions": [region],
    }


def browser_message(widget: DragStreamWidget, content) -> None:
    """Deliver ``content`` the way the comm does when the front end calls ``model.send``."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def browser_update(widget: DragStreamWidget, state: dict) -> None:
    """Deliver trait values the way the comm does when the front end calls ``model.save_changes``."""
    widget._handle_msg(
        {"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []}
    )


# ----- protocol -------------------------------------------------------------------------------------


def test_parse_good_messages():
    assert parse_message({"type": "ack", "seq": 7}) == Ack(7)
    assert parse_message({"type": "control", "name": "play"}) == Control("play")
    assert parse_message({"type": "drawing"}) == Drawing()
    message = parse_message({"type": "apply", "id": 5, "instruction": instruction_json()})
    assert isinstance(message, Apply) and message.id == 5
    region = message.instruction.regions[0]
    assert region.handle == (12.5, 12.5) and region.targets == ((16.0, 12.0),)
    np.testing.assert_array_equal(region.mask, square_mask())


BAD_MESSAGES = [
    ("not an object", ["ack", 1], "must be a JSON object"),
    ("unknown type", {"type": "drag"}, "unknown message type 'drag'"),
    ("unknown field", {"type": "ack", "seq": 1, "extra": 2}, "unknown field(s) extra"),
    ("missing field", {"type": "control"}, "missing field(s) name"),
    ("drawing with a field", {"type": "drawing", "id": 3}, "drawing message: unknown field(s) id"),
    ("negative seq", {"type": "ack", "seq": -1}, "non-negative integer"),
    ("boolean seq", {"type": "ack", "seq": True}, "non-negative integer"),
    ("unknown control", {"type": "control", "name": "explode"}, "unknown control 'explode'"),
    ("string id", {"type": "apply", "id": "x", "instruction": instruction_json()}, "drag id"),
    ("instruction not an object", {"type": "apply", "id": 1, "instruction": "drag"}, "must be a JSON object"),
    (
        "unknown instruction field",
        {"type": "apply", "id": 1, "instruction": {**instruction_json(), "speed": 3}},
        "unknown field(s) speed",
    ),
    (
        "target off the frame",
        {"type": "apply", "id": 1, "instruction": instruction_json(targets=((40.0, 12.0),))},
        "lies outside the 32x32 frame",
    ),
    (
        "handle off the frame",
        {"type": "apply", "id": 1, "instruction": instruction_json(handle=[-3, 5])},
        "lies outside the 32x32 frame",
    ),
    (
        "empty mask",
        {"type": "apply", "id": 1, "instruction": instruction_json(mask=encode_mask(np.zeros(SIZE, bool)))},
        "handle mask is empty",
    ),
    (
        "mask of the wrong size",
        {"type": "apply", "id": 1, "instruction": instruction_json(mask=encode_mask(np.ones((8, 8), bool)))},
        "handle mask is 8x8 but the frame is 32x32",
    ),
    (
        "mask counts wrong",
        {
            "type": "apply",
            "id": 1,
            "instruction": instruction_json(mask={"size": [32, 32], "counts": [5, 3]}),
        },
        "counts add up to 8 pixels",
    ),
    (
        "NaN point",
        {"type": "apply", "id": 1, "instruction": instruction_json(targets=((float("nan"), 3.0),))},
        "not a finite number",
    ),
    (
        "point not two numbers",
        {"type": "apply", "id": 1, "instruction": instruction_json(targets=(("a", "b"),))},
        "must be two numbers",
    ),
    (
        "unknown operation",
        {"type": "apply", "id": 1, "instruction": instruction_json(operation="shear")},
        "unknown operation 'shear'",
    ),
    (
        "edit with two targets",
        {"type": "apply", "id": 1, "instruction": instruction_json(targets=((14, 12), (16, 12)))},
        "exactly one target",
    ),
]


@pytest.mark.parametrize(
    "content, expected", [(c, e) for _, c, e in BAD_MESSAGES], ids=[n for n, _, _ in BAD_MESSAGES]
)
def test_parse_rejects_bad_messages_in_plain_words(content, expected):
    with pytest.raises(ProtocolError, match=re.escape(expected)):
        parse_message(content)


# ----- the widget with a tiny random model -----------------------------------------------------------


@pytest.fixture
def widget(tiny_backend):
    widget = DragStreamWidget(tiny_backend, "a test prompt", seed=1, speed=120.0)
    widget.step(2).result(30)
    yield widget
    widget.close()


def session_fingerprint(widget: DragStreamWidget) -> tuple:
    session = widget.session
    return session.num_blocks, session.frames().tobytes(), session.latents().numpy().tobytes()


@pytest.mark.parametrize(
    "content, expected", [(c, e) for _, c, e in BAD_MESSAGES], ids=[n for n, _, _ in BAD_MESSAGES]
)
def test_bad_browser_events_show_an_error_and_leave_the_session_unharmed(widget, content, expected):
    before = session_fingerprint(widget)
    browser_message(widget, content)
    widget.wait(10)
    assert widget.state == "error"
    assert expected in widget.status
    assert widget.received == []
    assert session_fingerprint(widget) == before
    # and the widget still works
    browser_message(widget, {"type": "apply", "id": 9, "instruction": instruction_json()})
    widget.wait(30)
    assert widget.state == "ready", widget.status
    assert len(widget.received) == 1 and widget.session.blocks[-1].instruction is not None


def test_a_drag_drawn_on_another_frame_size_is_refused_by_the_session(widget):
    before = session_fingerprint(widget)
    drawn = {
        **instruction_json(),
        "frame_size": [64, 64],
        "regions": [{**instruction_json()["regions"][0], "mask": encode_mask(square_mask((64, 64)))}],
    }
    sent = []
    widget._send_message = lambda content, buffers=None: sent.append(content)
    browser_message(widget, {"type": "apply", "id": 3, "instruction": drawn})
    widget.wait(10)
    assert widget.state == "error"
    assert "drawn on a 64x64 frame, but the model makes 32x32 frames" in widget.status
    assert session_fingerprint(widget) == before
    assert [m for m in sent if m["type"] == "applied"] == [
        {"type": "applied", "id": 3, "ok": False, "error": widget.status}
    ]


def test_a_drag_from_the_browser_is_applied_exactly_as_sent(widget):
    sent = instruction_json(mode="animate", targets=((13.0, 12.5), (14.0, 12.5), (15.25, 13.0)))
    browser_message(widget, {"type": "apply", "id": 4, "instruction": sent})
    widget.wait(30)
    (received,) = widget.received
    assert received.to_json() == sent
    # paused, so the animation plays by itself until its three targets are used: two blocks of two frames
    widget.step(1).result(30)
    animated = [b.index for b in widget.session.blocks if b.instruction is received]
    assert animated == [2, 3] and widget.session.blocks[-1].instruction is None


def test_an_edit_that_cannot_run_reports_why_and_keeps_the_session(tiny_backend):
    widget = DragStreamWidget(tiny_backend, "empty stream", seed=0, speed=120.0)
    try:
        browser_message(widget, {"type": "apply", "id": 1, "instruction": instruction_json()})
        widget.wait(10)
        assert widget.state == "error" and "generate a block first" in widget.status
        assert widget.session.num_blocks == 0
        widget.step(1).result(30)
        assert widget.session.num_blocks == 1
    finally:
        widget.close()


def test_controls_from_the_browser(widget):
    browser_message(widget, {"type": "control", "name": "step"})
    widget.wait(10)
    deadline = time.monotonic() + 30
    while widget.session.num_blocks < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert widget.session.num_blocks == 3
    browser_message(widget, {"type": "control", "name": "undo"})  # blocks alone are no one's action
    widget.wait(10)
    assert widget.session.num_blocks == 3 and "nothing to undo" in widget.status
    browser_message(widget, {"type": "control", "name": "play"})
    widget.wait(10)
    assert widget.playing
    while widget.session.num_blocks < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    browser_message(widget, {"type": "control", "name": "pause"})
    widget.wait(10)
    assert not widget.playing and widget.session.num_blocks >= 5
    blocks = widget.session.num_blocks
    widget.seed = 7
    browser_message(widget, {"type": "control", "name": "reset"})
    widget.wait(10)
    assert widget.session.num_blocks == 0 and widget.session.seed == 7
    assert wait_until(lambda: widget.frame_index == 0)  # not the old stream's frame under its old number
    browser_message(widget, {"type": "control", "name": "undo"})  # a reset is undone like a drag
    widget.wait(10)
    assert widget.session.num_blocks == blocks and widget.session.seed == 1
    assert "undid the reset" in widget.status
    browser_message(widget, {"type": "control", "name": "redo"})
    widget.wait(10)
    assert widget.session.num_blocks == 0 and widget.session.seed == 7 and "redid the reset" in widget.status


def test_drawing_an_edit_gets_it_ready_while_paused_and_not_while_playing(widget):
    seen = []
    widget.session.events.subscribe("drag", lambda payload: seen.append(payload["reference"]))
    browser_message(widget, {"type": "drawing"})
    widget.wait(10)
    assert widget.state == "ready", widget.status
    browser_message(widget, {"type": "apply", "id": 2, "instruction": instruction_json()})
    widget.wait(30)
    reference = seen[-1]
    assert set(reference.computed) == set(reference.cutoffs) and reference.passes == 1  # prepared
    assert widget._controller.prepare_drag().result(10)  # the edited block on screen, ready again
    widget.play()
    assert not widget._controller.prepare_drag().result(10)  # the frame on screen is about to change
    widget.pause().result(10)


def test_a_drag_sent_mid_generation_lands_at_a_block_boundary(widget):
    widget.play()
    time.sleep(0.2)
    edit = DragInstruction.from_json(instruction_json())
    record = widget.apply(edit).result(30)
    blocks = widget.session.blocks
    widget.pause().result(10)
    assert record.instruction is edit
    # the edit re-rendered the block that was last when it ran; blocks before it are untouched
    edited = [b for b in widget.session.blocks if b.instruction is edit]
    assert len(edited) == 1 and edited[0].index == record.index
    assert blocks[record.index] is record or widget.session.blocks[record.index] is record


def hold_the_worker_after_its_next_first_step(widget: DragStreamWidget):
    """Events ``entered`` (set once the worker has made the first denoising step of its next block and
    waits there) and ``release`` (lets it go on), and the call that unsubscribes the hold."""
    entered, release = threading.Event(), threading.Event()

    def hold_after_the_first_step(payload: dict) -> None:
        if payload["step_index"] == 0 and not entered.is_set():
            entered.set()
            release.wait(10)

    return entered, release, widget.session.events.subscribe("step", hold_after_the_first_step)


def test_an_edit_sent_mid_block_abandons_it_and_edits_the_frame_on_screen(widget):
    on_screen = widget.session.blocks[-1].index
    entered, release, unsubscribe = hold_the_worker_after_its_next_first_step(widget)
    steps = widget.step(1)  # the worker starts the next block and is held after its first step
    assert entered.wait(10)
    edit = DragInstruction.from_json(instruction_json())
    applied = widget.apply(edit)
    release.set()
    record = applied.result(30)
    unsubscribe()
    steps.result(30)
    # The edit re-rendered the block on screen, not the one that was under way, which came after it.
    assert record.index == on_screen and record.instruction is edit
    blocks = widget.session.blocks
    assert blocks[on_screen] is record and blocks[-1].index == on_screen + 1
    assert blocks[-1].instruction is None


def test_stop_abandons_the_plain_block_under_way(widget):
    blocks_before = widget.session.num_blocks
    entered, release, unsubscribe = hold_the_worker_after_its_next_first_step(widget)
    widget.play()
    assert entered.wait(10)
    browser_message(widget, {"type": "control", "name": "stop"})
    release.set()
    widget.wait(10)
    unsubscribe()
    assert not widget.playing and widget.status == "stopped"
    assert widget.session.num_blocks == blocks_before  # nothing of the block under way was committed
    widget.step(1).result(30)  # the stream goes on from where it stood
    assert widget.session.num_blocks == blocks_before + 1


def test_ablation_switches_reach_the_session(widget):
    widget.adsr = False
    widget.css = False
    widget.wait(10)
    config = widget.session.config
    assert (config.adsr, config.sfs, config.css) == (False, True, False)
    widget.reset().result(30)
    assert not widget.session.config.adsr  # kept across a reset


@pytest.mark.parametrize("switch", ["adsr", "sfs", "css"])
def test_a_switch_turns_its_component_off_and_back_on(widget, tiny_backend, switch):
    base = drag_config_of(tiny_backend)
    assert widget.session.config == widget.config == base
    setattr(widget, switch, False)
    widget.wait(10)
    assert widget.session.config == widget.config == base.without(switch)
    setattr(widget, switch, True)
    widget.wait(10)
    assert widget.session.config == base


def test_switches_from_the_browser_map_onto_the_config(widget, tiny_backend):
    base = drag_config_of(tiny_backend)
    browser_update(widget, {"sfs": False, "css": False})
    widget.wait(10)
    assert widget.session.config == base.without("sfso")
    assert (widget.adsr, widget.sfs, widget.css) == (True, False, False)


def test_switches_start_from_the_config_the_widget_was_given(tiny_backend):
    base = replace(drag_config_of(tiny_backend), iterations=2).without("css")
    widget = DragStreamWidget(tiny_backend, "switched", config=base)
    try:
        assert (widget.adsr, widget.sfs, widget.css) == (True, True, False)
        assert widget.session.config == base
        widget.css = True
        widget.wait(10)
        assert widget.session.config == replace(base, css=True)
    finally:
        widget.close()


INVALID_TRAITS = [
    ("speed", 500.0, "speed must be between 0.5 and 120 frames per second, got 500.0"),
    ("speed", float("nan"), "speed must be between 0.5 and 120 frames per second, got nan"),
    ("seed", -3, "seed must be an integer from 0 to 4294967295, got -3"),
    ("seed", 2**63 - 1, "seed must be an integer from 0 to 4294967295, got 9223372036854775807"),
    ("animation_frames", 0, "animation_frames must be an integer >= 1, got 0"),
    ("display_width", -10, "display_width must be at least 1 pixel, got -10"),
    ("seed", "seven", "The 'seed' trait of a DragStreamWidget instance expected an int"),
]


@pytest.mark.parametrize(
    "name, value, expected", INVALID_TRAITS, ids=[f"{n}={v!r}" for n, v, _ in INVALID_TRAITS]
)
def test_an_invalid_trait_value_is_refused_naming_the_field(widget, name, value, expected):
    kept = getattr(widget, name)
    with pytest.raises(traitlets.TraitError, match=re.escape(expected)):
        setattr(widget, name, value)
    assert getattr(widget, name) == kept


@pytest.mark.parametrize(
    "name, value, expected", INVALID_TRAITS, ids=[f"{n}={v!r}" for n, v, _ in INVALID_TRAITS]
)
def test_an_invalid_trait_value_from_the_browser_shows_in_the_status_and_is_sent_back(
    widget, name, value, expected
):
    kept, fps, config = getattr(widget, name), widget._pacer.fps, widget.session.config
    resent = []
    widget.send_state = resent.append
    browser_update(widget, {"css": False, name: value})  # one bad value refuses the whole update
    widget.wait(10)
    assert widget.state == "error" and expected in widget.status
    assert getattr(widget, name) == kept and widget._pacer.fps == fps
    assert widget.css and widget.session.config == config
    assert [keys for keys in resent if keys] == [["css", name]]  # the kept values
    widget.step(1).result(30)  # and the widget still works
    assert widget.state == "ready", widget.status


def test_an_invalid_widget_cannot_be_made(tiny_backend):
    with pytest.raises(traitlets.TraitError, match="speed must be between"):
        DragStreamWidget(tiny_backend, "too fast", speed=0.0)


def test_a_drag_from_python_is_checked_by_the_session(widget):
    before = session_fingerprint(widget)
    outside = DragInstruction.from_json(instruction_json(targets=((16.0, 12.0),)))
    outside = replace(outside, regions=(replace(outside.regions[0], targets=((40.0, 12.0),)),))
    with pytest.raises(InvalidInstruction, match="lies outside the 32x32 frame"):
        widget.apply(outside).result(30)
    assert widget.state == "error" and "lies outside the 32x32 frame" in widget.status
    assert session_fingerprint(widget) == before


def test_close_while_playing_returns_promptly(tiny_backend):
    widget = DragStreamWidget(tiny_backend, "closing", seed=0, speed=120.0)
    widget.play()
    time.sleep(0.3)
    started = time.monotonic()
    widget.close()
    assert time.monotonic() - started < 5
    with pytest.raises(RuntimeError, match="closed"):
        widget.step(1).result(5)


def test_the_latest_frame_is_kept_lossless_in_a_trait(widget):
    deadline = time.monotonic() + 10
    while widget.frame_index != widget.session.frames().shape[0] - 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    still = np.asarray(Image.open(io.BytesIO(widget.frame)))
    np.testing.assert_array_equal(still, widget.session.frames()[-1])


# ----- frame pacing and flow control ----------------------------------------------------------------


class Browser:
    """Collects what the pacer sends; acknowledges only when told to."""

    def __init__(self):
        self.sent: list[dict] = []
        self.stills: list[Frame] = []

    def send(self, meta: dict, data: bytes) -> None:
        self.sent.append(meta)

    def show_still(self, frame: Frame, data: bytes) -> None:
        self.stills.append(frame)


def frames(block: int, count: int = 3, start: int = 0) -> list[Frame]:
    return [Frame(start + k, block, np.full((4, 4, 3), start + k, np.uint8)) for k in range(count)]


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_pacer_keeps_at_most_two_frames_in_flight_and_drops_stale_ones():
    browser = Browser()
    pacer = FramePacer(browser.send, browser.show_still, fps=200, ack_timeout=60)
    try:
        pacer.push(frames(0, 6))
        assert wait_until(lambda: pacer.backlog == 1)
        time.sleep(0.05)
        assert [m["seq"] for m in browser.sent] == [1, 2]  # nothing acknowledged: two in flight
        assert pacer.dropped == 3  # overtaken by newer frames; the newest waits for the browser
        pacer.ack(2)
        assert wait_until(lambda: len(browser.sent) == 3)
        assert browser.sent[2]["index"] == 5
        pacer.ack(3)
        pacer.push(frames(1, 2, start=6))
        assert wait_until(lambda: len(browser.sent) == 5)
        assert [m["index"] for m in browser.sent][3:] == [6, 7]
        assert pacer.dropped == 3
        assert wait_until(lambda: browser.stills and browser.stills[-1].index == 7)  # the latest, when idle
    finally:
        pacer.close()


def test_pacer_replaces_queued_frames_of_a_re_rendered_block():
    browser = Browser()
    pacer = FramePacer(browser.send, browser.show_still, fps=5)
    try:
        pacer.push(frames(0, 3) + frames(1, 3, start=3))
        edited = [Frame(f.index, f.block, f.pixels, drag=11) for f in frames(1, 3, start=3)]
        pacer.push(edited)
        for seq in range(1, 7):
            assert wait_until(lambda s=seq: len(browser.sent) >= s, 3)
            pacer.ack(seq)
        assert [(m["index"], m["drag"]) for m in browser.sent] == [
            (0, None),
            (1, None),
            (2, None),
            (3, 11),
            (4, 11),
            (5, 11),
        ]
    finally:
        pacer.close()


def test_frames_in_flight_too_long_count_as_lost():
    browser = Browser()
    pacer = FramePacer(browser.send, browser.show_still, fps=100, ack_timeout=0.2)
    try:
        pacer.push(frames(0, 2))
        assert wait_until(lambda: len(browser.sent) == 2)
        time.sleep(0.3)  # the view went away without acknowledging
        pacer.push(frames(1, 1, start=2))
        assert wait_until(lambda: len(browser.sent) == 3)
    finally:
        pacer.close()


def test_encoded_frames_decode_to_the_same_pixels_when_lossless():
    pixels = np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    fmt, data = encode_frame(pixels, lossless=True)
    assert fmt == "png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
    big = np.random.default_rng(0).integers(0, 255, (480, 832, 3), dtype=np.uint8)
    fmt, data = encode_frame(big, lossless=False)
    assert fmt == "jpeg" and data[:2] == b"\xff\xd8"


# ----- the built front end ---------------------------------------------------------------------------


def test_the_bundled_front_end_is_built_from_the_current_sources():
    root = Path(__file__).parent.parent
    digest = hashlib.sha256()
    for path in sorted((root / "js" / "src").iterdir(), key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in ("widget.js", "strips.js"):
        bundle = (root / "dragstream_widget" / "widget" / "static" / name).read_text()
        recorded = re.search(r"source sha256 ([0-9a-f]{64})", bundle.splitlines()[0]).group(1)
        assert recorded == digest.hexdigest(), "js/src changed: run `npm run build` in js/"
        assert not re.search(r"""from\s+["']https?://""", bundle), "a bundle must not import from a CDN"
    css = (root / "dragstream_widget" / "widget" / "static" / "widget.css").read_bytes()
    assert css == (root / "js" / "src" / "widget.css").read_bytes()


def test_playing_pauses_when_the_view_that_acknowledged_frames_goes_silent(widget, monkeypatch):
    monkeypatch.setattr("dragstream_widget.widget.controller.VIEW_TIMEOUT", 0.3)
    assert wait_until(lambda: widget._pacer.sent > 0)
    browser_message(widget, {"type": "ack", "seq": widget._pacer.sent})  # a view was there, saw them all
    widget.play().result(10)
    assert wait_until(lambda: not widget.playing, timeout=20)
    assert "no view has shown a frame" in widget.status


def test_live_strips_follow_the_stream(widget):
    strips = widget.live_strips()
    session = widget.session
    widget.step(2).result(30)
    per_block = session.backend.layout.frames_per_block
    stats = strips.latent_stats.series()
    assert len(strips.drift["mean"]) == len(stats["mean"]) == 2 * per_block  # blocks streamed since attaching
    np.testing.assert_allclose(strips.drift["std"], stats["std"], atol=1e-4)
    assert strips.dragged == [] and strips.losses["l_rec"] == []
    widget.apply(DragInstruction.from_json(instruction_json())).result(30)
    assert strips.dragged == list(range(per_block, 2 * per_block))  # the edited block, the last one
    assert len(strips.losses["l_rec"]) == widget.session.config.iterations * max(
        r["segment"] for r in session.blocks[-1].losses
    )
    assert widget.undo().result(10) == "edit"  # the person's last action
    widget.step(1).result(30)
    strips.publish()
    assert len(strips.drift["mean"]) == 3 * per_block and strips.dragged == []
    strips.close()


def test_live_probe_and_maps_show_each_drag(widget):
    strips = widget.live_strips()
    session = widget.session
    instruction = DragInstruction.from_json(instruction_json())
    expected = frequency_contribution(session, square_mask())  # the context the edit is about to see
    widget.apply(instruction).result(30)
    probe = strips.probe
    assert probe["block"] == session.blocks[-1].index and probe["cutoffs"] == list(session.config.cutoffs)
    np.testing.assert_allclose(probe["change"], [expected[c] for c in probe["cutoffs"]], rtol=1e-3, atol=1e-5)
    assert sum(probe["keys"]) == pytest.approx(1, abs=1e-3) and len(probe["band_centers"]) == len(
        probe["keys"]
    )
    maps = strips.maps
    h, w = session.backend.layout.latent_size
    assert (maps["height"], maps["width"]) == (h, w) and len(maps["gradient"]) == len(maps["step"]) == h * w
    gaussian = np.array(maps["gaussian"]).reshape(h, w)
    peak_y, peak_x = np.unravel_index(gaussian.argmax(), gaussian.shape)
    (((hx, hy), (tx, ty)),) = maps["paths"]  # handle, then the one target, in latent cells
    assert (hx, hy) == pytest.approx((12.5 * w / SIZE[1], 12.5 * h / SIZE[0]), abs=0.01)
    assert (tx, ty) == pytest.approx((16.0 * w / SIZE[1], 12.0 * h / SIZE[0]), abs=0.01)
    assert abs(peak_x + 0.5 - tx) <= 1.5 and abs(peak_y + 0.5 - ty) <= 1.5  # the CSS map peaks at the target
    handle = np.array(maps["handle"]).reshape(h, w) >= 128
    assert handle.sum() == pytest.approx(square_mask().sum() * h * w / (SIZE[0] * SIZE[1]), abs=2)
    strips.close()


def test_a_failing_probe_is_reported_and_the_drag_goes_on(widget):
    strips = widget.live_strips()
    malformed = {"block": 7, "instruction": None, "reference": {}, "context": None, "token_grid": (1, 1)}
    widget.events.emit("drag", lambda: malformed)  # what a broken probe would meet
    assert strips.probe["block"] == 7 and "frequency probe failed" in strips.probe["error"]
    record = widget.apply(DragInstruction.from_json(instruction_json())).result(30)
    assert record is not None and "error" not in strips.probe
    strips.close()


def test_replay_plays_back_every_frame_so_far(widget):
    frames = widget.session.frames().shape[0]
    before = widget._pacer.sent + widget._pacer.dropped
    assert widget.replay().result(10) == frames
    assert not widget.playing and "replaying" in widget.status
    assert wait_until(lambda: widget._pacer.sent + widget._pacer.dropped - before == frames, timeout=10)
    browser_message(widget, {"type": "control", "name": "stop"})
    assert widget._pacer.backlog == 0


def test_export_writes_the_stream_as_mp4_and_gif(widget, tmp_path):
    import imageio.v3 as iio

    frames = widget.session.frames()
    video = iio.imread(widget.export(tmp_path / "stream.mp4", scale=2))
    assert video.shape == (len(frames), 2 * SIZE[0], 2 * SIZE[1], 3)
    gif = Image.open(widget.export(tmp_path / "stream.gif"))
    assert gif.n_frames == len(frames)
    with pytest.raises(ValueError, match="writes .mp4 or .gif"):
        widget.export(tmp_path / "stream.avi")


def test_compare_switch_draws_figure_2a_branches_without_changing_the_drag(widget, tiny_backend):
    from dragstream_widget.engine.session import StreamSession

    strips = widget.live_strips()
    widget.step(1).result(30)
    widget.compare = True
    edit = DragInstruction.from_json(instruction_json())
    record = widget.apply(edit).result(60)
    per_block = tiny_backend.layout.frames_per_block
    comparison = strips.comparison
    assert set(comparison["branches"]) == {"no drag", "drag without ADSR"}
    assert comparison["start"] == 0  # the edited block is the first one the strips saw
    assert len(comparison["branches"]["no drag"]["std"]) == 3 * per_block  # edited block + the next two
    # the drag itself is the same as without the comparison
    twin = StreamSession(tiny_backend, "a test prompt", seed=1, config=widget.session.config)
    for _ in range(3):
        twin.step()
    torch.testing.assert_close(twin.edit(edit).z0, record.z0)
    strips.close()


def test_a_stream_that_fails_to_start_says_so_and_every_request_explains(tiny_backend):
    def broken_start(prompt, seed):
        raise ValueError(f"no opening frames for {prompt!r}")

    widget = DragStreamWidget(tiny_backend, "nothing", start_frames=broken_start)
    try:
        assert widget.state == "error" and "no opening frames for 'nothing'" in widget.status
        with pytest.raises(RuntimeError, match="there is no stream yet"):
            widget.step(1).result(10)
        browser_message(widget, {"type": "control", "name": "play"})
        widget.wait(10)
        assert widget.state == "error" and "reset to try again" in widget.status
    finally:
        widget.close()


# ----- the widget in a person's hands ---------------------------------------------------------------


def test_a_long_pause_does_not_count_as_a_silent_view():
    """Time with nothing sent (paused) is not silence: only frames sent and never acknowledged are."""
    browser = Browser()
    pacer = FramePacer(browser.send, browser.show_still, fps=200, ack_timeout=60)
    try:
        pacer.push(frames(0, 1))
        assert wait_until(lambda: len(browser.sent) == 1)
        pacer.ack(1)
        time.sleep(0.4)  # paused: nothing goes out
        assert pacer.silent_view_seconds() == 0.0
        pacer.push(frames(1, 1, start=1))  # play again: a frame goes out, not yet acknowledged
        assert wait_until(lambda: len(browser.sent) == 2)
        assert pacer.silent_view_seconds() < 0.3
        time.sleep(0.2)
        assert pacer.silent_view_seconds() >= 0.2  # now that frame has gone unanswered
    finally:
        pacer.close()


def test_frames_keep_an_even_beat():
    from dragstream_widget.widget.frames import next_frame_due

    assert next_frame_due(10.0, 10.01, 0.1) == pytest.approx(10.1)  # on time: one period later
    assert next_frame_due(10.0, 10.5, 0.1) == pytest.approx(10.6)  # after a gap: from now


def test_playback_follows_the_generator_where_it_is_slower_than_the_chosen_speed():
    browser = Browser()
    pacer = FramePacer(browser.send, browser.show_still, fps=100, ack_timeout=60)
    try:
        pacer.push(frames(0, 3), made_in=0.6)  # 0.2 s a frame
        assert pacer.period() == pytest.approx(0.2 * PACE_MARGIN)
        assert wait_until(lambda: len(browser.sent) == 1)
        sent_at = [time.monotonic()]
        for seq in (1, 2):
            pacer.ack(seq)
            assert wait_until(lambda n=seq: len(browser.sent) == n + 1, timeout=2)
            sent_at.append(time.monotonic())
        gaps = np.diff(sent_at)
        assert np.all(gaps > 0.15), gaps  # spread over the time the block took, not a burst
    finally:
        pacer.close()


def test_drawing_holds_the_frame_and_apply_resumes_playing(widget):
    widget.play().result(10)
    assert wait_until(lambda: widget._pacer.sent > 0, timeout=20)
    browser_message(widget, {"type": "drawing"})
    widget.wait(20)
    assert not widget.playing and widget._pacer.held and "held on frame" in widget.status
    sent = widget._pacer.sent
    time.sleep(0.3)
    assert widget._pacer.sent == sent  # nothing new while the drawing is on
    browser_message(widget, {"type": "apply", "id": 5, "instruction": instruction_json()})
    widget.wait(60)
    assert widget.playing and not widget._pacer.held
    widget.pause().result(10)


def test_play_after_drawing_ends_the_hold(widget):
    browser_message(widget, {"type": "drawing"})
    widget.wait(20)
    assert widget._pacer.held and not widget.playing
    widget.step(1).result(60)
    assert not widget._pacer.held


@pytest.mark.parametrize(
    "prompt, expected",
    [("", "prompt is empty"), ("   ", "prompt is empty")],
)
def test_a_refused_prompt_leaves_the_box_on_the_prompt_in_use(widget, prompt, expected):
    blocks = widget.session.num_blocks
    browser_update(widget, {"prompt": prompt})
    assert widget.prompt == "a test prompt" and widget.state == "error"
    assert expected in widget.status and "still streaming 'a test prompt'" in widget.status
    with pytest.raises(ValueError, match=expected):
        widget.reset(prompt=prompt).result(10)
    assert widget.prompt == "a test prompt" and widget.session.num_blocks == blocks


def test_a_stream_that_fails_to_start_puts_the_prompt_back(tiny_backend):
    def start(prompt, seed):
        if prompt == "broken":
            raise RuntimeError("no frames for this one")
        return None

    widget = DragStreamWidget(tiny_backend, "fine", start_frames=start)
    try:
        with pytest.raises(RuntimeError):
            widget.reset(prompt="broken").result(30)
        assert wait_until(lambda: widget.prompt == "fine")
    finally:
        widget.close()


def test_toy_world_prompts_are_checked_by_its_grammar():
    from dragstream_widget import load_model
    from dragstream_widget.widget.widget import check_backend_prompt

    backend = load_model()
    check_backend_prompt(backend, "a red circle and a blue square on a striped background")
    with pytest.raises(ValueError, match="cannot read"):
        check_backend_prompt(backend, "circle red a and on blue")  # every word known, no sentence
    with pytest.raises(ValueError, match="unknown word 'dog'"):
        check_backend_prompt(backend, "a dog running on a beach")
    with pytest.raises(ValueError, match="empty"):
        check_backend_prompt(backend, "")


def test_the_embedded_model_starts_from_its_worlds_opening_frames():
    from dragstream_widget import load_model

    widget = DragStreamWidget(load_model(), "a red circle and a blue square on a striped background")
    try:
        assert widget.session.blocks[0].given
    finally:
        widget.close()
    free = DragStreamWidget(load_model(), "a red circle on a plain background", start_frames=None)
    try:
        assert free.session.num_blocks == 0
    finally:
        free.close()


def test_a_handle_over_the_whole_frame_is_refused_in_plain_words(widget):
    before = session_fingerprint(widget)
    whole = encode_mask(np.ones(SIZE, bool))
    browser_message(widget, {"type": "apply", "id": 9, "instruction": instruction_json(mask=whole)})
    widget.wait(10)
    assert widget.state == "error" and "covers 100% of the frame" in widget.status
    assert session_fingerprint(widget) == before


@pytest.mark.parametrize("switch, label", [("adsr", "ADSR"), ("sfs", "SFS"), ("css", "CSS")])
def test_each_switch_confirms_in_the_status(widget, switch, label):
    browser_update(widget, {switch: False})
    widget.wait(10)
    assert widget.status.startswith(f"{label} off: drags from now on run without")
    browser_update(widget, {switch: True})
    widget.wait(10)
    assert widget.status.startswith(f"{label} on")


def test_the_status_names_no_generation_rate_once_paused(widget):
    widget.play().result(10)
    assert wait_until(lambda: widget.generation_fps > 0, timeout=30)
    widget.pause().result(10)
    assert "paused" in widget.status and "generating at" not in widget.status


def test_a_click_proposes_a_region_from_the_backends_features(widget):
    for frame in (None, 0, 999):  # the last frame; the first of the video; past the end: the last
        browser_message(widget, {"type": "select", "x": 12.0, "y": 20.0, "frame": frame})
        widget.wait(30)
        assert widget.state == "ready" and widget.status.startswith("selected"), widget.status


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"type": "select", "x": 99.0, "y": 3.0}, "x must be a number in [0, 31]"),
        ({"type": "select", "x": "a", "y": 3.0}, "x must be a number"),
        ({"type": "select", "x": 3.0}, "y must be a number"),
        ({"type": "select", "x": 3.0, "y": 3.0, "z": 1}, "unknown field(s) z"),
        ({"type": "select", "x": 3.0, "y": 3.0, "frame": -2}, "frame must be an integer >= 0"),
    ],
)
def test_a_bad_select_message_is_explained(widget, content, expected):
    before = session_fingerprint(widget)
    browser_message(widget, content)
    assert widget.state == "error" and expected in widget.status
    assert session_fingerprint(widget) == before


def test_the_export_button_writes_video_gif_and_instructions(widget, tmp_path):
    import json

    widget.export_dir = tmp_path / "exports"
    widget.apply(DragInstruction.from_json(instruction_json())).result(60)
    browser_message(widget, {"type": "export"})
    written = sorted(p.suffix for p in (tmp_path / "exports").iterdir())
    assert written == [".gif", ".json", ".mp4"] and widget.status.startswith("exported")
    saved = json.loads(next((tmp_path / "exports").glob("*.json")).read_text())
    assert saved["prompt"] == "a test prompt" and len(saved["drags"]) == 1
    assert saved["drags"][0]["instruction"]["mode"] == "edit"
