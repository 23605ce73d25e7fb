import json
import math
from pathlib import Path

import numpy as np
import pytest

from dragstream_widget.__main__ import main
from dragstream_widget.labels import export_labels, import_labels
from dragstream_widget.ops import InvalidInstruction, Mode, Operation

LABELS = Path(__file__).parent / "data" / "reference_labels"


def test_import_the_editing_example():
    drag = import_labels(LABELS / "editing-pigeon")
    instruction = drag.instruction
    assert drag.block == 3 and drag.prompt.startswith("A close-up shot of a Victoria crowned pigeon")
    assert instruction.mode == Mode.EDIT and instruction.frame_size == (480, 832)
    (region,) = instruction.regions
    assert region.operation == Operation.TRANSLATE
    assert region.handle == (381.0, 141.0) and region.targets == ((390.0, 20.0),)
    assert region.displacement(0) == (9.0, -121.0)  # the label's own delta
    assert instruction.frozen_mask is not None and instruction.frozen_mask.dtype == bool


def test_import_the_animation_example_with_a_rotation():
    instruction = import_labels(LABELS / "animation-monster").instruction
    data = json.loads((LABELS / "animation-monster" / "block_3_Animation_trajectory.json").read_text())
    assert instruction.mode == Mode.ANIMATE
    translate, rotate = instruction.regions
    assert translate.operation == Operation.TRANSLATE and len(translate.targets) == 6  # 2 blocks x 3 frames
    deltas = [d for b in data["trajectories"][0]["block_trajectories"] for d in b["deltas"]]
    assert [list(translate.displacement(i)) for i in range(6)] == deltas
    assert rotate.operation == Operation.ROTATE_2D and rotate.rotation_center() == (221.0, 277.0)
    angles = [d for b in data["trajectories"][1]["block_trajectories"] for d in b["deltas"]]
    assert [math.degrees(rotate.angle(i)) for i in range(6)] == pytest.approx(angles, abs=1e-4)


@pytest.mark.parametrize("example", ["editing-pigeon", "animation-monster"])
def test_export_then_import_round_trips(example, tmp_path):
    drag = import_labels(LABELS / example)
    path = export_labels(drag, tmp_path)
    again = import_labels(tmp_path)
    assert path.name == next((LABELS / example).glob("*.json")).name
    assert again.to_json() == drag.to_json()
    exported = json.loads(path.read_text())
    original = json.loads(next((LABELS / example).glob("*.json")).read_text())
    assert exported["block_number"] == original["block_number"]
    for mine, theirs in zip(exported["trajectories"], original["trajectories"]):
        assert mine["original_trajectory"]["points"] == theirs["original_trajectory"]["points"]
        for a, b in zip(mine["block_trajectories"], theirs["block_trajectories"]):
            assert np.allclose(a["deltas"], b["deltas"], atol=1e-4)


def test_command_line_import_and_export(tmp_path):
    out = tmp_path / "drag.json"
    main(["labels", "import", str(LABELS / "animation-monster"), "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["block"] == 3 and saved["instruction"]["mode"] == "animate"
    main(["labels", "export", str(out), "--out", str(tmp_path / "back")])
    assert (tmp_path / "back" / "block_3_Animation_traj_1_mask.png").exists()
    assert import_labels(tmp_path / "back").to_json() == saved


def test_missing_mask_and_unknown_kind_are_clear_errors(tmp_path):
    data = json.loads((LABELS / "editing-pigeon" / "block_3_Drag_trajectory.json").read_text())
    (tmp_path / "block_1_Drag_trajectory.json").write_text(json.dumps(data))
    with pytest.raises(InvalidInstruction, match="block_3_Drag_movable_mask.png.*missing"):
        import_labels(tmp_path)
    data["drag_or_animation_select"] = "Wiggle"
    (tmp_path / "block_1_Drag_trajectory.json").write_text(json.dumps(data))
    with pytest.raises(InvalidInstruction, match="Wiggle"):
        import_labels(tmp_path)
    with pytest.raises(InvalidInstruction, match="nothing-here is missing"):
        import_labels(tmp_path / "nothing-here")
