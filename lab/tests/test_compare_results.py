import json

import pytest

from lab.__main__ import main as lab


def write(path, summary, seconds):
    path.write_text(json.dumps({"settings": {"seconds": seconds}, "summary": summary, "cases": [{"n": 1}]}))
    return str(path)


def test_equal_runs_pass_whatever_their_times(tmp_path, capsys):
    summary = {"full": {"objmc": 3.8187164257925144, "psnr": None, "seconds": 1.0}}
    a = write(tmp_path / "a.json", summary, 100.0)
    b = write(tmp_path / "b.json", {"full": {**summary["full"], "seconds": 2.0}}, 120.0)
    result = lab(["compare-results", a, b])
    assert result["numbers"] == 2 and result["worst_relative_difference"] == 0.0  # objmc and cases[0]/n
    assert "2 numbers compared" in capsys.readouterr().out


def test_a_moved_score_or_a_missing_one_fails_and_is_named(tmp_path, capsys):
    a = write(tmp_path / "a.json", {"full": {"objmc": 3.0, "dai": 0.1}}, 1.0)
    moved = write(tmp_path / "moved.json", {"full": {"objmc": 3.001, "dai": 0.1}}, 1.0)
    with pytest.raises(SystemExit) as stop:
        lab(["compare-results", a, moved])
    assert stop.value.code == 1 and "/summary/full/objmc: 3.0 -> 3.001" in capsys.readouterr().out
    assert lab(["compare-results", a, moved, "--tolerance", "1e-3"])["differ"] == []
    missing = write(tmp_path / "missing.json", {"full": {"objmc": 3.0}}, 1.0)
    with pytest.raises(SystemExit):
        lab(["compare-results", a, missing])
    assert "/summary/full/dai: 0.1 -> (missing)" in capsys.readouterr().out
