import argparse

import pytest

from dragstream_widget.__main__ import main as cli
from dragstream_widget.arguments import at_least, fraction, non_negative_number, positive_number
from dragstream_widget.bench import cpu_speed
from lab.toyworld import drag_checks, drag_sweep, evaluate, train


def test_number_types_accept_in_range_values_and_say_what_is_wrong():
    assert at_least(0)("0") == 0 and at_least(1)("12") == 12
    with pytest.raises(argparse.ArgumentTypeError, match="must be at least 1, got 0"):
        at_least(1)("0")
    with pytest.raises(argparse.ArgumentTypeError, match="is not an integer"):
        at_least(1)("2.5")
    assert positive_number("0.25") == 0.25
    for bad in ("0", "-1", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive number"):
            positive_number(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="not a number"):
        positive_number("soon")
    assert non_negative_number("0") == 0.0 and non_negative_number("2.5") == 2.5
    for bad in ("-0.5", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="zero or a positive number"):
            non_negative_number(bad)
    assert fraction("0") == 0.0 and fraction("1") == 1.0 and fraction("0.9") == 0.9
    for bad in ("-0.1", "1.5", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="between 0 and 1"):
            fraction(bad)


@pytest.mark.parametrize(
    "run, argv, named",
    [
        (cpu_speed.main, ["--blocks", "0"], "--blocks"),
        (cpu_speed.main, ["--repeats", "0"], "--repeats"),
        (drag_checks.main, ["--seeds", "0"], "--seeds"),
        (drag_checks.main, ["--rotations-after", "0"], "--rotation-frames"),
        (drag_checks.main, ["--sheet", "rotations.png"], "--rotations-after"),
        (drag_sweep.main, ["--workers", "0"], "--workers"),
        (evaluate.main, ["--out", "{out}", "--scenes", "0"], "--scenes"),
        (train.main, ["--out", "{out}", "--batch", "0"], "--batch"),
        (train.main, ["--out", "{out}", "--minutes", "-1"], "--minutes"),
        (train.main, ["--out", "{out}", "--recovery-probability", "2"], "--recovery-probability"),
        (train.main, ["--out", "{out}", "--recovery-start", "1.5"], "--recovery-start"),
        (train.main, ["--out", "{out}", "--context-noise", "-0.1"], "--context-noise"),
        (train.main, ["--out", "{out}", "--context-rounding", "-1"], "--context-rounding"),
        (cli, ["demo", "--out", "{out}", "--blocks", "0"], "--blocks"),
        (cli, ["bench", "drift", "--out", "{out}", "--runs", "0"], "--runs"),
        (cli, ["bench", "quality", "--out", "{out}", "--jobs", "0"], "--jobs"),
    ],
)
def test_scripts_stop_on_an_out_of_range_argument_before_doing_any_work(run, argv, named, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        run(argv)
    assert stop.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "{out}").exists()


def test_evaluation_refuses_too_few_frames_for_a_generated_block(capsys, tmp_path):
    with pytest.raises(SystemExit):
        evaluate.main(["--out", str(tmp_path / "out"), "--frames", "2"])
    assert "--frames must cover the opening block" in capsys.readouterr().err
