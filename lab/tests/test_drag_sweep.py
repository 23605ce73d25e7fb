import pytest

from dragstream_widget.engine.presets import TOY_DRAG_CONFIG
from dragstream_widget.models.toyworld.scenes import ObjectNotVisible
from lab.toyworld.drag_checks import CHECKS, unless_hidden
from lab.toyworld.drag_sweep import make_config, meets, table_row


def summary(edit_within=1.0, animation=2.5, rotations=(44.0, 51.0), psnr=35.0, checks=CHECKS) -> dict:
    return {
        "checks": list(checks),
        "edit_error_px_median": 0.8,
        "edit_within_2px": edit_within,
        "long_edit_px": 14.0,
        "long_edit_error_px_median": 1.5,
        "long_edit_ghost_fraction_median": 0.1,
        "animation_error_px_mean": animation,
        "rotation_turned_degrees_mod_90": list(rotations),
        "psnr_non_editable_db_median": psnr,
    }


def test_overrides_apply_on_the_toy_settings():
    config = make_config({"learning_rate": 0.3, "cutoffs": [0.4, 1.0], "reconstruction_loss": "l1"})
    assert config.learning_rate == 0.3 and config.cutoffs == (0.4, 1.0) and config.reconstruction_loss == "l1"
    assert (
        config.iterations == TOY_DRAG_CONFIG.iterations
        and config.optimize_step == TOY_DRAG_CONFIG.optimize_step
    )


def test_targets_met_by_hand():
    assert meets(summary()) == {"edit": True, "animation": True, "rotation": True, "psnr": True}
    missed = meets(summary(edit_within=0.9, animation=3.0, rotations=(44.0, 52.5), psnr=29.9))
    assert missed == {"edit": False, "animation": False, "rotation": False, "psnr": False}
    assert not meets(summary(animation=None, rotations=(None, 45.0)))["rotation"]
    row = table_row({"name": "c", **summary(), "edit_seconds": 0.5, "meets": meets(summary())})
    assert row.startswith("c ") and "met 4/4" in row and "14 px edit  1.50 px ghost 0.10" in row


def test_a_case_whose_object_is_hidden_is_skipped_and_other_errors_still_raise():
    def hidden_check(name):
        raise ObjectNotVisible(f"the {name} object is not visible on the current frame")

    def broken_check(name):
        raise ValueError(name)

    assert unless_hidden(hidden_check, "green") == {
        "skipped": "the green object is not visible on the current frame"
    }
    with pytest.raises(ValueError):
        unless_hidden(broken_check, "green")
    empty = meets(summary(psnr=None))
    assert not empty["psnr"]
    assert "psnr -" in table_row({"name": "c", **summary(psnr=None), "edit_seconds": None, "meets": empty})


def test_a_sweep_of_some_checks_judges_only_their_targets():
    """A sweep of animations alone reports no edit numbers and is judged on the animation target only."""
    partial = summary(edit_within=None, psnr=None, rotations=(), checks=("animations",))
    partial.update(
        edit_error_px_median=None, long_edit_error_px_median=None, long_edit_ghost_fraction_median=None
    )
    assert meets(partial) == {"animation": True}
    row = table_row({"name": "anim", **partial, "edit_seconds": None, "meets": meets(partial)})
    assert "anim  2.50 px" in row and "edit - px -" in row and "rot -" in row and "met 1/1" in row
