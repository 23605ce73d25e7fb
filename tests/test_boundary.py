"""The boundary: whatever a browser, a file or a caller sends ends in a clear error or a valid result,
within a memory bound tied to the frame size, and the session still steps with its history unchanged.

Property-based (hypothesis) over messages, trait values, instructions, case files, session files and
label folders, with a test per defect found by fuzzing (each failed before these checks)."""

import json
import os
import time
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import traitlets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dragstream_widget.__main__ import main
from dragstream_widget.bench.quality.cases import InvalidCase, load_cases
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.engine.session_file import SessionFileError, read_document
from dragstream_widget.labels import import_labels
from dragstream_widget.models.random_model import TINY, random_backend
from dragstream_widget.ops import DragInstruction, InvalidInstruction, decode_mask, encode_mask
from dragstream_widget.widget import DragStreamWidget
from dragstream_widget.widget.protocol import Apply, ProtocolError, parse_message

SIZE = (TINY.latent_height * TINY.vae_stride, TINY.latent_width * TINY.vae_stride)  # 32 x 32
FRAME_BYTES = SIZE[0] * SIZE[1] * 3
MEMORY_BOUND = 64 * FRAME_BYTES + 2**20  # a message may cost a few frames' worth, never more
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def valid_instruction(mode="edit", targets=((16.0, 12.0),)) -> dict:
    mask = np.zeros(SIZE, bool)
    mask[8:16, 8:16] = True
    region = {
        "operation": "translate",
        "handle": [12.0, 12.0],
        "targets": [list(t) for t in targets],
        "center": None,
        "mask": encode_mask(mask),
    }
    return {
        "format": "dragstream-instruction/1",
        "mode": mode,
        "frame_size": list(SIZE),
        "frame_index": None,
        "frozen_mask": None,
        "regions": [region],
    }


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([10**400, -(10**400), 2**64, 50000, 100000])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
FIELDS = ["type", "seq", "name", "id", "instruction"]
INSTRUCTION_PATHS = [
    ("mode",),
    ("frame_size",),
    ("frame_index",),
    ("frozen_mask",),
    ("regions",),
    ("regions", 0, "mask"),
    ("regions", 0, "mask", "size"),
    ("regions", 0, "mask", "counts"),
    ("regions", 0, "handle"),
    ("regions", 0, "targets"),
    ("regions", 0, "center"),
    ("regions", 0, "operation"),
]


def mutated(document: dict, path: tuple, value) -> dict:
    document = json.loads(json.dumps(document))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


def within_memory(call):
    """``call()``'s result or exception, and its peak of traced memory."""
    tracemalloc.start()
    try:
        try:
            outcome = call()
        except Exception as error:  # the outcome under test
            outcome = error
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ----- messages ----------------------------------------------------------------------------------


@FUZZ
@given(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)
    | json_values
    | st.builds(lambda v: {"type": v}, json_values)
)
def test_arbitrary_messages_end_in_a_message_or_a_clear_error(content):
    outcome, peak = within_memory(lambda: parse_message(content, SIZE))
    assert isinstance(outcome, ProtocolError | Apply) or type(outcome).__module__.endswith("protocol")
    if isinstance(outcome, ProtocolError):
        assert 0 < len(str(outcome)) < 600
    assert peak < MEMORY_BOUND


@FUZZ
@given(st.sampled_from(INSTRUCTION_PATHS), json_values)
def test_mutated_drags_end_in_a_drag_or_a_clear_error_within_memory(path, value):
    content = {"type": "apply", "id": 1, "instruction": mutated(valid_instruction(), path, value)}
    outcome, peak = within_memory(lambda: parse_message(content, SIZE))
    assert isinstance(outcome, Apply | ProtocolError), repr(outcome)
    if isinstance(outcome, ProtocolError):
        assert len(str(outcome)) < 600
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize("side", [50000, 100000])
def test_a_huge_mask_size_is_refused_before_anything_is_allocated(side):
    """Defect 1: a 325-byte message made the kernel allocate 2.38 GB before refusing it."""
    instruction = mutated(
        valid_instruction(), ("regions", 0, "mask"), {"size": [side, side], "counts": [side]}
    )
    started = time.perf_counter()
    outcome, peak = within_memory(
        lambda: parse_message({"type": "apply", "id": 1, "instruction": instruction})
    )
    assert isinstance(outcome, ProtocolError) and "too large" in str(outcome)
    assert peak < 2**20 and time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("regions", 0, "mask", "counts"), [2**64], "counts"),
        (("regions", 0, "handle"), [10**400, 3], "handle"),
        (("regions", 0, "targets"), [[1, 10**400]], "target 0"),
    ],
)
def test_overflowing_numbers_are_clear_errors(path, value, field):
    """Defect 1: run-length counts of 2**64 and coordinates of 10**400 raised OverflowError."""
    with pytest.raises(InvalidInstruction, match=field):
        DragInstruction.from_json(mutated(valid_instruction(), path, value))


