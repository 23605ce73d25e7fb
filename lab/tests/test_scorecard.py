"""The embedded model's scorecard: every target of the model beside the statistic measured for it."""

import json
import math

from dragstream_widget.models.toyworld.model import WEIGHTS_DIR
from lab.toyworld import scorecard
from lab.toyworld.scorecard import (
    ROTATIONS,
    Target,
    drag_targets,
    markdown,
    rollout_targets,
    speed_targets,
)


def test_a_target_is_met_from_its_side_of_the_limit_and_never_without_a_value():
    assert Target("t", 1.9, 2.0, True, "px", "").met
    assert not Target("t", 2.1, 2.0, True, "px", "").met
    assert Target("t", 0.95, 0.9, False, "", "").met and not Target("t", 0.85, 0.9, False, "", "").met
    assert not Target("t", None, 2.0, True, "px", "").met
    assert not Target("t", math.nan, 2.0, True, "px", "").met


def rotation(label: str, turned: float, psnr: float = 40.0) -> dict:
    return {"kind": "rotation", "label": label, "turned_degrees_mod_90": turned, "psnr_non_editable_db": psnr}


def test_drag_targets_take_the_median_case_and_count_the_cases_that_meet_them():
    first, second, third = ROTATIONS
    quiet = {"foreign_color_px": 0, "far_objects_area_ratio": 1.0, "objects_spawned": 0, "objects_lost": 0}
    drags = [
        {"kind": "edit", "label": "edit", "error_px": e, "psnr_non_editable_db": 40.0, **quiet}
        for e in (0.5, 1.5, 3.0)
    ]
    smear = {"foreign_color_px": 30, "far_objects_area_ratio": 0.5, "objects_spawned": 1, "objects_lost": 0}
    drags += [
        {
            "kind": "animation",
            "label": "animation",
            "mean_error_px": 2.0,
            "psnr_non_editable_db": 25.0,
            **smear,
        },
        {
            "kind": "animation",
            "label": "animation",
            "mean_error_px": 3.5,
            "psnr_non_editable_db": 35.0,
            **quiet,
        },
        {"kind": "edit", "label": "edit", "skipped": "the red object is not visible"},
    ]
    drags += [rotation(first, t) for t in (44.0, 47.0, 60.0)] + [rotation(second, t) for t in (20.0, 30.0)]
    targets = {t.asks: t for t in drag_targets(drags)}
    edit, animation, turn_1, turn_2, turn_3, psnr, foreign, far, spawned = targets.values()
    assert (edit.measured, edit.met, edit.detail.startswith("2 of 3")) == (1.5, True, True)
    assert (animation.measured, animation.met) == (2.75, True)
    assert (turn_1.measured, turn_1.met) == (2.0, True) and "2 of 3" in turn_1.detail
    assert (turn_2.measured, turn_2.met) == (20.0, False)
    assert turn_3.measured is None and not turn_3.met  # none of that kind ran
    assert psnr.measured == 40.0 and psnr.met and "9 of 10" in psnr.detail and "25.0 dB" in psnr.detail
    assert (foreign.measured, foreign.met, far.measured, far.met) == (0.0, True, 1.0, True)
    assert spawned.measured == 0.2 and not spawned.met and "4 of 5" in spawned.detail


def test_rollout_and_speed_targets_read_the_evaluation_and_the_timings():
    rollouts = {
        "survival_vs_real": 1.02,
        "real": {"survival": 0.88},
        "generated": {
            "survival": 0.9,
            "shape_iou": 0.76,
            "shape_iou_per_class": {"circle": 0.83, "star": 0.67},
            "shape_recognized": 0.4,
            "size_error_median": 0.15,
            "size_within_20_percent": 0.64,
            "blocks": 240,
            "blocks_spawned": 0.03,
            "blocks_lost": 0.01,
            "blocks_spawned_or_lost": 0.04,
        },
        "free_generation": {
            "shape_recognized": 0.8,
            "survival": 0.7,
            "blocks_spawned": 0.2,
            "blocks_lost": 0.1,
            "blocks_spawned_or_lost": 0.25,
        },
        "long_run": {
            "frames": 300,
            "block_std_first_last": [0.9, 0.93],
            "finite": True,
            "objects_present_at_end": [True],
            "object_area_ratios_at_end": [0.8],
            "lost_for_good_from_frame": None,
            "background_shift_levels": 1.0,
            "held_share_per_segment": [1.0],
            "blocks_spawned": 0.0,
            "blocks_lost": 0.0,
            "blocks_spawned_or_lost": 0.0,
        },
    }
    survival, shapes, recognised, free_recognised, changes, free_changes, long_changes, sizes, clean = (
        rollout_targets(rollouts)
    )
    assert survival.met and shapes.met and sizes.met and clean.met
    assert not recognised.met and free_recognised.met  # 40 % against 85 %; 80 % against 75 %
    assert changes.met and not free_changes.met and long_changes.met and "240 blocks" in changes.detail
    assert "64% of object-frames" in sizes.detail and math.isclose(clean.measured, 0.03 / 0.9)
    rollouts["long_run"]["lost_for_good_from_frame"] = 290
    assert not rollout_targets(rollouts)[-1].met  # a scene lost at the end is not clean
    by_window = {"two_blocks_in": {"on_demand": 0.52, "prepared": 0.45}}
    frames, edit = speed_targets(
        {
            "frames_per_second": 17.0,
            "edit_seconds": 0.52,
            "edit_seconds_by_window": by_window,
            "threads": 2,
            "cpu": "x",
        }
    )
    assert frames.met and not edit.met and "0.52 / 0.45 s" in edit.detail
    table = markdown([frames, edit])
    assert table.count("\n") == 3 and "| met |" in table and "| missed |" in table


def test_a_small_scorecard_runs_every_measurement_on_the_embedded_model(tmp_path):
    result = scorecard.main(
        [
            "--out",
            str(tmp_path),
            "--scenes",
            "1",
            "--long-frames",
            "6",
            "--seeds",
            "1",
            "--rotation-seeds",
            "1",
        ]
        + ["--speed-blocks", "1", "--speed-repeats", "1", "--jobs", "1", "--weights", str(WEIGHTS_DIR)]
    )
    assert len(result["targets"]) == 9 + 2 + len(ROTATIONS) + 1 + 3 + 2
    saved = json.loads((tmp_path / "scorecard.json").read_text())
    assert [t["met"] for t in saved["targets"]] == [t["met"] for t in result["targets"]]
    assert (tmp_path / "scorecard.md").read_text().count("\n") == len(result["targets"]) + 2
    assert len(result["drags"]) == 4 + 2 + len(ROTATIONS)
    assert all(math.isfinite(t["measured"]) for t in result["targets"][:2])
    assert result["speed"]["frames_per_second"] > 0 and (tmp_path / "rollouts_vs_real.png").exists()
