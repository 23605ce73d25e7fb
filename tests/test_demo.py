import json

from dragstream_widget.__main__ import main


def test_demo_writes_video_pictures_and_metrics(tmp_path):
    main(["demo", "--out", str(tmp_path), "--blocks", "7"])
    for name in ("demo.mp4", "demo.gif", "drag_vs_nodrag.png", "plots.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 1000, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["frames_before_edit_identical"] is True
    assert metrics["edit"]["landed"] is not None
    # The edit moved the red circle towards its target (from 10 px away).
    assert metrics["edit"]["error_px"] < 10
    assert metrics["animation"]["frames_tracked"] > 0
    assert metrics["frames_per_second_no_drag"] > 0
    assert (tmp_path / "demo.mp4").read_bytes()[4:8] == b"ftyp"