@pytest.mark.parametrize("kind", [[], {}, None, 3])
def test_an_unhashable_message_type_is_a_clear_error(kind):
    """Defect 6: {"type": []} raised TypeError: unhashable type."""
    with pytest.raises(ProtocolError, match="type: unknown message type"):
        parse_message({"type": kind})


def test_errors_cut_the_input_short():
    """Defect 6: a 10**6-element frame_size came back whole in a 7.9 MB status string."""
    instruction = mutated(valid_instruction(), ("frame_size",), list(range(10**6)))
    with pytest.raises(ProtocolError) as refused:
        parse_message({"type": "apply", "id": 1, "instruction": instruction})
    assert "frame_size" in str(refused.value) and len(str(refused.value)) < 300


def test_a_mask_is_checked_against_the_frame_before_it_is_decoded():
    with pytest.raises(InvalidInstruction, match="mask is 64x64 but the frame is 32x32"):
        decode_mask(encode_mask(np.zeros((64, 64), bool)), "mask", SIZE)


# ----- the widget: messages, trait values, instructions --------------------------------------------


@pytest.fixture(scope="module")
def widget():
    widget = DragStreamWidget(random_backend(TINY, seed=0), "a test prompt", seed=1, speed=120.0)
    widget.step(2).result(60)
    yield widget
    widget.close()


def fingerprint(widget) -> tuple:
    session = widget.session
    return (
        session.num_blocks,
        len(session._history._done),
        session.prompt,
        session.seed,
        session.frames().tobytes(),
    )


def deliver(widget, content) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def update(widget, state) -> None:
    widget._handle_msg(
        {"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []}
    )


TRAITS = ["speed", "seed", "prompt", "animation_frames", "display_width", "adsr", "compare"]
TRAITS += ["frame_size", "frame_index", "status", "playing"]


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(TRAITS), json_values, min_size=1, max_size=2))
def test_arbitrary_trait_values_from_the_browser_are_taken_or_refused_in_words(widget, state):
    widget.wait(30)
    before, config = fingerprint(widget), widget.session.config
    update(widget, state)
    widget.wait(30)
    assert len(widget.status) < 400
    assert fingerprint(widget) == before  # no trait starts anything on its own
    assert 0.5 <= widget.speed <= 120 and 0 <= widget.seed <= 2**32 - 1 and widget.prompt.strip()
    widget.adsr = widget.sfs = widget.css = True
    widget.wait(30)
    assert widget.session.config == replace(config, adsr=True, sfs=True, css=True)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(INSTRUCTION_PATHS[1:]) | st.just(("frame_index",)),
    json_values | st.integers(min_value=0, max_value=8),
)
def test_arbitrary_drags_from_the_browser_leave_a_refused_session_as_it_was(widget, path, value):
    widget.wait(30)
    before = fingerprint(widget)
    sent = []
    widget._send_message = lambda content, buffers=None: sent.append(content)
    try:
        instruction = mutated(valid_instruction(), path, value)
        deliver(widget, {"type": "apply", "id": 5, "instruction": instruction})
        widget.wait(60)
    finally:
        del widget._send_message
    replies = [m for m in sent if m.get("type") == "applied"]
    assert len(replies) == 1 and len(widget.status) < 400
    if not replies[0]["ok"]:
        assert fingerprint(widget) == before and widget.state == "error"
    else:  # a valid drag (another target or frame): one action, undone exactly
        widget.undo().result(60)
        assert fingerprint(widget) == before


def test_the_widget_still_steps_after_the_fuzzing(widget):
    blocks = widget.session.num_blocks
    widget.step(1).result(60)
    assert widget.session.num_blocks == blocks + 1 and widget.state == "ready", widget.status


def test_the_widget_saves_its_session_for_replay(widget, tmp_path):
    path = widget.save(tmp_path / "widget.json")
    replayed = StreamSession.load(path, random_backend(TINY, seed=0))
    assert np.array_equal(replayed.frames(), widget.session.frames())


def test_the_seed_field_takes_only_the_sessions_range(widget):
    """Defect 5: the seed field took seeds above 6e17, which broke every drag."""
    with pytest.raises(traitlets.TraitError, match="seed must be an integer from 0 to 4294967295"):
        widget.seed = 2**60
    with pytest.raises(traitlets.TraitError, match="prompt is empty"):
        widget.prompt = "  "


@pytest.mark.parametrize("how", ["stop", "pause"])
def test_stop_and_pause_end_an_animation_started_on_a_paused_stream(how):
    """Defect 4: a long animation went on for 4 blocks after Stop and 3 after Pause."""
    widget = DragStreamWidget(random_backend(TINY, seed=0), "a test prompt", seed=1, speed=120.0)
    try:
        widget.step(1).result(60)
        targets = [(12.0 + (k % 8) * 0.5, 12.0) for k in range(200)]  # 100 blocks
        instruction = DragInstruction.from_json(valid_instruction("animate", targets))
        widget.apply(instruction).result(60)
        deadline = time.monotonic() + 60
        while widget.session.num_blocks < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        deliver(widget, {"type": "control", "name": how})
        widget.wait(60)
        time.sleep(0.3)
        widget.wait(60)
        stopped_at = widget.session.num_blocks
        time.sleep(1.0)
        assert widget.session.num_blocks <= stopped_at + 1  # at most the block under way
        assert widget.session.num_blocks < 20
    finally:
        widget.close()


