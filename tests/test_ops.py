import json
import math
import re

import numpy as np
import pytest

from dragstream_widget.ops import (
    DragInstruction,
    HandleRegion,
    InvalidInstruction,
    Mode,
    Operation,
    decode_mask,
    encode_mask,
)

SIZE = (24, 32)


def mask(x0=4, y0=4, x1=10, y1=10):
    m = np.zeros(SIZE, bool)
    m[y0:y1, x0:x1] = True
    return m


def region(op=Operation.TRANSLATE, handle=(7.0, 7.0), targets=((12.0, 7.0),), center=None, m=None):
    return HandleRegion(mask() if m is None else m, op, handle, tuple(targets), center)


def instruction(*regions, mode=Mode.EDIT, frozen=None, frame_index=None):
    return DragInstruction(mode, SIZE, tuple(regions) or (region(),), frozen, frame_index)


def test_json_round_trip_is_exact():
    frozen = np.zeros(SIZE, bool)
    frozen[20:, :] = True
    frozen[0, 0] = True  # a code that starts with a True run
    original = instruction(
        region(targets=((12.25, 7.5), (13.0, 8.125), (0.1 + 0.2, 1 / 3))),
        region(Operation.ROTATE_2D, (9.0, 5.0), ((5.0, 9.0),), center=(7.0, 7.0), m=mask(2, 2, 12, 12)),
        mode=Mode.ANIMATE,
        frozen=frozen,
        frame_index=np.int64(5),
    ).validate()
    data = original.to_json()
    text = json.dumps(data)
    restored = DragInstruction.from_json(json.loads(text))
    assert json.dumps(restored.to_json()) == text
    assert data["format"] == "dragstream-instruction/1" and data["frame_size"] == [24, 32]
    assert restored.frozen_mask.dtype == bool and np.array_equal(restored.frozen_mask, frozen)
    for a, b in zip(restored.regions, original.regions):
        assert a.mask.dtype == bool and np.array_equal(a.mask, b.mask)
        assert a.targets == b.targets and a.handle == b.handle and a.center == b.center
    assert restored.regions[0].targets[2] == (0.1 + 0.2, 1 / 3)  # floats bit-identical
    assert restored.mode is Mode.ANIMATE and restored.regions[1].operation is Operation.ROTATE_2D
    assert restored.frame_index == 5


def test_mask_codes_start_with_false_runs():
    m = np.array([[True, True, False], [False, True, True]])
    code = encode_mask(m)
    assert code == {"size": [2, 3], "counts": [0, 2, 2, 2]}
    assert np.array_equal(decode_mask(code), m)
    assert encode_mask(np.zeros((2, 2), bool)) == {"size": [2, 2], "counts": [4]}
    assert decode_mask(encode_mask(np.ones((3, 2), bool))).all()


