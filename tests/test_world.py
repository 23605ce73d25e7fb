import math

import numpy as np
import pytest

from dragstream_widget.models.toyworld import world as w


def clip_for(seed=0, frames=24, **config):
    config = w.WorldConfig(**config)
    return w.render_clip(w.sample_scene(np.random.default_rng(seed), config), frames, config)


def obj(
    shape="square", color="red", position=(20.0, 20.0), velocity=(0.0, 0.0), angle=0.0, spin=0.0, radius=8.0
):
    return w.ObjectSpec(shape, color, radius, position, velocity, angle, spin)


def plain():
    return w.Background("plain", w.BACKGROUND_PALETTES[0])


def test_seeded_and_deterministic():
    a, b, c = clip_for(1), clip_for(1), clip_for(2)
    assert np.array_equal(a.frames, b.frames) and a.prompt == b.prompt
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (24, 64, 64, 3) and a.frames.dtype == np.uint8


def test_prompts_parse_back_to_their_scenes_and_tokenize():
    for seed in range(30):
        scene = w.sample_scene(np.random.default_rng(seed))
        spec = w.parse_prompt(scene.prompt)
        assert spec.objects == tuple((o.color, o.shape) for o in scene.objects)
        assert spec.background == scene.background.kind
        ids = w.tokenize(scene.prompt)
        words = [w.VOCABULARY[i] for i in ids if i]
        assert " ".join(words).replace(" ,", ",") == scene.prompt
    with pytest.raises(ValueError, match="unknown word 'dragon'"):
        w.tokenize("a red dragon on a plain background")
    with pytest.raises(ValueError, match="expected 'a <colour> <shape>'"):
        w.parse_prompt("a red on a plain background")


def test_masks_centres_and_colours_agree():
    scene = w.Scene((obj(position=(20.0, 24.0)),), plain())
    clip = w.render_clip(scene, 1)
    ys, xs = np.nonzero(clip.full_masks[0, 0])
    assert abs(xs.mean() - 20.0) < 0.5 and abs(ys.mean() - 24.0) < 0.5
    assert np.array_equal(clip.visible_masks[0, 0], clip.full_masks[0, 0])
    assert tuple(clip.frames[0, 24, 20]) == w.OBJECT_COLORS["red"]


def test_front_object_occludes_the_back_one():
    scene = w.Scene((obj(color="red", position=(20.0, 20.0)), obj("circle", "blue", (26.0, 20.0))), plain())
    clip = w.render_clip(scene, 1)
    back_visible, back_full = clip.visible_masks[0, 0], clip.full_masks[0, 0]
    front_visible, front_full = clip.visible_masks[0, 1], clip.full_masks[0, 1]
    assert np.array_equal(front_visible, front_full)
    overlap = back_full & front_full
    assert overlap.sum() > 20 and not (back_visible & overlap).any()
    assert np.all(back_visible <= back_full)


def test_bounces_stay_in_the_frame_and_leaving_scenes_come_back():
    scene = w.Scene((obj("circle", velocity=(3.0, 1.3), radius=6.0),), plain())
    clip = w.render_clip(scene, 200)
    assert (clip.centers >= 6.0 - 1e-6).all() and (clip.centers <= 63 - 6.0 + 1e-6).all()
    leaving = w.render_clip(w.Scene(scene.objects, plain(), leaves_frame=True), 200)
    gone = np.flatnonzero(~leaving.in_frame[:, 0])
    assert len(gone) > 0  # it leaves ...
    assert leaving.in_frame[gone[0] :, 0].any()  # ... and comes back


def test_rotation_advances_by_the_angular_velocity():
    clip = w.render_clip(w.Scene((obj(angle=0.1, spin=0.05),), plain()), 5)
    assert np.allclose(np.diff(clip.angles[:, 0]), 0.05)
    turned = w.shape_template("square", 8.0, math.pi / 2, 64, (20.0, 20.0))
    assert np.allclose(turned, w.shape_template("square", 8.0, 0.0, 64, (20.0, 20.0)), atol=1e-6)


def test_segmentation_recovers_a_visible_mask():
    clip = clip_for(3)
    for i, o in enumerate(clip.scene.objects):
        truth = clip.visible_masks[0, i]
        if truth.sum() < 30:
            continue
        found = w.segment_object(clip.frames[0], o.color)
        iou = (found & truth).sum() / (found | truth).sum()
        assert iou > 0.8


def test_scene_from_prompt_honours_the_prompt():
    prompt = "a green star, an orange triangle and a white circle on a checkered background"
    scene = w.scene_from_prompt(prompt, np.random.default_rng(0))
    assert scene.prompt == prompt and not scene.leaves_frame
    assert [o.shape for o in scene.objects] == ["star", "triangle", "circle"]
