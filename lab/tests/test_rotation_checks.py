import numpy as np
import pytest
from PIL import Image

from dragstream_widget import load_model
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG

PROMPT = "a red circle and a blue square on a striped background"


def test_a_rotation_animated_from_the_opening_frames_is_measured_beside_the_stream_without_it():
    from lab.toyworld.drag_checks import rotation_check

    measured = rotation_check(load_model(), 0, TOY_DRAG_CONFIG, 45.0, blocks=0, frames=3)
    assert measured["square_iou_before"] > 0.95  # the rendered opening square, before any generated block
    assert 0.0 <= measured["turned_degrees_mod_90"] < 90.0 and measured["requested_degrees"] == 45.0
    assert measured["square_iou_without_drag"] is not None and measured["disc_iou_after"] > 0.0
    assert (
        abs(measured["square_iou_after"] - measured["square_iou_without_drag"]) > 0.01
    )  # the drag changed it
    assert measured["psnr_non_editable_db"] >= 30.0  # the rest of the animated frames, against no drag


def test_a_rotation_edit_turns_the_square_by_about_45_degrees_and_spares_the_rest_of_the_frame(tmp_path):
    from lab.toyworld.drag_checks import rotation_check
    from lab.toyworld.rotation_sheet import rotation_sheet

    views = []
    measured = rotation_check(load_model(), 1, TOY_DRAG_CONFIG, 45.0, blocks=1, views=views)
    # Without the latent-space rotation term (rotation_x0_weight 0) this seed turned 83-86 degrees.
    assert abs(measured["turned_degrees_mod_90"] - 45.0) <= 10.0
    assert measured["square_iou_after"] > 0.5  # a square-like blob is left, not a smear
    assert measured["psnr_non_editable_db"] >= 30.0
    # The view keeps the two frames and the squares the turn was measured between.
    (view,) = views
    assert view.seed == 1 and view.turned_degrees == measured["turned_degrees_mod_90"]
    assert view.before.shape == view.after.shape == (64, 64, 3) and not np.array_equal(
        view.before, view.after
    )
    (_, _, before), (_, _, after) = view.square_before, view.square_after
    assert (after - before) % 90 == view.turned_degrees
    sheet = rotation_sheet(views, tmp_path / "sheet.png", "one edit")
    assert Image.open(sheet).size[0] > 400
    with pytest.raises(ValueError, match="every seed was skipped"):
        rotation_sheet([], tmp_path / "none.png", "none")
