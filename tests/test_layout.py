"""Where things live: one command line for the package and one for the lab, a package that never
reaches into the lab, and a wheel that carries what users run and none of the research record."""

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dragstream_widget"

# Besides code, the wheel carries only these: the toy weights, the built front end, the bench's cases.
DATA = ("dragstream_widget/models/toyworld/weights/", "dragstream_widget/widget/static/")
CASES = "dragstream_widget/bench/quality/revel_toyworld.json"


def sources(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*.py") if "__pycache__" not in path.parts]


def test_each_tree_runs_as_a_script_only_through_its_command_line():
    scripts = {
        path.relative_to(ROOT).as_posix()
        for path in sources(PACKAGE) + sources(ROOT / "lab")
        if re.search(r"^if __name__ == .__main__.:", path.read_text(), re.MULTILINE)
    }
    assert scripts == {"dragstream_widget/__main__.py", "lab/__main__.py"}


def test_the_package_never_reaches_into_the_lab_even_by_name():
    reach = re.compile(r"^\s*(from|import)\s+lab\b|import_module\(\s*[\"']lab\b", re.MULTILINE)
    assert [path.name for path in sources(PACKAGE) if reach.search(path.read_text())] == []


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*build, str(ROOT), "-w", str(out)], check=True, capture_output=True)
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return [name for name in archive.namelist() if ".dist-info/" not in name]


def test_the_wheel_carries_the_weights_the_front_end_and_the_bench_cases(wheel_files):
    weights = "dragstream_widget/models/toyworld/weights/"
    needed = {
        "dragstream_widget/__main__.py",
        weights + "toyworld.json",
        weights + "codec.safetensors",
        weights + "text_encoder.safetensors",
        weights + "transformer/config.json",
        weights + "transformer/diffusion_pytorch_model.safetensors",
        "dragstream_widget/widget/static/widget.js",
        "dragstream_widget/widget/static/widget.css",
        CASES,
    }
    assert needed <= set(wheel_files)


def test_the_wheel_holds_only_the_package_and_no_result_logs_or_card(wheel_files):
    assert [name for name in wheel_files if not name.startswith("dragstream_widget/")] == []
    record = [
        name
        for name in wheel_files
        if not name.endswith(".py") and not name.startswith(DATA) and name != CASES
    ]
    assert record == []
    assert [name for name in wheel_files if {"results", "card"} & set(name.split("/"))] == []
