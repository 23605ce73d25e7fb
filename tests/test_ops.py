import json

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
    original = instruction(
        region(targets=((12.25, 7.5), (13.0, 8.125))),
        region(Operation.ROTATE_2D, (9.0, 5.0), ((5.0, 9.0),), center=(7.0, 7.0), m=mask(2, 2, 12, 12)),
        mode=Mode.ANIMATE,
        frozen=frozen,
        frame_index=5,
    ).validate()
    restored = DragInstruction.from_json(json.loads(json.dumps(original.to_json())))
    assert restored.to_json() == original.to_json()
    assert np.array_equal(restored.frozen_mask, frozen)
    assert np.array_equal(restored.regions[1].mask, original.regions[1].mask)
    assert restored.regions[0].targets == ((12.25, 7.5), (13.0, 8.125))
    assert restored.mode == Mode.ANIMATE and restored.regions[1].operation == Operation.ROTATE_2D


def test_mask_codes_start_with_false_runs():
    m = np.array([[True, True, False], [False, True, True]])
    code = encode_mask(m)
    assert code == {"size": [2, 3], "counts": [0, 2, 2, 2]}
    assert np.array_equal(decode_mask(code), m)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: instruction(region(targets=((float("nan"), 3.0),))), "not a finite number"),
        (
            lambda: instruction(region(targets=((40.0, 3.0),))),
            "target 0 (40.0, 3.0) lies outside the 32x24 frame",
        ),
        (lambda: instruction(region(m=np.zeros(SIZE, bool))), "region 0: handle mask is empty"),
        (
            lambda: instruction(region(m=np.ones((10, 10), bool))),
            "handle mask is 10x10 but the frame is 32x24",
        ),
        (lambda: instruction(region(targets=((1.0, 1.0), (2.0, 2.0)))), "an edit takes exactly one target"),
        (
            lambda: instruction(region(Operation.ROTATE_2D, handle=(7.0, 7.0), center=(7.0, 7.0))),
            "rotation centre",
        ),
        (lambda: instruction(region(targets=())), "no target point"),
        (lambda: instruction(region(), frozen=np.ones(SIZE, bool)), "covers the whole frame"),
        (lambda: instruction(region(), frozen=mask(0, 0, 12, 12)), "entirely inside the non-editable region"),
        (lambda: instruction(region(op="spin")), "unknown region 0: operation 'spin'"),
        (lambda: instruction(region(), frame_index=-1), "frame_index"),
        (lambda: DragInstruction("scribble", SIZE, (region(),)), "unknown mode"),
        (lambda: DragInstruction(Mode.EDIT, SIZE, ()), "no handle region"),
        (lambda: instruction(region(m=np.full(SIZE, 2))), "boolean or 0/1"),
    ],
)
def test_invalid_instructions_name_the_problem(make, message):
    with pytest.raises(InvalidInstruction, match=message.replace("(", r"\(").replace(")", r"\)")):
        make().validate()


def test_integer_masks_are_accepted_and_region_indices_named():
    ok = instruction(region(m=mask().astype(np.uint8))).validate()
    assert ok.regions[0].mask.dtype == np.uint8
    with pytest.raises(InvalidInstruction, match="region 1"):
        instruction(region(), region(m=np.zeros(SIZE, bool))).validate()


def test_json_rejects_unknown_and_missing_fields():
    data = instruction().to_json()
    with pytest.raises(InvalidInstruction, match="unknown field.*colour"):
        DragInstruction.from_json({**data, "colour": "red"})
    missing = dict(data)
    del missing["mode"]
    with pytest.raises(InvalidInstruction, match="missing field.*mode"):
        DragInstruction.from_json(missing)
    bad_region = {**data, "regions": [{**data["regions"][0], "speed": 3}]}
    with pytest.raises(InvalidInstruction, match="region 0: unknown field.*speed"):
        DragInstruction.from_json(bad_region)
    with pytest.raises(InvalidInstruction, match="add up to"):
        decode_mask({"size": [2, 2], "counts": [1, 1]})


def test_target_at_holds_the_last_point_and_angles():
    animate = instruction(
        region(targets=((8.0, 7.0),)),
        region(targets=((7.0, 8.0), (7.0, 9.0), (7.0, 10.0))),
        mode=Mode.ANIMATE,
    ).validate()
    assert animate.num_targets == 3
    assert animate.target_at(0, 2) == (8.0, 7.0) and animate.target_at(1, 2) == (7.0, 10.0)
    turn = region(Operation.ROTATE_2D, handle=(12.0, 7.0), targets=((7.0, 12.0),), center=(7.0, 7.0))
    assert turn.angle(0) == pytest.approx(np.pi / 2)
    assert region(Operation.ROTATE_2D).rotation_center() == (6.5, 6.5)
    assert instruction().editable_mask().all()
