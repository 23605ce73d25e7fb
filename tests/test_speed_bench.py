"""The drag-cost bench: the embedded model's drags timed in turns, and drags counted at real size."""

from dataclasses import replace

import pytest

from dragstream_widget import load_model
from dragstream_widget.bench.cpu_speed import drag_costs
from dragstream_widget.bench.gpu_pipeline import REFERENCE_LABELS
from dragstream_widget.bench.real_size import MetaPipeline, PassCounter, drag_cost, total
from dragstream_widget.engine.config import DragConfig
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG, WAN_DRAG_CONFIG
from dragstream_widget.labels import import_labels
from dragstream_widget.models.random_model import WAN_1_3B_480P

# The real spatial size with a narrow, shallow transformer: on meta tensors only the op count costs time.
NARROW = replace(
    WAN_1_3B_480P, num_layers=6, num_heads=2, head_dim=16, ffn_dim=64, text_dim=32, text_tokens=16
)


def test_drag_costs_time_plain_edited_and_animated_blocks_in_turns_and_undo_them():
    backend = load_model()
    cheap = replace(TOY_DRAG_CONFIG, iterations=1, animation_max_iterations=1, edit_iterations=1)
    two = replace(cheap, iterations=2, animation_max_iterations=2, edit_iterations=2)
    settings = {"cheap": cheap, "two": two}
    measured = drag_costs(backend, settings, repeats=1, animated_blocks=2)
    assert len(measured["plain_block"]) == 2 and min(measured["plain_block"]) > 0
    for name, per_drag in (("cheap", 1), ("two", 2)):
        times, iterations = measured[name]["seconds"], measured[name]["iterations"]
        assert {kind: len(t) for kind, t in times.items()} == {
            "animated_block": 2,
            "edit_on_demand": 1,
            "edit_prepared": 1,
        }
        assert all(t > 0 for ts in times.values() for t in ts)
        assert iterations == {"animated_block": [per_drag] * 2, "edit": [per_drag] * 2}


@pytest.fixture(scope="module")
def counter():
    return PassCounter(MetaPipeline.of(NARROW))


def test_real_size_drags_are_counted_part_by_part_against_plain_blocks(counter):
    animation = import_labels(REFERENCE_LABELS / "animation-monster")
    paper = drag_cost(counter, animation, DragConfig())
    shipped = drag_cost(counter, animation, WAN_DRAG_CONFIG)
    # The paper's 16-px segments of 4 iterations, every block walking from the reference frame.
    assert paper["iterations_per_block"] == [20, 32]
    assert shipped["iterations_per_block"] == [3, 3]
    assert 1 < shipped["flop_ratio"] < paper["flop_ratio"]
    block = paper["blocks"][0]
    plain, dragged = block["plain_block"], block["dragged_block"]
    assert plain["denoise_steps"]["count"] == 4 and plain["decode"]["flops"] > 0
    assert dragged["iterations"]["count"] == 20
    each = dragged["iterations"]["flops"] / 20
    assert total(dragged) == pytest.approx(total(plain) + 20 * each + dragged["reference_features"]["flops"])
    assert all(p["seconds"] is None for p in dragged.values())  # filled in by a timed run


def test_an_edit_re_runs_only_the_steps_from_its_optimisation_step(counter):
    edit = import_labels(REFERENCE_LABELS / "editing-pigeon")
    cost = drag_cost(counter, edit, DragConfig())
    (block,) = cost["blocks"]
    assert block["dragged_block"]["denoise_steps"]["count"] == 4 - DragConfig().optimize_step
    assert block["iterations"] == 4 * block["segments"]
