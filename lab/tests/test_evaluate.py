import json
from dataclasses import replace

import numpy as np
import pytest

from dragstream_widget import load_model
from dragstream_widget.geometry import grow
from dragstream_widget.models.toyworld.world import (
    OBJECT_COLORS,
    Background,
    ObjectSpec,
    Scene,
    render_clip,
    scene_from_prompt,
    segment_object,
    shape_template,
)
from lab.toyworld.evaluate import (
    CLEAN_BACKGROUND_LEVELS,
    apart_at_opening,
    best_template_iou,
    block_changes,
    changes_summary,
    held_summary,
    long_run,
    opening_scene,
    path_errors,
    per_block,
    scene_at_end,
    summarize,
    track_objects,
)


def test_a_rendered_shape_fits_its_own_template_and_not_another():
    star = shape_template("star", 10.0, 0.3, 64, (30.0, 30.0)) >= 0.5
    assert best_template_iou(star, "star", 10.0) > 0.85
    assert best_template_iou(star, "circle", 10.0) < 0.75
    square = shape_template("square", 9.0, 0.5, 64, (20.0, 40.0)) >= 0.5
    assert best_template_iou(square, "square", 9.0) > 0.85


def test_tracking_on_real_frames_keeps_every_object():
    scene = Scene(
        (
            ObjectSpec("square", "red", 8.0, (20.0, 20.0), (1.0, 0.5), 0.0, 0.05),
            ObjectSpec("circle", "blue", 7.0, (45.0, 45.0), (-0.5, 0.0), 0.0, 0.0),
        ),
        Background("plain", ((88, 92, 104), (116, 120, 132))),
    )
    clip = render_clip(scene, 12)
    areas = [float(m.sum()) for m in clip.visible_masks[0]]
    summary = summarize([track_objects(clip.frames, scene, areas)])
    assert summary["survival"] == 1.0 and summary["shape_iou"] > 0.8
    assert summary["shape_recognized"] == 1.0 and set(summary["shape_iou_per_class"]) == {"square", "circle"}
    assert summary["size_within_20_percent"] == 1.0
    assert len(summary["size_ratio_median_per_block"]) == 4  # 12 frames, blocks of 3
    assert all(abs(r - 1.0) < 0.1 for r in summary["size_ratio_median_per_block"])
    assert summary["shape_recognized_per_block"] == [1.0] * 4
    blank = np.zeros_like(clip.frames)
    assert summarize([track_objects(blank, scene, areas)])["survival"] == 0.0


def test_motion_is_the_speed_of_surviving_objects_and_their_distance_from_the_real_path():
    moving = ObjectSpec("square", "red", 8.0, (16.0, 30.0), (2.0, 0.0), 0.0, 0.0)  # 2 px a frame to the right
    background = Background("plain", ((88, 92, 104), (116, 120, 132)))
    real = render_clip(Scene((moving,), background), 12)
    still = render_clip(Scene((replace(moving, velocity=(0.0, 0.0)),), background), 12)
    areas = [float(real.visible_masks[0][0].sum())]
    real_track, still_track = (
        track_objects(real.frames, real.scene, areas),
        track_objects(still.frames, still.scene, areas),
    )
    assert summarize([real_track])["speed_median_px_per_frame"] == pytest.approx(2.0, abs=0.1)
    assert summarize([still_track])["speed_median_px_per_frame"] == pytest.approx(0.0, abs=0.1)
    assert summarize([still_track])["survival"] == 1.0  # survival alone cannot tell a stopped object
    same = path_errors([real_track], [real_track], 3)
    assert same["path_error_median_px"] == 0.0 and same["path_error_median_px_per_block"] == [0.0] * 4
    stopped = path_errors([still_track], [real_track], 3)["path_error_median_px_per_block"]
    assert stopped == pytest.approx(
        [2.0, 8.0, 14.0, 20.0], abs=0.3
    )  # the median frame of each block, 2 px each
    assert path_errors([track_objects(np.zeros_like(real.frames), real.scene, areas)], [real_track], 3) == {
        "path_error_median_px": None,
        "path_error_median_px_per_block": [],
    }


