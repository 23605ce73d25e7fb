"""How a dragged block's iterations walk the trajectory: from where the block starts, within a budget."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dragstream_widget.engine.config import DragConfig
from dragstream_widget.engine.drag import iteration_segments, trajectory_segments
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.engine.targets import Motion, animation_plan
from dragstream_widget.ops import DragInstruction, HandleRegion, Mode, Operation

SIZE = (32, 32)


def square() -> np.ndarray:
    mask = np.zeros(SIZE, bool)
    mask[8:16, 4:12] = True
    return mask


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 6), st.one_of(st.none(), st.integers(1, 10)))
def test_iterations_walk_every_segment_in_order_within_the_budget(segments, iterations, budget):
    schedule = iteration_segments(segments, iterations, budget)
    unlimited = segments * iterations
    assert len(schedule) == (unlimited if budget is None else min(unlimited, budget))
    assert schedule == sorted(schedule) and schedule[-1] == segments  # ends on the full goal
    assert all(1 <= s <= segments for s in schedule)
    if budget is None or unlimited <= budget:
        assert schedule == [s for s in range(1, segments + 1) for _ in range(iterations)]
    else:
        assert max(b - a for a, b in zip([0, *schedule], schedule)) <= math.ceil(segments / budget)


def test_a_motion_part_of_the_way_to_another_and_its_distance():
    start, goal = Motion((4.0, 0.0)), Motion((10.0, 8.0))
    assert start.toward(goal, 0.5).delta == (7.0, 4.0)
    assert start.toward(goal, 1.0).delta == goal.delta
    assert start.distance(goal) == (10.0, 0.0)
    # Turns take the shorter way round: from 170 to -170 degrees is 20 degrees on.
    a, b = (
        Motion(center=(0.0, 0.0), angle=math.radians(170)),
        Motion(center=(0.0, 0.0), angle=math.radians(-170)),
    )
    assert a.distance(b)[1] == pytest.approx(20.0)
    assert math.degrees(a.toward(b, 0.5).angle) == pytest.approx(180.0)


def straight_animation(steps: int, px_per_step: float) -> DragInstruction:
    targets = tuple((8.0 + px_per_step * (k + 1), 12.0) for k in range(steps))
    region = HandleRegion(square(), Operation.TRANSLATE, (8.0, 12.0), targets)
    return DragInstruction(Mode.ANIMATE, SIZE, (region,)).validate()


def test_later_animated_blocks_walk_from_where_the_previous_block_left_the_object(tiny_backend):
    layout = tiny_backend.layout
    fpb = layout.frames_per_block
    instruction = straight_animation(3 * fpb, 3.0)  # one token width (8 px here) every few frames
    token_px = layout.pixel_width / layout.width * 2
    for block in range(3):
        plan = animation_plan(instruction, block * fpb, fpb, layout.latent_size, "cpu")
        from_reference = trajectory_segments(tiny_backend, plan, DragConfig())
        walked = trajectory_segments(tiny_backend, plan, DragConfig(walk_from="previous_block"))
        reach = 3.0 * (block + 1) * fpb
        assert from_reference == math.ceil(reach / token_px)
        assert walked == math.ceil(3.0 * fpb / token_px)  # only the block's own frames' stretch
        # The first goal lies one segment on from the start, not from the reference frame.
        first = plan.goals(1 / walked, layout.pixel_size, layout.latent_size, "previous_block")
        start = 0.0 if block == 0 else 3.0 * block * fpb
        shift_px = start + (3.0 * (block * fpb + fpb) - start) / walked
        expected = -shift_px * layout.width / layout.pixel_width
        assert first[-1][0].coords[0, 0, 0].item() == pytest.approx(expected, abs=1e-4)


def test_a_budget_caps_the_iterations_of_an_animated_block_but_not_of_an_edit(tiny_backend):
    config = DragConfig(iterations=2, css=False, animation_max_iterations=4)
    session = StreamSession(tiny_backend, "a blue star", seed=1, config=config)
    session.step()
    session.step()
    far = HandleRegion(square(), Operation.TRANSLATE, (8.0, 12.0), ((28.0, 12.0),))  # 20 px: 3 segments
    edited = session.apply(DragInstruction(Mode.EDIT, SIZE, (far,)))
    assert [loss["segment"] for loss in edited.losses] == [1, 1, 2, 2, 3, 3]
    assert config.for_edits().animation_max_iterations is None
    session.undo()
    fpb = tiny_backend.layout.frames_per_block
    steps = tuple((8.0 + 20.0 * (k + 1) / fpb, 12.0) for k in range(fpb))  # the first block goes 20 px
    animation = HandleRegion(square(), Operation.TRANSLATE, (8.0, 12.0), steps)
    session.apply(DragInstruction(Mode.ANIMATE, SIZE, (animation,)))
    animated = session.step()
    assert [loss["segment"] for loss in animated.losses] == iteration_segments(3, 2, 4) == [1, 2, 3, 3]
    assert [loss["iteration"] for loss in animated.losses] == [0, 0, 0, 1]