def _raises(make, message):
    with pytest.raises(InvalidInstruction, match=re.escape(message)):
        make().validate()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: instruction(region(targets=((float("nan"), 3.0),))), "region 0: target 0 (nan, 3.0) is not"),
        (
            lambda: instruction(region(handle=(7.0, float("inf")))),
            "region 0: handle (7.0, inf) is not a finite",
        ),
        (lambda: instruction(region(targets=((40.0, 3.0),))), "target 0 (40.0, 3.0) lies outside the 32x24"),
        (lambda: instruction(region(targets=((3.0, -0.5),))), "target 0 (3.0, -0.5) lies outside"),
        (
            lambda: instruction(region(targets=((31.0, 23.0),)), region(handle=(32.0, 7.0))),
            "region 1: handle",
        ),
        (lambda: instruction(region(targets=("ab",))), "region 0: target 0 must be two numbers"),
        (lambda: instruction(region(m=np.zeros(SIZE, bool))), "region 0: handle mask is empty"),
        (
            lambda: instruction(region(m=np.ones((10, 10), bool))),
            "handle mask is 10x10 but the frame is 32x24",
        ),
        (lambda: instruction(region(m=np.ones(24 * 32, bool))), "handle mask is of shape (768,)"),
        (
            lambda: instruction(region(m=np.full(SIZE, 2))),
            "region 0: handle: mask values must be boolean or 0/1",
        ),
        (lambda: instruction(region(m=[[1, 0], [1]])), "region 0: handle: mask values must be boolean"),
        (lambda: instruction(region(op=["translate"])), "region 0: unknown operation ['translate']"),
        (
            lambda: instruction(region(targets=((1.0, 1.0), (2.0, 2.0)))),
            "an edit takes exactly one target, got 2",
        ),
        (lambda: instruction(region(targets=()), mode=Mode.ANIMATE), "region 0: no target point"),
        (
            lambda: instruction(region(Operation.ROTATE_2D, handle=(7.0, 7.0), center=(7.2, 7.2))),
            "region 0: the handle sits within 0.5 px of the rotation centre",
        ),
        (lambda: instruction(region(), frozen=np.ones(SIZE, bool)), "covers the whole frame"),
        (lambda: instruction(region(), frozen=np.zeros((4, 4), bool)), "non-editable region: mask is 4x4"),
        (
            lambda: instruction(region(), frozen=mask(0, 0, 12, 12)),
            "region 0: handle region lies entirely inside",
        ),
        (
            lambda: instruction(region(op="spin")),
            "region 0: unknown operation 'spin'; allowed: 'translate', 'deform', 'rotate_2d', 'rotate_3d'",
        ),
        (lambda: DragInstruction("scribble", SIZE, (region(),)), "unknown mode 'scribble'; allowed: 'edit'"),
        (lambda: DragInstruction(Mode.EDIT, SIZE, ()), "no handle region"),
        (
            lambda: DragInstruction(Mode.EDIT, (24, 0), (region(),)),
            "frame_size must be two positive integers",
        ),
        (lambda: DragInstruction(Mode.EDIT, (24.0, 32), (region(),)), "frame_size must be two positive"),
        (lambda: DragInstruction(Mode.EDIT, (24,), (region(),)), "frame_size must be two positive"),
        (lambda: instruction(region(), frame_index=-1), "frame_index must be None or an integer >= 0"),
        (lambda: instruction(region(), frame_index=True), "frame_index must be None or an integer >= 0"),
        (lambda: instruction(region(), frame_index=1.0), "frame_index"),
    ],
)
def test_invalid_instructions_name_the_problem(make, message):
    _raises(make, message)


def test_off_frame_message_matches_the_documented_wording():
    frame = np.zeros((64, 64), bool)
    frame[10:20, 10:20] = True
    targets = ((20.0, 12.0), (30.0, 12.0), (50.0, 12.0), (70.0, 12.0))
    bad = DragInstruction(
        Mode.ANIMATE, (64, 64), (HandleRegion(frame, Operation.TRANSLATE, (15.0, 15.0), targets),)
    )
    _raises(lambda: bad, "region 0: target 3 (70.0, 12.0) lies outside the 64x64 frame")


def test_points_on_the_frame_border_are_inside():
    instruction(region(handle=(0.0, 0.0), targets=((31.0, 23.0),))).validate()


def test_inputs_are_normalised_on_construction():
    ok = DragInstruction(
        "animate",
        [24, 32],
        [HandleRegion(mask().astype(np.uint8), "rotate_2d", [9, 5], [[5, 9], (6.5, 9)], center=[7, 7])],
        frozen_mask=np.zeros(SIZE, np.int64),
        frame_index=0,
    ).validate()
    r = ok.regions[0]
    assert ok.mode is Mode.ANIMATE and ok.frame_size == (24, 32) and isinstance(ok.regions, tuple)
    assert r.operation is Operation.ROTATE_2D and r.mask.dtype == bool and ok.frozen_mask.dtype == bool
    assert r.handle == (9.0, 5.0) and r.targets == ((5.0, 9.0), (6.5, 9.0)) and r.center == (7.0, 7.0)
    assert all(type(v) is float for v in r.handle + r.targets[0] + r.center)
    with pytest.raises(InvalidInstruction, match="region 1"):
        instruction(region(), region(m=np.zeros(SIZE, bool))).validate()