def test_shape_recognition_is_summarised_per_block_and_drops_where_a_square_turns_disc():
    square = ObjectSpec("square", "red", 8.0, (30.0, 30.0), (0.0, 0.0), 0.3, 0.0)
    background = Background("plain", ((88, 92, 104), (116, 120, 132)))
    squares = render_clip(Scene((square,), background), 12)
    discs = render_clip(Scene((replace(square, shape="circle"),), background), 12)
    melted = np.concatenate([squares.frames[:6], discs.frames[6:]])
    areas = [float(squares.visible_masks[0][0].sum())]
    summary = summarize([track_objects(melted, squares.scene, areas)])
    assert summary["shape_recognized_per_block"] == [1.0, 1.0, 0.0, 0.0]
    assert summary["shape_recognized"] == 0.5 and summary["survival"] == 1.0


def test_size_ratios_are_summarised_per_block_in_frame_order():
    ratios = [(0, 1.0), (1, 0.8), (6, 0.5), (7, 0.5), (8, 0.8)]
    assert per_block(ratios, 3) == [pytest.approx(0.9), None, pytest.approx(0.5)]
    assert per_block(ratios, 3, np.mean) == [pytest.approx(0.9), None, pytest.approx(0.6)]
    assert per_block([], 3) == []


def test_square_orientation_is_measured_modulo_90_degrees_and_squares_told_from_discs():
    import math

    from dragstream_widget.models.toyworld.scenes import square_fit
    from lab.toyworld.drag_checks import disc_iou

    for degrees in (0.0, 20.0, 65.0, 100.0):
        mask = shape_template("square", 12.0, math.radians(degrees), 64, (32.0, 32.0)) >= 0.5
        measured, iou = square_fit(mask, 12.0)
        assert min(abs(measured - degrees % 90), 90 - abs(measured - degrees % 90)) <= 1.0
        assert iou > 0.95 and disc_iou(mask) < 0.9
    disc = shape_template("circle", 8.0, 0.0, 64, (30.0, 34.0)) >= 0.5
    assert disc_iou(disc) > 0.95 and square_fit(disc, math.sqrt(disc.sum() / 2))[1] < 0.92


def test_the_ghost_of_an_edit_is_the_share_of_the_vacated_area_still_covered():
    from lab.toyworld.drag_checks import ghost_fraction

    before = shape_template("circle", 8.0, 0.0, 64, (24.0, 32.0)) >= 0.5
    moved = np.roll(before, 14, axis=1)
    assert ghost_fraction(before, moved, 14) == 0.0
    assert ghost_fraction(before, before, 14) == 1.0
    smeared = ghost_fraction(before, moved | np.roll(before, 7, axis=1), 14)
    assert 0.2 < smeared < 0.8
    assert ghost_fraction(before, moved, 0) is None  # nothing vacated


def test_the_non_editable_region_leaves_out_the_dragged_objects_places_in_both_videos():
    """An animation takes a red disc along its path while, without the drag, the disc went elsewhere: both
    its planned path and its own places count as editable; a change anywhere else (a blue disc moved)
    lowers the PSNR."""
    from lab.toyworld.drag_checks import non_editable_psnr

    background = np.full((2, 64, 64, 3), 90, np.uint8)

    def with_discs(*discs):
        frames = background.copy()
        for color, center in discs:
            frames[:, shape_template("circle", 6.0, 0.0, 64, center) >= 0.5] = color
        return frames

    red, blue = (225, 35, 35), (40, 80, 235)
    planned = shape_template("circle", 6.0, 0.0, 64, (16.0, 16.0)) >= 0.5
    undragged = with_discs((red, (46.0, 16.0)), (blue, (32.0, 48.0)))
    dragged = with_discs((red, (16.0, 16.0)), (blue, (32.0, 48.0)))
    assert non_editable_psnr(dragged, undragged, planned, "red") == float("inf")
    pushed = with_discs((red, (16.0, 16.0)), (blue, (38.0, 48.0)))
    assert non_editable_psnr(pushed, undragged, planned, "red") < 25.0


