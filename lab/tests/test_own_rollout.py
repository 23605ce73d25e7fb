"""Self forcing's rollout: blocks generated one at a time after a real opening block, as streaming makes
them, with the gradient kept only at each block's exit step."""

import numpy as np
import pytest
import torch

from dragstream_widget.models.causal_wan import clean_noisy_mask
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR, ToyWorldModel
from lab.tests.helpers import fine_tune_smoke_args
from lab.toyworld import train


@pytest.fixture(scope="module")
def model_and_clips():
    model = ToyWorldModel.load(WEIGHTS_DIR)
    clips = train.render_dataset(6, 9, model.config.codec.frame_size, seed=5, workers=1)
    latents = train.encode_dataset(model, clips.frames)
    text = model.text_encoder(model.text_encoder.token_ids(clips.prompts))
    return model, latents, text


def count_passes(transformer) -> tuple[list[bool], torch.utils.hooks.RemovableHandle]:
    """Records, per transformer call, whether it ran with gradient."""
    calls: list[bool] = []
    handle = transformer.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    return calls, handle


@pytest.mark.parametrize("exit_step", [0, 3])
def test_each_block_keeps_the_gradient_of_its_exit_step_alone(model_and_clips, exit_step):
    model, latents, text = model_and_clips
    calls, handle = count_passes(model.transformer)
    model.transformer.requires_grad_(True)
    try:
        generated = train.own_rollout(model.transformer, latents[:2], text[:2], model.config, exit_step)
        blocks = latents.shape[2] // model.config.frames_per_block - 1
        assert generated.shape == (2, *latents.shape[1:2], latents.shape[2] - 3, *latents.shape[3:])
        assert len(calls) == blocks * (exit_step + 1) and sum(calls) == blocks
        generated.square().mean().backward()
        assert all(p.grad is not None for p in model.transformer.proj_out.parameters())
    finally:
        handle.remove()
        model.transformer.zero_grad(set_to_none=True)
        model.transformer.requires_grad_(False)


def test_the_rollout_continues_its_own_clip(model_and_clips):
    """With the trained weights, the first generated block is far closer to its clip's real next block than
    to another clip's, and later blocks stray further (they follow generated context)."""
    model, latents, text = model_and_clips
    torch.manual_seed(0)
    with torch.no_grad():
        generated = train.own_rollout(model.transformer, latents, text, model.config, exit_step=3)
    real = latents[:, :, 3:]
    error = (generated - real).square().mean(dim=(1, 3, 4))  # [clips, frames]
    other_clip = (generated - real.roll(1, dims=0)).square().mean(dim=(1, 3, 4))
    assert error[:, :3].mean() < 0.25 * other_clip[:, :3].mean()
    assert error[:, 3:].mean() > error[:, :3].mean()
    assert torch.isfinite(generated).all() and 0.8 < generated.std() < 1.2  # latents are normalised


def test_training_on_clips_longer_than_the_window_on_streamed_context_saves_its_sinks(tmp_path):
    args = fine_tune_smoke_args(tmp_path, clips=2) + ["--clip-frames", "12"]
    report = train.main(
        args + ["--sink-frames", "3", "--recovery-start", "0", "--recovery-context", "rollouts"]
    )
    assert report["train_config"]["clip_frames"] == 12 and report["world_steps"] > 0
    assert report["train_config"]["recovery_context"] == "rollouts" and np.isfinite(report["final_loss"])
    saved = ToyWorldModel.load(tmp_path / "weights").config
    assert (saved.cache_frames, saved.sink_frames) == (9, 3) and saved.window_blocks() == (3, 1)
    for bad in (["--sink-frames", "9"], ["--sink-frames", "2"], ["--clip-frames", "7"]):
        with pytest.raises(SystemExit):
            train.main(["--out", str(tmp_path / "refused"), "--smoke", "--init", str(WEIGHTS_DIR), *bad])


@pytest.mark.parametrize("kind", ["rollouts", "last_step", "sampled"])
def test_recovery_context_gives_the_chosen_clips_the_models_own_version(model_and_clips, kind):
    """Every clip chosen (probability 1) reads the model's own version of itself; with "rollouts" that is
    the clip streamed from its real opening block, exactly as ``own_rollout`` makes it, and with "sampled"
    each later block sampled over the real ones before it; the opening block stays real in both."""
    model, latents, text = model_and_clips
    cfg = model.config
    frames, tpf = latents.shape[2], model.transformer.tokens_per_frame(*latents.shape[3:])
    mask = clean_noisy_mask(frames, cfg.frames_per_block, tpf, latents.device, *cfg.window_blocks())
    positions = torch.arange(frames).repeat(2)
    config = train.TrainConfig(recovery_context=kind, recovery_probability=1.0)
    torch.manual_seed(1)
    context, own = train.recovery_context(model.transformer, latents, text, positions, mask, cfg, config)
    assert own.all()
    assert context.shape == latents.shape and torch.isfinite(context).all()
    per_frame_error = (context - latents).square().mean(dim=(1, 3, 4))  # [clips, frames]
    assert (per_frame_error > 1e-4).all() if kind == "last_step" else (per_frame_error[:, 3:] > 1e-4).all()
    if kind != "last_step":
        torch.testing.assert_close(context[:, :, :3], latents[:, :, :3], rtol=0, atol=0)
    if kind == "rollouts":
        torch.manual_seed(1)
        torch.rand(len(latents))  # the draw that chose the clips
        with torch.no_grad():
            streamed = train.own_rollout(model.transformer, latents, text, cfg, exit_step=3)
        torch.testing.assert_close(context[:, :, 3:], streamed)
        # Streamed context strays from the real clip block by block, further than one pass over it does.
        later = per_frame_error[:, 6:].mean()
        torch.manual_seed(1)
        one_pass, _ = train.recovery_context(
            model.transformer,
            latents,
            text,
            positions,
            mask,
            cfg,
            train.TrainConfig(recovery_probability=1.0),
        )
        assert later > 2 * (one_pass - latents).square().mean(dim=(1, 3, 4))[:, 6:].mean()
    spared, none = train.recovery_context(
        model.transformer, latents, text, positions, mask, cfg, train.TrainConfig(recovery_probability=0.0)
    )
    assert spared is latents and not none.any()
