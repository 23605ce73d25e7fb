import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from dragstream_widget.engine.session import StreamSession
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR, ToyWorldModel
from dragstream_widget.models.toyworld.world import render_clip, scene_from_prompt
from lab.tests.helpers import fine_tune_smoke_args
from lab.toyworld import train

PROMPT = "a red circle and a blue square on a striped background"


def test_training_smoke_run_writes_loadable_weights_and_resumes(tmp_path):
    report = train.main(["--out", str(tmp_path), "--smoke"])
    assert report["world_steps"] > 0 and np.isfinite(report["final_loss"])
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000
    backend = ToyWorldModel.load(tmp_path / "weights").backend()
    session = StreamSession(backend, PROMPT, seed=0)
    session.step()
    assert session.frames().shape == (3, 64, 64, 3)
    again = train.main(["--out", str(tmp_path), "--smoke"])  # resumes: the budget is already spent
    assert again["world_steps"] == report["world_steps"]


def test_object_cells_and_weights_cover_the_objects_grown_by_one_cell():
    scene = scene_from_prompt("a red square on a plain background", np.random.default_rng(0))
    clip = render_clip(scene, 2)
    cells = train.object_cells(clip.full_masks, 4)
    assert cells.shape == (2, 16, 16)
    ys, xs = np.nonzero(clip.full_masks[0, 0])
    assert cells[0, ys // 4, xs // 4].all() and 0 < cells[0].sum() < 16 * 16 / 2
    weights = train.loss_weights(torch.as_tensor(cells)[None], 4.0)[0]
    assert weights.shape == (2, 16, 16) and set(weights.unique().tolist()) == {1.0, 4.0}
    assert (weights[torch.as_tensor(cells)] == 4.0).all() and (weights == 4.0).sum() > cells.sum()


def test_context_noise_levels_lie_below_the_maximum_and_spare_some_clips():
    config = train.TrainConfig(context_noise=0.3, context_noise_probability=0.5)
    clean = torch.randn(64, 2, 6, 4, 4)
    noised, levels = train.noise_context(clean, 3, config)
    assert levels.shape == (64, 6) and (levels >= 0).all() and (levels < 0.3).all()
    assert torch.equal(levels[:, 0], levels[:, 2]) and torch.equal(levels[:, 3], levels[:, 5])  # per block
    spared = (levels == 0).all(dim=1)
    assert 10 < spared.sum() < 54  # about half of the clips keep a clean context
    torch.testing.assert_close(noised[spared], clean[spared])
    assert not torch.allclose(noised[~spared], clean[~spared])


def test_context_blur_rounds_the_recent_context_of_chosen_clips_and_keeps_the_opening_block():
    """A square of latent cells after the opening block comes out rounded (its corner lower than its
    centre, its mass kept, a flat background still flat); the opening block and unchosen clips are exact."""
    latents = torch.full((3, 8, 9, 16, 16), -0.5)
    latents[:, :, :, 5:11, 5:11] = 1.0
    torch.manual_seed(0)
    blurred = train.blur_context(
        latents, 3, train.TrainConfig(context_blur=1.5, context_blur_probability=1.0)
    )
    assert torch.equal(blurred[:, :, :3], latents[:, :, :3])
    later = blurred[:, :, 3:]
    assert (later[:, :, :, 5, 5] < later[:, :, :, 7, 7] - 0.1).all()  # the corner is rounded off
    torch.testing.assert_close(
        later.sum(dim=(-1, -2)), latents[:, :, 3:].sum(dim=(-1, -2)), rtol=1e-4, atol=1e-3
    )
    torch.testing.assert_close(later[:, :, :, 0, :3], torch.full_like(later[:, :, :, 0, :3], -0.5))
    spared = train.blur_context(latents, 3, train.TrainConfig(context_blur=1.5, context_blur_probability=0.0))
    assert torch.equal(spared, latents)


def test_fine_tuning_with_a_blurred_context_runs_and_records_its_settings(tmp_path):
    args = fine_tune_smoke_args(tmp_path, clips=2) + ["--recovery-start", "0"]
    report = train.main(args + ["--context-blur", "1.5", "--context-blur-probability", "0.75"])
    assert report["world_steps"] > 0 and np.isfinite(report["final_loss"])
    assert (report["train_config"]["context_blur"], report["train_config"]["context_blur_probability"]) == (
        1.5,
        0.75,
    )


def test_rounded_context_replaces_the_recent_context_of_chosen_clips_and_keeps_the_opening_block():
    clean, rounded = torch.randn(64, 2, 9, 4, 4), torch.randn(64, 2, 9, 4, 4)
    torch.manual_seed(0)
    mixed = train.rounded_context(clean, rounded, 3, 0.5)
    assert torch.equal(mixed[:, :, :3], clean[:, :, :3])
    took = (mixed[:, :, 3:] == rounded[:, :, 3:]).flatten(1).all(dim=1)
    kept = (mixed[:, :, 3:] == clean[:, :, 3:]).flatten(1).all(dim=1)
    assert (took ^ kept).all() and 10 < took.sum() < 54  # whole clips, about half of them
    assert torch.equal(train.rounded_context(clean, rounded, 3, 0.0), clean)


def test_rendered_rounded_clips_match_the_real_ones_but_for_the_objects_outlines():
    clips = train.render_dataset(3, 6, 64, seed=2, workers=1, rounding=2.0)
    frames, rounded = clips.frames, clips.rounded
    again = train.render_dataset(3, 6, 64, seed=2, workers=1)
    assert again.rounded is None and np.array_equal(
        frames, again.frames
    )  # the scenes of a run without rounding
    assert [s.prompt for s in again.scenes] == again.prompts == clips.prompts
    assert rounded.shape == frames.shape and not np.array_equal(rounded, frames)
    changed = np.abs(rounded.astype(int) - frames).max(axis=-1) > 40
    assert changed.mean() < 0.02  # only pixels along the outlines


def test_fine_tuning_with_a_rounded_context_runs_and_records_its_settings(tmp_path):
    args = fine_tune_smoke_args(tmp_path, clips=2) + ["--recovery-start", "0"]
    report = train.main(args + ["--context-rounding", "2", "--context-rounding-probability", "0.75"])
    assert report["world_steps"] > 0 and np.isfinite(report["final_loss"])
    settings = report["train_config"]
    assert (settings["context_rounding"], settings["context_rounding_probability"]) == (2.0, 0.75)


def test_fine_tuning_from_trained_weights_with_object_weighting_and_sampled_context(tmp_path):
    args = fine_tune_smoke_args(tmp_path, clips=4)
    args += ["--object-weight", "4", "--recovery-start", "0", "--recovery-context", "sampled"]
    args += ["--context-noise", "0.3", "--commit-sigma", "0.2"]
    report = train.main(args)
    assert report["world_steps"] > 0 and np.isfinite(report["final_loss"])
    assert ToyWorldModel.load(tmp_path / "weights").backend().commit_sigma == 0.2
    assert report["train_config"]["recovery_context"] == "sampled"
    tuned = ToyWorldModel.load(tmp_path / "weights")
    assert tuned.config == replace(ToyWorldModel.load(WEIGHTS_DIR).config, commit_sigma=0.2)


def test_loss_curves_plot_the_phases_a_run_logged(tmp_path):
    records = [{"phase": "codec", "step": k, "loss": 1 / k} for k in (1, 2, 3)]
    records += [{"phase": "world", "step": k, "loss": 2 / k, "recovery": k > 1} for k in (1, 2, 3)]
    for name, logged, panels in (("both", records, 2), ("fine_tune", records[3:], 1)):
        log = tmp_path / f"{name}.jsonl"
        log.write_text("\n".join(json.dumps(r) for r in logged))
        assert train.save_loss_curves(log, tmp_path / f"{name}.png")
        assert Image.open(tmp_path / f"{name}.png").width == pytest.approx(panels * 4.5 * 110, abs=2)
    unlogged = tmp_path / "short.jsonl"
    unlogged.write_text(json.dumps({"phase": "codec", "codec_psnr_db": 30.0}))  # a report, no loss
    assert not train.save_loss_curves(unlogged, tmp_path / "short.png")
    assert not (tmp_path / "short.png").exists()


def test_a_new_transformer_shape_trains_on_the_codec_of_trained_weights(tmp_path):
    args = [
        "--out",
        str(tmp_path),
        "--smoke",
        "--clips",
        "4",
        "--codec-from",
        str(WEIGHTS_DIR),
        "--layers",
        "3",
    ]
    report = train.main(args)
    assert report["codec_from"] == str(WEIGHTS_DIR) and "codec_seconds" not in report
    trained, shipped = ToyWorldModel.load(tmp_path / "weights"), ToyWorldModel.load(WEIGHTS_DIR)
    assert trained.config.num_layers == 3 and trained.config.codec == shipped.config.codec
    for name, value in shipped.codec.state_dict().items():
        torch.testing.assert_close(trained.codec.state_dict()[name], value)
    session = StreamSession(trained.backend(), PROMPT, seed=0)
    session.step()
    assert np.isfinite(session.latents().numpy()).all()
