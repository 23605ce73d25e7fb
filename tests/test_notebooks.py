from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def run_notebook(name: str, tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return notebook


def test_quickstart_runs_top_to_bottom(tmp_path):
    notebook = run_notebook("01_quickstart.ipynb", tmp_path)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {}) or "image/gif" in o.get("data", {})]
    assert len(images) >= 4
    assert (tmp_path / "quickstart.gif").stat().st_size > 10_000
    text = "".join(o.get("text", "") for o in outputs)
    # Undo goes by the person's actions: the animation with its blocks, then the edit, and no further.
    assert "undid the animate\nundid the edit\nblocks after undo: 5" in text, text
    assert any("asked 45 degrees, turned" in o.get("text", "") for o in outputs)  # the scripted rotation


def test_ablation_notebook_runs_top_to_bottom(tmp_path):
    notebook = run_notebook("02_ablation.ipynb", tmp_path)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert (tmp_path / "ablation_frames.png").stat().st_size > 10_000
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the variants' frames and the drift plot
    tables = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert any("| full |" in t and "| no_adsr |" in t for t in tables)  # this case's metrics
    assert any("Frechet (proxy)" in t and "| sg_i2v |" in t for t in tables)  # the saved bench table
    assert (tmp_path / "drift_small" / "drift.png").stat().st_size > 10_000  # repeated drags, run here
    assert len(images) >= 4  # and the saved repeated-drags figure
