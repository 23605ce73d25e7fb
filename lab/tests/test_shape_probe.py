from dragstream_widget.models.toyworld.world import parse_prompt
from lab.toyworld import shape_probe


def test_swapped_prompts_name_other_shapes_in_the_world_vocabulary():
    prompt = "a red circle and a blue square on a striped background"
    swapped = shape_probe.swapped_prompt(prompt)
    assert swapped == "a red square and a blue star on a striped background"
    assert [shape for _, shape in parse_prompt(swapped).objects] == ["square", "star"]
    for shape, other in shape_probe.SWAPPED_SHAPE.items():
        assert other != shape


def record(block, shape, seen, radius=8.0, spin=0.0, prompted=None, scene=0):
    return {
        "scene": scene,
        "block": block,
        "shape": shape,
        "prompted": prompted or shape,
        "seen": seen,
        "own_iou": 0.9 if seen == shape else 0.6,
        "radius": radius,
        "spin": spin,
    }


def test_the_summary_splits_recognition_by_radius_spin_and_block():
    plain = [
        record(3, "square", "square", radius=7.5, spin=0.01),
        record(4, "square", "circle", radius=7.5, spin=0.01),
        record(3, "star", "circle", radius=11.0, spin=0.1, scene=1),
        record(1, "star", "star", radius=11.0, spin=0.1, scene=1),  # before the settled blocks
        record(3, "circle", "circle", radius=9.0),  # circles are left out
    ]
    swapped = [record(3, "square", "star", prompted="star"), record(3, "star", "star", prompted="triangle")]
    summary = shape_probe.summarize(plain, swapped)
    assert summary["recognised"] == 1 / 3
    small, middle, large = summary["by_radius"]
    assert (small["recognised"], small["object_frames"], small["objects"]) == (0.5, 2, 1)
    assert middle["recognised"] is None and large["recognised"] == 0.0
    assert summary["by_spin"][0]["recognised"] == 0.5 and summary["by_spin"][-1]["recognised"] == 0.0
    block_3 = next(row for row in summary["swapped_prompt_per_block"] if row["block"] == 3)
    assert (block_3["real_class"], block_3["prompted_class"]) == (0.5, 0.5)
    block_1 = next(row for row in summary["own_prompt_per_block"] if row["block"] == 1)
    assert block_1["real_class"] == block_1["prompted_class"] == 1.0


def test_a_small_probe_streams_each_opening_with_its_own_and_a_swapped_prompt(tmp_path, one_torch_thread):
    report = shape_probe.main(["--out", str(tmp_path), "--scenes", "2", "--frames", "9", "--jobs", "1"])
    own, swapped = report["records"]["own_prompt"], report["records"]["swapped_prompt"]
    assert own and swapped and {r["block"] for r in own + swapped} <= {1, 2}
    assert all(r["prompted"] == r["shape"] for r in own)
    assert all(r["prompted"] == shape_probe.SWAPPED_SHAPE[r["shape"]] for r in swapped)
    assert all(0.0 <= r["own_iou"] <= 1.0 for r in own + swapped)
    assert (tmp_path / "shape_probe.json").exists()
