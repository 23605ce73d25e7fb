import pytest

from lab.__main__ import VERBS
from lab.__main__ import main as lab


@pytest.mark.parametrize("verb", VERBS)
def test_every_lab_verb_lists_its_options(verb, capsys):
    with pytest.raises(SystemExit) as stop:
        lab([verb, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m lab {verb} ")


@pytest.mark.parametrize(
    "argv, named",
    [
        ([], "VERB"),
        (["demo"], "invalid choice: 'demo'"),
        (["drag-checks", "--seeds", "0"], "--seeds"),
        (["drag-checks", "--rotations-after", "0"], "--rotation-frames"),
        (["drag-checks", "--sheet", "rotations.png"], "--rotations-after"),
        (["drag-sweep", "--workers", "0"], "--workers"),
        (["evaluate", "--out", "{out}", "--scenes", "0"], "--scenes"),
        (["evaluate", "--out", "{out}", "--frames", "2"], "--frames must cover the opening block"),
        (["train", "--out", "{out}", "--batch", "0"], "--batch"),
        (["train", "--out", "{out}", "--minutes", "-1"], "--minutes"),
        (["train", "--out", "{out}", "--recovery-probability", "2"], "--recovery-probability"),
        (["train", "--out", "{out}", "--recovery-start", "1.5"], "--recovery-start"),
        (["train", "--out", "{out}", "--context-noise", "-0.1"], "--context-noise"),
        (["train", "--out", "{out}", "--context-rounding", "-1"], "--context-rounding"),
        (["scorecard", "--out", "{out}", "--jobs", "0"], "--jobs"),
        (["shape-probe", "--out", "{out}", "--scenes", "0"], "--scenes"),
    ],
)
def test_the_lab_stops_on_a_bad_argument_before_doing_any_work(argv, named, capsys, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        lab([str(out) if word == "{out}" else word for word in argv])
    assert stop.value.code == 2
    assert named in capsys.readouterr().err
    assert not out.exists()
