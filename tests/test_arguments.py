import argparse

import pytest

from dragstream_widget.__main__ import COMMANDS, Group
from dragstream_widget.__main__ import main as cli
from dragstream_widget.arguments import at_least, fraction, non_negative_number, positive_number


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


VERBS = [
    [name, *([verb] if isinstance(entry, Group) else [])]
    for name, entry in COMMANDS.items()
    for verb in (entry.verbs if isinstance(entry, Group) else [None])
]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_lists_its_options(verb, capsys):
    with pytest.raises(SystemExit) as stop:
        cli([*verb, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m dragstream_widget {' '.join(verb)} ")


@pytest.mark.parametrize(
    "argv, named",
    [
        ([], "VERB"),
        (["train"], "invalid choice: 'train'"),
        (["bench"], "BENCH"),
        (["bench", "speed", "--repeats", "0"], "--repeats"),
        (["bench", "gpu-smoke", "--blocks", "0"], "--blocks"),
        (["bench", "gpu-pipeline", "--blocks", "0"], "--blocks"),
        (["demo", "--out", "{out}", "--blocks", "0"], "--blocks"),
        (["bench", "drift", "--out", "{out}", "--runs", "0"], "--runs"),
        (["bench", "quality", "--out", "{out}", "--jobs", "0"], "--jobs"),
        (["labels", "import", "somewhere"], "--out"),
        (["labels", "convert"], "invalid choice: 'convert'"),
    ],
)
def test_the_command_line_stops_on_a_bad_argument_before_doing_any_work(argv, named, capsys, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        cli([str(out) if word == "{out}" else word for word in argv])
    assert stop.value.code == 2
    assert named in capsys.readouterr().err
    assert not out.exists()
