import json

import numpy as np

from dragstream_widget.__main__ import main
from dragstream_widget.bench.gpu_pipeline import REFERENCE_LABELS, rescale_instruction
from dragstream_widget.labels import import_labels


def test_rescaled_drag_keeps_its_geometry():
    instruction = import_labels(REFERENCE_LABELS / "animation-monster").instruction
    small = rescale_instruction(instruction, (240, 416))
    assert small.frame_size == (240, 416) and small.regions[0].mask.shape == (240, 416)
    for big, half in zip(instruction.regions, small.regions):
        assert np.allclose(half.handle, (np.array(big.handle) + 0.5) / 2 - 0.5)
        assert abs(half.mask.sum() * 4 - big.mask.sum()) < 0.05 * big.mask.sum()
    assert np.isclose(small.regions[1].angle(5), instruction.regions[1].angle(5), atol=1e-2)
    assert rescale_instruction(instruction, (480, 832)) is instruction


def test_tiny_pipeline_streams_decodes_and_drags(tmp_path):
    out = tmp_path / "pipeline.json"
    labels = str(REFERENCE_LABELS / "editing-pigeon")
    result = main(["bench", "gpu-pipeline", "--tiny", "--blocks", "1", "--labels", labels, "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["resolution"] == "80x48" and result["latent_block"] == [16, 3, 6, 10]
    assert result["frames"] == [9, 48, 80, 3]  # 1 + 4 + 4 frames from the first three latent frames
    assert len(result["decode_seconds_per_block"]) == 1 and result["drag_mode"] == "edit"
    assert result["drag_iterations_per_block"][0] >= 1