def test_opening_scenes_have_whole_objects_apart_and_overlaps_are_refused():
    apart = Scene(
        (
            ObjectSpec("square", "red", 8.0, (20.0, 20.0), (1.0, 0.5), 0.0, 0.05),
            ObjectSpec("circle", "blue", 7.0, (45.0, 45.0), (-0.5, 0.0), 0.0, 0.0),
        ),
        Background("plain", ((88, 92, 104), (116, 120, 132))),
    )
    assert apart_at_opening(render_clip(apart, 3), 3)
    overlapping = Scene(
        (apart.objects[0], replace(apart.objects[1], position=(26.0, 22.0))), apart.background
    )
    assert not apart_at_opening(render_clip(overlapping, 3), 3)
    cut = Scene((replace(apart.objects[0], position=(3.0, 20.0)),), apart.background, leaves_frame=True)
    assert not apart_at_opening(render_clip(cut, 3), 3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        scene, clip = opening_scene(rng, 3, 6)
        assert apart_at_opening(clip, 3) and clip.frames.shape[0] == 6


def test_evaluation_runs_with_another_sampler_and_says_which(tmp_path):
    from lab.toyworld.evaluate import main

    args = ["--out", str(tmp_path), "--scenes", "1", "--frames", "6", "--long-frames", "6"]
    report = main(args + ["--steps", "1000,500", "--sampler-update", "renoise"])
    assert report["sampler"] == {"steps": [1000, 500], "update": "renoise"}
    assert report["frames"] == 6 and report["long_run"]["finite"] and report["long_run"]["frames"] == 6
    # The real clips through the codec alone: what the model's own numbers are to be read against.
    assert (
        report["codec_round_trip"]["survival"] > 0.5
        and len(report["generated"]["size_ratio_median_per_block"]) == 1
    )
    assert (tmp_path / "evaluation.json").exists() and (tmp_path / "rollouts_vs_real.png").exists()
    trace = json.loads((tmp_path / "long_run_trace.json").read_text())
    assert [check["frame"] for check in trace] == [5]  # the generated block's last frame
    assert (tmp_path / "long_run_trace.png").exists() and len(
        report["long_run"]["held_share_per_segment"]
    ) == 1


def test_evaluation_in_worker_processes_gives_the_numbers_of_one_process(tmp_path, one_torch_thread):
    from lab.toyworld.evaluate import evaluate, main

    args = ["--scenes", "2", "--frames", "6", "--long-frames", "0", "--steps", "1000,500"]
    spread = main(["--out", str(tmp_path / "jobs"), "--jobs", "2", *args])
    alone = evaluate(load_model(steps=(1000, 500)), 2, 6, 0, tmp_path)
    assert spread["jobs"] == 2 and spread["threads"] == 1
    for part in ("generated", "real", "codec_round_trip"):
        assert spread[part] == alone[part]
    assert (tmp_path / "jobs" / "rollouts_vs_real.png").exists()


def test_evaluation_without_a_long_run_and_a_too_short_one_refused(tmp_path):
    from lab.toyworld.evaluate import main

    args = ["--out", str(tmp_path), "--scenes", "1", "--frames", "6"]
    report = main(args + ["--long-frames", "0", "--float-streaming"])
    assert "long_run" not in report and report["generated"]["survival"] >= 0 and not report["int8_streaming"]
    assert (
        report["generated"]["path_error_median_px"] >= 0
        and report["generated"]["speed_median_px_per_frame"] >= 0
    )
    sinks = main(args + ["--long-frames", "0", "--cache-frames", "6", "--sink-frames", "3"])
    assert sinks["kv_window"] == {"cache_frames": 6, "sink_frames": 3}
    with pytest.raises(SystemExit):  # a window no larger than its sinks
        main(args + ["--long-frames", "0", "--sink-frames", "9"])
    with pytest.raises(SystemExit):  # one block has no first-to-last change to report
        main(args + ["--long-frames", "3"])


def test_a_collapsed_scene_is_told_from_one_that_moved_on():
    """The long run's end check: a later frame of the same clip keeps its object and background; a frame
    tinted with the object's colour, or darkened, loses the object and moves the background's colour."""
    scene = scene_from_prompt("a purple circle on a dotted background", np.random.default_rng(0))
    frames = render_clip(scene, 24).frames
    moved_on = scene_at_end(frames[23], frames[0], scene)
    assert moved_on["objects_present_at_end"] == [True] and moved_on["background_shift_levels"] < 2
    assert moved_on["object_area_ratios_at_end"][0] == pytest.approx(1.0, abs=0.1)
    tinted = (0.5 * frames[23] + 0.5 * np.array(OBJECT_COLORS["purple"])).astype(np.uint8)
    for collapsed in (tinted, (0.3 * frames[23]).astype(np.uint8)):
        end = scene_at_end(collapsed, frames[0], scene)
        assert end["objects_present_at_end"] == [False] and end["background_shift_levels"] > 50


def test_the_held_summary_shares_blocks_per_segment_and_finds_where_the_scene_was_lost_for_good():
    def check(frame: int, present: bool, shift: float) -> dict:
        return {"frame": frame, "objects_present_at_end": [True, present], "background_shift_levels": shift}

    clean, lost = CLEAN_BACKGROUND_LEVELS / 2, CLEAN_BACKGROUND_LEVELS * 2
    trace = [check(5, True, clean), check(8, False, clean), check(11, True, clean), check(14, True, lost)]
    trace += [check(17, True, clean), check(20, False, clean), check(23, True, lost)]
    summary = held_summary(trace, segment_frames=12)
    # frames 0-11: held, lost (object), held; 12-23: lost (background), held, lost, lost
    assert summary["held_share_per_segment"] == pytest.approx([2 / 3, 1 / 4])
    assert summary["lost_for_good_from_frame"] == 20
    assert held_summary(trace[:5], segment_frames=12)["lost_for_good_from_frame"] is None


def test_the_shipped_weights_keep_the_long_run_scene_whole_for_300_frames(tmp_path):
    """What the sink fine-tune is shipped for: the evaluation's long-run scene (a purple circle on a
    dotted background) keeps its object and background over 300 frames; the weights before it had
    shrunk the circle below half its area in most blocks by then (model card, "The shipped weights")."""
    report = long_run(load_model(), 300, 0, tmp_path)
    assert report["frames"] == 300 and report["finite"]
    assert report["held_share_per_segment"][0] >= 0.8 and report["lost_for_good_from_frame"] is None
    assert report["background_shift_levels"] < CLEAN_BACKGROUND_LEVELS


def test_blocks_of_a_real_clip_change_nothing_and_a_duplicated_object_is_counted_as_spawned():
    scene = scene_from_prompt(
        "a red circle and a blue square on a plain background", np.random.default_rng(2)
    )
    real = render_clip(scene, 12).frames
    assert changes_summary([block_changes(real, scene, 3, real)])["blocks_spawned_or_lost"] == 0
    doubled = real.copy()
    doubled[9:, 52:60, 52:60] = OBJECT_COLORS["red"]  # a second red patch in the last block
    doubled[9:, 2:10, 52:60] = OBJECT_COLORS["blue"]  # and a second blue one
    changes = block_changes(doubled, scene, 3, real)
    assert changes[:-1] == [{"spawned": 0, "lost": 0}] * 2 and changes[-1] == {"spawned": 2, "lost": 0}
    summary = changes_summary([changes])
    assert summary["blocks"] == 3 and summary["blocks_spawned"] == pytest.approx(1 / 3)


def test_a_drags_side_effects_count_foreign_colour_on_its_path_and_what_the_far_object_lost():
    from lab.toyworld.drag_checks import side_effects

    prompt = "a red circle and a blue square on a plain background"
    frames = render_clip(scene_from_prompt(prompt, np.random.default_rng(2)), 3).frames
    path = np.zeros(frames.shape[1:3], bool)
    path[20:40, 20:40] = True
    assert side_effects(frames, frames, path, prompt) == {
        "foreign_color_px": 0,
        "far_objects_area_ratio": 1.0,
        "objects_spawned": 0,
        "objects_lost": 0,
    }
    smeared = frames.copy()
    smeared[-1, 28:32, 28:33] = OBJECT_COLORS["green"]  # 20 px of a colour no object of the scene has
    smeared[-1][grow(segment_object(frames[-1], "blue"), 2)] = frames[-1, 0, 0]  # the far object painted over
    effects = side_effects(smeared, frames, path, prompt)
    assert effects["foreign_color_px"] == 20 and effects["far_objects_area_ratio"] == 0
    assert effects["objects_spawned"] == 1 and effects["objects_lost"] == 1