# ----- files: case files, session files, label folders -------------------------------------------


@settings(max_examples=40, deadline=None)
@given(json_values)
def test_arbitrary_case_files_end_in_cases_or_a_clear_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cases") / "cases.json"
    path.write_text(json.dumps(data))
    try:
        load_cases(path)
    except (InvalidCase, InvalidInstruction) as error:
        assert len(str(error)) < 2000


@settings(max_examples=40, deadline=None)
@given(
    json_values
    | st.builds(lambda v: {"format": "dragstream-session/1", "model": {}, "actions": v}, json_values)
)
def test_arbitrary_session_files_end_in_a_session_or_a_clear_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("sessions") / "session.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SessionFileError):
        read_document(path)
        StreamSession.load(path, random_backend(TINY, seed=0))


def write_png(path, size=SIZE, box=(8, 8, 16, 16)):
    mask = np.zeros(size, np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    Image.fromarray(mask).save(path)


def label_folder(folder, movable="movable.png", mask="mask.png", points=None, **changes):
    folder.mkdir(parents=True, exist_ok=True)
    write_png(folder / "movable.png", box=(0, 0, SIZE[1], SIZE[0]))
    write_png(folder / "mask.png")
    data = {
        "prompt": "a red circle",
        "drag_or_animation_select": "Drag",
        "movable_area_mask_file": movable,
        "trajectories": [
            {
                "original_trajectory": {"is_rotation": False, "points": points or [[12, 12], [16, 12]]},
                "mask_file": mask,
            }
        ],
        **changes,
    }
    (folder / "block_0_Drag_trajectory.json").write_text(json.dumps(data))
    return folder


NAMES = st.sampled_from(
    ["mask.png", "../mask.png", "/etc/passwd", "sub/../../x.png", "", "C:\\x.png", "link.png", "fifo.png"]
)


@settings(max_examples=40, deadline=None)
@given(NAMES, NAMES, json_values)
def test_arbitrary_label_folders_end_in_a_drag_or_a_clear_error(tmp_path_factory, movable, mask, points):
    folder = label_folder(tmp_path_factory.mktemp("labels") / "case", movable, mask)
    os.symlink("/etc/passwd", folder / "link.png")
    os.mkfifo(folder / "fifo.png")
    data = json.loads((folder / "block_0_Drag_trajectory.json").read_text())
    data["trajectories"][0]["original_trajectory"]["points"] = points
    (folder / "block_0_Drag_trajectory.json").write_text(json.dumps(data))
    try:
        drag = import_labels(folder)
    except InvalidInstruction as error:
        assert "block_0_Drag_trajectory.json" in str(error) or "fifo" in str(error) or "link" in str(error)
        assert len(str(error)) < 400
    else:
        assert (movable, mask) == ("mask.png", "mask.png") or "mask.png" in (movable, mask)
        assert drag.instruction.frame_size == SIZE


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../outside.png", "leads out of the label folder"),
        ("/etc/passwd", "absolute path"),
        ("link.png", "through a link"),
        ("fifo.png", "not a regular file"),
    ],
)
def test_labels_cannot_leave_their_folder_or_hang(tmp_path, name, expected):
    """Defect 2: labels opened /etc/passwd through ../, absolute paths and links; a FIFO hung."""
    write_png(tmp_path / "outside.png")
    folder = label_folder(tmp_path / "labels", mask=name)
    os.symlink(tmp_path / "outside.png", folder / "link.png")
    os.mkfifo(folder / "fifo.png")
    with pytest.raises(InvalidInstruction, match=expected):
        import_labels(folder)


def test_a_huge_label_image_is_refused_from_its_header(tmp_path):
    """Defect 2: a 12000x12000 PNG peaked at 900 MB and was accepted."""
    folder = label_folder(tmp_path / "labels")
    Image.new("L", (12000, 12000)).save(folder / "mask.png")
    outcome, peak = within_memory(lambda: import_labels(folder))
    assert isinstance(outcome, InvalidInstruction) and "mask.png: size 12000x12000 is too large" in str(
        outcome
    )
    assert peak < 8 * 2**20


def test_the_labels_command_fails_in_one_line_with_status_2(tmp_path, capsys):
    """Defect 2: the command printed a Python traceback for every failure."""
    folder = label_folder(tmp_path / "labels", mask="fifo.png")
    os.mkfifo(folder / "fifo.png")
    with pytest.raises(SystemExit) as stop:
        main(["labels", "import", str(folder), "--out", str(tmp_path / "o")])
    error = capsys.readouterr().err
    assert stop.value.code == 2
    assert error.count("\n") == 1 and "trajectories[0].mask_file" in error and "fifo.png" in error
