"""Targets that agree with a generated context: the real clip re-drawn from where a rollout put each
object, block by block."""

import numpy as np
import pytest
import torch

from dragstream_widget.models.toyworld.model import WEIGHTS_DIR, ToyWorldModel
from dragstream_widget.models.toyworld.world import (
    WorldConfig,
    object_centers,
    render_clip,
    render_shifted,
    sample_scene,
)
from lab.tests.helpers import fine_tune_smoke_args
from lab.toyworld import train
from lab.toyworld.aligned_targets import (
    aligned_clips,
    block_offsets,
    object_centroids,
    scene_colors,
)


def as_pixels(frames: np.ndarray) -> torch.Tensor:
    """``uint8 [..., H, W, 3]`` frames as ``float [..., 3, H, W]`` RGB."""
    return torch.as_tensor(frames).movedim(-1, -3).float()


def scenes_apart(count: int, seed: int) -> list:
    """Scenes whose objects stay whole and clear of the frame's border for 9 frames, so that their
    centroids are their centres."""
    rng, chosen = np.random.default_rng(seed), []
    while len(chosen) < count:
        scene = sample_scene(rng)
        clip = render_clip(scene, 9)
        inner = clip.full_masks[..., 2:-2, 2:-2].sum()
        if (clip.visible_masks == clip.full_masks).all() and inner == clip.full_masks.sum():
            chosen.append(scene)
    return chosen


def centres_on(frames: np.ndarray, scene) -> np.ndarray:
    """``[T, N, 2]`` centroids of the scene's objects found on ``uint8 [T, H, W, 3]`` frames."""
    return object_centroids(as_pixels(frames)[None], scene_colors([scene], "cpu"))[0][0].numpy()


def test_object_centroids_find_each_object_where_it_is_drawn_and_never_a_padded_one():
    scenes = scenes_apart(4, seed=3)
    clips = [render_clip(s, 6) for s in scenes]
    colors = scene_colors(scenes, "cpu")
    centroids, found = object_centroids(as_pixels(np.stack([c.frames for c in clips])), colors)
    assert colors.shape[1] > min(len(s.objects) for s in scenes)  # some scene is padded
    for i, (scene, clip) in enumerate(zip(scenes, clips)):
        count = len(scene.objects)
        assert found[i, :, :count].all() and not found[i, :, count:].any()
        np.testing.assert_allclose(centroids[i, :, :count].numpy(), clip.centers, atol=0.6)


def test_block_offsets_start_at_zero_follow_each_blocks_last_frame_and_carry_over_lost_objects():
    real = np.zeros((9, 2, 2))
    real[:, 0, 0] = np.arange(9)  # object 0 moves right one pixel a frame; object 1 sits at the origin
    centroids = np.array([[[2.0, 0.0], [0.0, 0.0]], [[7.0, 1.0], [3.0, 3.0]], [[0.0, 0.0], [0.0, 0.0]]])
    found = np.array([[True, True], [True, False], [False, False]])
    offsets = block_offsets(centroids, found, real, frames_per_block=3)
    assert (offsets[:3] == 0).all()
    # block 1 starts from the opening block's last frame (frame 2), where the rollout is the real clip
    assert (offsets[3:6] == 0).all()
    # block 2: object 0 was drawn at (7, 1) on frame 5, where it really is at (5, 0); object 1 was lost
    np.testing.assert_allclose(offsets[6:], np.broadcast_to([[2.0, 1.0], [0.0, 0.0]], (3, 2, 2)))


def test_a_rollout_that_drifted_gets_its_clip_redrawn_from_where_it_drifted_to():
    """A "rollout" that is the real clip with every object 3 px to the right from its second block on:
    the opening block's target stays real, and every later block's target is the shifted clip."""
    config = WorldConfig()
    scenes = scenes_apart(2, seed=7)
    drift = np.zeros((9, 3, 2))
    drift[3:, :, 0] = 3.0
    rollouts = np.stack([render_shifted(s, 9, drift[:, : len(s.objects)], config) for s in scenes])
    last_frames = as_pixels(rollouts[:, 2::3])
    redrawn = aligned_clips(scenes, last_frames, 9, 3, config)
    for scene, clip in zip(scenes, redrawn):
        real = render_clip(scene, 9).frames
        assert np.array_equal(clip[:3], real[:3])
        # block 1 follows the opening block, which did not drift; block 2 follows the drifted block 1
        assert np.abs(clip[3:6].astype(int) - real[3:6]).mean() < 0.5
        shifted = render_shifted(scene, 9, np.full((9, len(scene.objects), 2), [3.0, 0.0]), config)
        assert np.abs(clip[6:].astype(int) - shifted[6:]).mean() < 0.5
        assert np.abs(clip[6:].astype(int) - real[6:]).mean() > 1.0
        np.testing.assert_allclose(
            centres_on(clip[6:], scene), object_centers(scene, 9)[6:] + [3.0, 0.0], atol=0.6
        )


@pytest.fixture(scope="module")
def model():
    return ToyWorldModel.load(WEIGHTS_DIR)


def test_targets_of_a_real_context_stay_the_real_clip_and_follow_a_shifted_one(model):
    """Through the codec: with the real latents as the "rollout", the re-drawn targets are the real clip
    again (as close as the codec's round trip); with a rollout whose objects sit 4 px to the right, the
    later targets are drawn 4 px to the right; clips that read real context keep their latents."""
    scenes = scenes_apart(3, seed=11)
    real = np.stack([render_clip(s, 9).frames for s in scenes])
    latents = train.encode_dataset(model, real)
    own = torch.tensor([True, True, False])
    targets = train.rollout_aligned_targets(model, latents, latents, own, scenes)
    assert torch.equal(targets[2], latents[2])
    codec_error = (targets[:2] - latents[:2]).square().mean()
    drift = np.zeros((9, 3, 2))
    drift[:, :, 0] = 4.0
    moved = np.stack([render_shifted(s, 9, drift[:, : len(s.objects)]) for s in scenes])
    rollout = train.encode_dataset(model, moved)
    followed = train.rollout_aligned_targets(model, latents, rollout, own, scenes)
    moved_latents = train.encode_dataset(model, moved)
    later = slice(6, None)
    assert codec_error < 0.02
    assert (followed[:2, :, later] - moved_latents[:2, :, later]).square().mean() < 0.05
    assert (followed[:2, :, later] - latents[:2, :, later]).square().mean() > 0.1
    torch.testing.assert_close(followed[:2, :, :3], targets[:2, :, :3])  # the opening block stays real


def test_fine_tuning_on_rollouts_with_aligned_targets_runs_and_needs_rollouts(tmp_path):
    args = fine_tune_smoke_args(tmp_path, clips=2) + ["--clip-frames", "9", "--recovery-start", "0"]
    report = train.main(args + ["--recovery-context", "rollouts", "--aligned-targets"])
    assert report["train_config"]["aligned_targets"] and report["world_steps"] > 0
    assert np.isfinite(report["final_loss"])
    with pytest.raises(SystemExit):
        train.main(fine_tune_smoke_args(tmp_path / "refused", clips=2) + ["--aligned-targets"])