def test_editable_mask_is_the_complement_of_the_frozen_mask():
    assert instruction().editable_mask().all() and instruction().editable_mask().shape == SIZE
    frozen = np.zeros(SIZE, np.uint8)
    frozen[20:, :] = 1
    editable = instruction(frozen=frozen).editable_mask()
    assert editable.dtype == bool and editable[:20].all() and not editable[20:].any()


def test_json_rejects_unknown_and_missing_fields():
    data = instruction().to_json()
    with pytest.raises(InvalidInstruction, match="instruction: unknown field.*colour"):
        DragInstruction.from_json({**data, "colour": "red"})
    missing = dict(data)
    del missing["mode"]
    with pytest.raises(InvalidInstruction, match="instruction: missing field.*mode"):
        DragInstruction.from_json(missing)
    bad_region = {**data, "regions": [{**data["regions"][0], "speed": 3}]}
    with pytest.raises(InvalidInstruction, match="region 0: unknown field.*speed"):
        DragInstruction.from_json(bad_region)
    no_center = {k: v for k, v in data["regions"][0].items() if k != "center"}
    with pytest.raises(InvalidInstruction, match="region 0: missing field.*center"):
        DragInstruction.from_json({**data, "regions": [no_center]})
    with pytest.raises(InvalidInstruction, match="unknown format"):
        DragInstruction.from_json({**data, "format": "dragstream-instruction/0"})
    with pytest.raises(InvalidInstruction, match="unknown operation 'spin'"):
        DragInstruction.from_json({**data, "regions": [{**data["regions"][0], "operation": "spin"}]})
    with pytest.raises(InvalidInstruction, match="region 0: handle must be two numbers"):
        DragInstruction.from_json({**data, "regions": [{**data["regions"][0], "handle": ["7", 7]}]})
    with pytest.raises(InvalidInstruction, match="add up to 2 pixels, not 2x2"):
        decode_mask({"size": [2, 2], "counts": [1, 1]})
    with pytest.raises(InvalidInstruction, match="mask: unknown field.*rle"):
        decode_mask({"size": [2, 2], "counts": [4], "rle": True})


def test_json_edit_with_two_targets_is_rejected():
    data = instruction().to_json()
    data["regions"][0]["targets"] = [[12.0, 7.0], [13.0, 7.0]]
    with pytest.raises(InvalidInstruction, match="an edit takes exactly one target"):
        DragInstruction.from_json(data)


def test_target_at_holds_the_last_point():
    animate = instruction(
        region(targets=((8.0, 7.0),)),
        region(targets=((7.0, 8.0), (7.0, 9.0), (7.0, 10.0))),
        mode=Mode.ANIMATE,
    ).validate()
    assert animate.num_targets == 3
    assert [animate.target_at(0, s) for s in range(4)] == [(8.0, 7.0)] * 4
    assert [animate.target_at(1, s) for s in range(4)] == [(7.0, 8.0), (7.0, 9.0), (7.0, 10.0), (7.0, 10.0)]
    with pytest.raises(IndexError):
        animate.target_at(0, -1)
    assert instruction().num_targets == 1


def test_region_angle_and_displacement():
    turn = region(
        Operation.ROTATE_2D, handle=(12.0, 7.0), targets=((7.0, 12.0), (7.0, 2.0)), center=(7.0, 7.0)
    )
    assert turn.angle(0) == pytest.approx(math.pi / 2)  # +x towards +y: clockwise on screen
    assert turn.angle(1) == pytest.approx(-math.pi / 2)
    assert turn.displacement(0) == (-5.0, 5.0)
    assert region(Operation.ROTATE_2D).rotation_center() == (6.5, 6.5)  # centroid of the 4..9 square
