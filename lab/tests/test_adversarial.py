import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lab.tests.helpers import fine_tune_smoke_args
from lab.toyworld import train
from lab.toyworld.adversarial import (
    LatentFrameDiscriminator,
    discriminator_loss,
    generator_loss,
    latent_frames,
)


def sharp_and_blurred(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent frames ``[count, 8, 16, 16]`` holding a hard-edged square, and the same frames blurred."""
    generator = torch.Generator().manual_seed(seed)
    sharp = torch.zeros(count, 8, 16, 16)
    for frame in sharp:
        top, left = torch.randint(2, 9, (2,), generator=generator).tolist()
        frame[:, top : top + 6, left : left + 6] = torch.randn(8, 1, 1, generator=generator).abs() + 1
    kernel = torch.ones(8, 1, 5, 5) / 25
    return sharp, F.conv2d(sharp, kernel, padding=2, groups=8)


def test_the_discriminator_learns_to_tell_sharp_frames_from_blurred_ones():
    torch.manual_seed(0)
    discriminator = LatentFrameDiscriminator(8, width=16)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.0, 0.99))
    losses = []
    for step in range(60):
        real, fake = sharp_and_blurred(32, step)
        loss = discriminator_loss(discriminator, real, fake)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    real, fake = sharp_and_blurred(64, 1000)  # frames it has not seen
    with torch.no_grad():
        assert (discriminator(real) > discriminator(fake)).float().mean() > 0.9
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])  # hinge loss: 2 at chance


def test_the_generator_loss_moves_generated_frames_towards_a_higher_score():
    torch.manual_seed(0)
    discriminator = LatentFrameDiscriminator(8, width=16)
    fake = torch.randn(16, 8, 16, 16, requires_grad=True)
    before = discriminator(fake).mean().item()
    generator_loss(discriminator, fake).backward()
    with torch.no_grad():
        moved = fake - 0.1 * fake.grad / fake.grad.norm() * fake.norm()
        assert discriminator(moved).mean().item() > before


def test_latent_frames_draws_single_frames_from_clips_with_their_opening_frames():
    clips = torch.arange(2 * 3 * 4 * 2 * 2, dtype=torch.float32).reshape(2, 3, 4, 2, 2)  # [B, C, F, h, w]
    frames, openings = latent_frames(clips, 5, torch.Generator().manual_seed(0), first=1)
    assert frames.shape == openings.shape == (5, 3, 2, 2)
    drawn = {tuple(clips[b, :, f].flatten().tolist()): b for b in range(2) for f in range(1, 4)}
    keys = [tuple(frame.flatten().tolist()) for frame in frames]
    assert all(key in drawn for key in keys)  # frames from ``first`` on only
    assert len(set(keys)) == 5  # without repeats
    for key, opening in zip(keys, openings):
        assert torch.equal(opening, clips[drawn[key], :, 0])  # the opening frame of the same clip


def squares(sizes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Latent frames ``[N, 8, 16, 16]``, each a hard-edged square of the given side at a random place."""
    frames = torch.zeros(len(sizes), 8, 16, 16)
    for frame, size in zip(frames, sizes.tolist()):
        top, left = torch.randint(0, 16 - size + 1, (2,), generator=generator).tolist()
        frame[:, top : top + size, left : left + size] = 1.0
    return frames


def size_pairs(count: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Opening frames, later frames that keep the opening square's size (real) and ones whose square has
    another size, at least two cells apart (fake); real and fake frames alone have the same sizes."""
    generator = torch.Generator().manual_seed(seed)
    opening_sizes = torch.randint(5, 10, (count,), generator=generator)
    changed = 5 + (opening_sizes - 5 + torch.randint(2, 4, (count,), generator=generator)) % 5
    return squares(opening_sizes, generator), squares(opening_sizes, generator), squares(changed, generator)


def trained_on_size_pairs(conditioned: bool) -> LatentFrameDiscriminator:
    torch.manual_seed(0)
    discriminator = LatentFrameDiscriminator(8, width=16, conditioned=conditioned)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.0, 0.99))
    for step in range(400):
        openings, real, fake = size_pairs(32, step)
        loss = discriminator_loss(discriminator, real, fake, openings, openings)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return discriminator


def test_a_conditioned_discriminator_tells_a_changed_size_from_the_opening_frame():
    """Only the opening frame tells a square that kept its size from one that changed: the conditioned
    discriminator learns it, the plain one stays near chance."""
    conditioned, plain = trained_on_size_pairs(conditioned=True), trained_on_size_pairs(conditioned=False)
    openings, real, fake = size_pairs(128, 1000)  # frames neither has seen
    with torch.no_grad():
        assert (conditioned(real, openings) > conditioned(fake, openings)).float().mean() > 0.75
        assert (plain(real) > plain(fake)).float().mean() < 0.65
    with pytest.raises(ValueError, match="reference"):
        conditioned(real)


def test_adversarial_fine_tuning_runs_logs_both_losses_and_resumes(tmp_path):
    args = fine_tune_smoke_args(tmp_path, clips=4)
    args += ["--adversarial-weight", "0.1", "--ema", "0.9"]
    report = train.main(args)
    assert report["world_steps"] > 0 and np.isfinite(report["final_loss"])
    assert np.isfinite(report["discriminator_loss"]) and np.isfinite(report["generator_loss"])
    assert report["train_config"]["adversarial_weight"] == 0.1 and report["train_config"]["ema"] == 0.9
    saved = torch.load(tmp_path / "resume.pt")
    assert "discriminator" in saved and "discriminator_optimizer" in saved
    again = train.main(args)  # resumes with the discriminator's state: the budget is already spent
    assert again["world_steps"] == report["world_steps"]


def test_adversarial_fine_tuning_on_own_rollouts_runs_with_a_conditioned_discriminator(tmp_path):
    args = fine_tune_smoke_args(tmp_path, clips=4)
    args += ["--adversarial-weight", "0.1", "--adversarial-on", "rollouts", "--rollout-batch", "2"]
    report = train.main(args)
    assert report["world_steps"] > 0 and np.isfinite(report["final_loss"])
    assert np.isfinite(report["discriminator_loss"]) and np.isfinite(report["generator_loss"])
    discriminator = torch.load(tmp_path / "resume.pt")["discriminator"]
    first_conv = next(v for k, v in discriminator.items() if k.endswith("original"))
    assert first_conv.shape[1] == 2 * 8  # generated frame and opening frame, 8 latent channels each
