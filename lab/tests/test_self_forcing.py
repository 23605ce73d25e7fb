"""The bidirectional teacher and the Self-Forcing stage: rollouts as streaming makes them, the gradient
of distribution matching, guidance, and both command lines end to end on a tiny model."""

import copy

import pytest
import torch

from dragstream_widget.engine.session import StreamSession
from dragstream_widget.models.toyworld.codec import CodecConfig
from dragstream_widget.models.toyworld.model import ToyWorldConfig, ToyWorldModel
from lab.toyworld import self_forcing, teacher

TINY = ToyWorldConfig(
    num_layers=2,
    num_heads=2,
    head_dim=16,
    ffn_dim=32,
    text_dim=16,
    codec=CodecConfig(widths=(16, 16, 16)),
    cache_frames=9,
    sink_frames=3,
    commit_sigma=0.1,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = ToyWorldModel.untrained(TINY, seed=3).to("cpu")
    folder = tmp_path_factory.mktemp("tiny") / "weights"
    model.save(folder)
    text = model.text_encoder(model.text_encoder.token_ids(teacher.SHEET_PROMPTS[:2]))
    return model, folder, text


def latent_shape(frames: int, batch: int = 2) -> tuple[int, ...]:
    size = TINY.codec.latent_size
    return (batch, TINY.codec.latent_channels, frames, size, size)


def passes_with_gradient(transformer) -> tuple[list[bool], object]:
    calls: list[bool] = []
    return calls, transformer.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))


@pytest.mark.parametrize("with_opening", [True, False])
def test_a_rollout_keeps_the_gradient_of_each_blocks_exit_step_alone(tiny, with_opening):
    model, _, text = tiny
    transformer = copy.deepcopy(model.transformer).requires_grad_(True)
    opening = torch.randn(latent_shape(3)) if with_opening else None
    exit_steps = [3, 0, 1, 2]
    calls, handle = passes_with_gradient(transformer)
    clip = self_forcing.student_rollout(transformer, text, opening, 12, TINY, exit_steps, latent_shape(12))
    handle.remove()
    used = exit_steps[: 3 if with_opening else 4]
    assert clip.shape == latent_shape(12) and torch.isfinite(clip).all()
    assert len(calls) == sum(step + 1 for step in used) and sum(calls) == len(used)
    if with_opening:
        assert torch.equal(clip[:, :, :3], opening)
    clip.square().mean().backward()
    assert transformer.proj_out.weight.grad.abs().sum() > 0


def test_distribution_matching_pushes_clips_from_the_critics_x0_towards_the_teachers(tiny):
    model, _, text = tiny
    real, fake = model.transformer, copy.deepcopy(model.transformer)
    with torch.no_grad():
        fake.proj_out.bias.add_(0.3)
    generated = torch.randn(latent_shape(6), requires_grad=True)
    sigma = torch.tensor([0.5, 0.8])
    torch.manual_seed(1)
    self_forcing.distribution_matching_loss(generated, real, fake, text, sigma, guidance=1.0).backward()
    torch.manual_seed(1)
    noisy = (1 - sigma.view(-1, 1, 1, 1, 1)) * generated.detach() + sigma.view(
        -1, 1, 1, 1, 1
    ) * torch.randn_like(generated)
    with torch.no_grad():
        real_x0 = teacher.guided_x0(real, noisy, sigma, text, 1.0)
        fake_x0 = noisy - sigma.view(-1, 1, 1, 1, 1) * teacher.whole_clip_flow(fake, noisy, sigma, text)
    normaliser = (generated.detach() - real_x0).abs().mean(dim=(1, 2, 3, 4), keepdim=True)
    expected = (fake_x0 - real_x0) / normaliser / generated.numel()
    assert torch.allclose(generated.grad, expected, atol=1e-6)
    generated.grad = None
    self_forcing.distribution_matching_loss(generated, real, real, text, sigma, guidance=1.0).backward()
    assert generated.grad.abs().max() == 0  # a critic that agrees with the teacher moves nothing


def test_guidance_of_one_is_the_conditional_prediction_and_more_extrapolates_from_the_unconditional(tiny):
    model, _, text = tiny
    noisy, sigma = torch.randn(latent_shape(6)), torch.tensor([0.3, 0.9])
    with torch.no_grad():
        conditional = teacher.guided_x0(model.transformer, noisy, sigma, text, 1.0)
        unconditional = teacher.guided_x0(model.transformer, noisy, sigma, torch.zeros_like(text), 1.0)
        guided = teacher.guided_x0(model.transformer, noisy, sigma, text, 3.0)
    assert torch.allclose(guided, unconditional + 3.0 * (conditional - unconditional), atol=1e-5)


def test_teacher_and_self_forcing_train_save_resume_and_stream(tiny, tmp_path):
    _, folder, _ = tiny
    teacher_report = teacher.main(["--out", str(tmp_path / "teacher"), "--smoke", "--init", str(folder)])
    assert teacher_report["steps"] > 0 and (tmp_path / "teacher" / "samples.png").stat().st_size > 0
    argv = [
        "--out",
        str(tmp_path / "sf"),
        "--smoke",
        "--init",
        str(folder),
        "--teacher",
        str(tmp_path / "teacher" / "weights"),
    ]
    first = self_forcing.main(argv)
    resumed = self_forcing.main(argv + ["--minutes", str((first["seconds"] + 0.5) / 60)])  # one step more
    assert 0 < first["steps"] < resumed["steps"] and resumed["critic_loss"] > 0
    student = ToyWorldModel.load(tmp_path / "sf" / "weights")
    assert student.config.sampler_update == "renoise" and student.config.window_blocks() == (3, 1)
    backend = student.backend(int8_streaming=False)
    session = StreamSession(backend, teacher.SHEET_PROMPTS[0], seed=0)
    session.step()
    assert session.frames().shape[0] == TINY.frames_per_block
    with pytest.raises(SystemExit):
        self_forcing.main(argv[:-2] + ["--teacher", str(folder), "--rollout-frames", "7"])
