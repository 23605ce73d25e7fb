from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "03_self_forcing.ipynb"


def test_self_forcing_notebook_skips_cleanly_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DRAGSTREAM_WAN_DIR", str(tmp_path / "no_wan"))
    monkeypatch.setenv("DRAGSTREAM_CHECKPOINT", str(tmp_path / "no_checkpoint.pt"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "Skipping: no weights at" in text and "DRAGSTREAM_WAN_DIR" in text
    assert not [o for o in outputs if "image/png" in o.get("data", {})]
