import json
import math

import numpy as np
import pytest

from dragstream_widget import load_model
from dragstream_widget.__main__ import main
from dragstream_widget.bench.drift import PROMPTS, frame_drift, run_variant, shuttle_edit, summarize
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG
from dragstream_widget.models.toyworld.scenes import object_region, opening_frames


def test_frame_drift_and_summary_by_hand():
    reference = {"mean": [0.0, 0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0, 1.0]}
    assert frame_drift({"mean": [0.1, -0.2, 0.0, 0.0], "std": [1.0, 1.5, 0.7, 1.0]}, reference).tolist() == (
        pytest.approx([0.1, 0.7, 0.3, 0.0])
    )

    def run(without: float, with_: float) -> dict:
        return {
            "variants": {
                "no drag": reference,
                "drag without ADSR": {"mean": [without] * 4, "std": [1.0] * 4},
                "drag with ADSR": {"mean": [with_] * 4, "std": [1.0] * 4},
            }
        }

    summary = summarize([run(0.4, 0.1), run(0.2, 0.3)], frames_per_block=2)
    assert summary["drag without ADSR"]["drift_mean"] == pytest.approx(0.3)
    assert summary["drag with ADSR"]["drift_per_block"] == pytest.approx([0.2, 0.2])
    paired = summary["drag with ADSR"]["minus_without_adsr"]  # differences -0.3 and +0.1
    assert paired["mean"] == pytest.approx(-0.1) and paired["lower_in_runs"] == 1
    assert paired["stderr"] == pytest.approx(np.std([-0.3, 0.1], ddof=1) / math.sqrt(2))
    assert summary["drag with ADSR"]["minus_without_adsr_last_block"]["mean"] == pytest.approx(-0.1)
    assert "minus_without_adsr" not in summary["drag without ADSR"]


def test_shuttle_edits_move_the_object_back_and_forth():
    prompt = "a red circle and a blue square on a striped background"
    frame = opening_frames(prompt, 0, 1)[-1]
    _, center = object_region(frame, "red")
    right, left = shuttle_edit(frame, "red", 0), shuttle_edit(frame, "red", 1)
    assert right.regions[0].targets[0][0] - center[0] == pytest.approx(6.0)
    assert left.regions[0].targets[0][0] - center[0] == pytest.approx(-6.0)
    assert shuttle_edit(frame, "purple", 0) is None  # not in this scene


def test_drift_bench_runs_every_variant_in_worker_processes(tmp_path, one_torch_thread):
    main(["bench", "drift", "--out", str(tmp_path), "--drags", "2", "--runs", "2", "--jobs", "2"])
    results = json.loads((tmp_path / "drift.json").read_text())
    run, second = results["runs"]
    assert (second["prompt"], second["seed"]) == (PROMPTS[1], 0)
    here = run_variant(load_model(), PROMPTS[1], 0, TOY_DRAG_CONFIG.without("adsr"), 2, TOY_DRAG_CONFIG)
    np.testing.assert_allclose(second["variants"]["drag without ADSR"]["std"], here["std"], atol=1e-5)
    frames = 3 * 3  # two dragged blocks and the one after, 3 latent frames each
    assert list(run["variants"]) == [
        "no drag",
        "drag without ADSR",
        "drag with ADSR",
        "drag with released ADSR",
    ]
    for name, stream in run["variants"].items():
        assert len(stream["mean"]) == len(stream["std"]) == frames
        assert stream["drags_applied"] == (0 if name == "no drag" else 2)
    for entry in results["summary"].values():
        assert entry["drift_mean"] > 0 and len(entry["drift_per_block"]) == 3
    assert (tmp_path / "drift.png").stat().st_size > 10_000
