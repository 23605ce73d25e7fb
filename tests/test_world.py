import math

import numpy as np
import pytest

from dragstream_widget.geometry import mask_iou
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


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def erode(mask):
    """Pixels whose 4-neighbours are all in ``mask``."""
    padded = np.pad(mask, 1)
    return mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


def test_seeded_and_deterministic():
    a, b, c = clip_for(1), clip_for(1), clip_for(2)
    for name in ("frames", "centers", "angles", "visible_masks", "full_masks", "in_frame"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.prompt == b.prompt
    assert not np.array_equal(a.frames, c.frames)
    n = len(a.scene.objects)
    assert a.frames.shape == (24, 64, 64, 3) and a.frames.dtype == np.uint8
    assert a.centers.shape == (24, n, 2) and a.angles.shape == (24, n) and a.in_frame.shape == (24, n)
    assert a.visible_masks.shape == a.full_masks.shape == (24, n, 64, 64) and a.full_masks.dtype == bool


def test_size_and_radius_scale_with_the_config():
    for seed in range(10):
        clip = clip_for(seed, frames=2, size=128)
        assert clip.frames.shape == (2, 128, 128, 3)
        assert all(14.0 <= o.radius <= 24.0 for o in clip.scene.objects)
    with pytest.raises(ValueError, match="one colour per object"):
        w.WorldConfig(max_objects=9)
    with pytest.raises(ValueError, match="does not fit"):
        w.WorldConfig(radius_range=(7.0, 40.0))


def test_scenes_cover_every_shape_background_colour_and_count():
    scenes = [w.sample_scene(np.random.default_rng(seed)) for seed in range(300)]
    assert {o.shape for s in scenes for o in s.objects} == set(w.SHAPES)
    assert {o.color for s in scenes for o in s.objects} == set(w.OBJECT_COLORS)
    assert {s.background.kind for s in scenes} == set(w.BACKGROUNDS)
    assert {len(s.objects) for s in scenes} == {1, 2, 3}
    assert any(s.leaves_frame for s in scenes) and not all(s.leaves_frame for s in scenes)
    assert all(len({o.color for o in s.objects}) == len(s.objects) for s in scenes)


def test_background_colours_stay_far_from_object_colours():
    backgrounds = np.array([c for pair in w.BACKGROUND_PALETTES for c in pair], float)
    objects = np.array(list(w.OBJECT_COLORS.values()), float)
    assert np.linalg.norm(backgrounds[:, None] - objects[None], axis=-1).min() > 100
    for kind in w.BACKGROUNDS:
        image = w.render_background(w.Background(kind, w.BACKGROUND_PALETTES[1], 6.0, math.pi / 4), 64)
        assert image.shape == (64, 64, 3)
        assert (kind == "plain") == (len(np.unique(image.reshape(-1, 3), axis=0)) == 1)


def test_prompts_parse_back_to_their_scenes_and_tokenize():
    for seed in range(60):
        scene = w.sample_scene(np.random.default_rng(seed))
        spec = w.parse_prompt(scene.prompt)
        assert spec.objects == tuple((o.color, o.shape) for o in scene.objects)
        assert spec.background == scene.background.kind
        ids = w.tokenize(scene.prompt)
        assert len(ids) == 16 and ids[-1] == 0
        words = [w.VOCABULARY[i] for i in ids if i]
        assert " ".join(words).replace(" ,", ",") == scene.prompt
    assert w.parse_prompt("a red circle, a blue square and a green star on a dotted background").objects == (
        ("red", "circle"),
        ("blue", "square"),
        ("green", "star"),
    )


def test_vocabulary_and_tokenizer_errors():
    assert w.VOCABULARY[0] == "<pad>" and len(set(w.VOCABULARY)) == len(w.VOCABULARY)
    assert set(w.SHAPES) | set(w.OBJECT_COLORS) | set(w.BACKGROUNDS) <= set(w.VOCABULARY)
    assert w.tokenize("a red circle on a plain background", max_len=7) == [
        w.VOCABULARY.index(word) for word in ("a", "red", "circle", "on", "a", "plain", "background")
    ]
    with pytest.raises(ValueError, match="unknown word 'dragon'"):
        w.tokenize("a red dragon on a plain background")
    with pytest.raises(ValueError, match="at most 4"):
        w.tokenize("a red circle on a plain background", max_len=4)
    with pytest.raises(ValueError, match="expected 'a <colour> <shape>'"):
        w.parse_prompt("a red on a plain background")
    with pytest.raises(ValueError, match="backgrounds: plain"):
        w.parse_prompt("a red circle on a wavy background")


def test_masks_centres_and_colours_agree():
    checked = 0
    for seed in range(20):
        clip = clip_for(seed, frames=12)
        assert not (clip.visible_masks & ~clip.full_masks).any()
        assert np.array_equal(clip.in_frame, clip.full_masks.any(axis=(2, 3)))
        for t in range(12):
            for i, o in enumerate(clip.scene.objects):
                full = clip.full_masks[t, i]
                others = np.delete(clip.full_masks[t], i, axis=0).any(axis=0)
                touches_border = full[0].any() or full[-1].any() or full[:, 0].any() or full[:, -1].any()
                if not full.any() or touches_border or (full & others).any():
                    continue
                ys, xs = np.nonzero(clip.visible_masks[t, i])
                assert abs(xs.mean() - clip.centers[t, i, 0]) < 0.5
                assert abs(ys.mean() - clip.centers[t, i, 1]) < 0.5
                inner = erode(erode(full)) & erode(erode(~others))  # away from every edge
                assert inner.any()
                assert (clip.frames[t][inner] == w.OBJECT_COLORS[o.color]).all()
                checked += 1
    assert checked > 200


def test_front_object_occludes_the_back_one():
    scene = w.Scene((obj(color="red", position=(20.0, 20.0)), obj("circle", "blue", (26.0, 20.0))), plain())
    clip = w.render_clip(scene, 1)
    back_visible, back_full = clip.visible_masks[0, 0], clip.full_masks[0, 0]
    front_visible, front_full = clip.visible_masks[0, 1], clip.full_masks[0, 1]
    assert np.array_equal(front_visible, front_full)
    overlap = back_full & front_full
    assert overlap.sum() > 20 and not (back_visible & overlap).any()
    assert np.array_equal(back_visible, back_full & ~front_full)
    assert tuple(clip.frames[0, 20, 26]) == w.OBJECT_COLORS["blue"]  # the front colour wins the overlap


def test_bounces_keep_objects_in_the_frame():
    scene = w.Scene((obj("circle", velocity=(3.0, 1.3), radius=6.0),), plain())
    clip = w.render_clip(scene, 200)
    assert (clip.centers >= 6.0 - 1e-6).all() and (clip.centers <= 63 - 6.0 + 1e-6).all()
    assert np.ptp(clip.centers[:, 0, 0]) > 45  # it did travel from wall to wall
    for seed in range(10):
        config = w.WorldConfig(leave_probability=0.0)
        clip = w.render_clip(w.sample_scene(np.random.default_rng(seed), config), 120, config)
        radii = np.array([o.radius for o in clip.scene.objects])
        assert clip.in_frame.all()
        assert (clip.centers >= radii[:, None] - 1e-6).all()
        assert (clip.centers <= 63 - radii[:, None] + 1e-6).all()


def test_leaving_scenes_leave_the_frame_and_come_back():
    config = w.WorldConfig(leave_probability=1.0, speed_range=(1.5, 2.0))
    scene = w.sample_scene(np.random.default_rng(4), config)
    assert scene.leaves_frame
    clip = w.render_clip(scene, 300, config)
    came_back = False
    for i in range(len(scene.objects)):
        gone = np.flatnonzero(~clip.in_frame[:, i])
        came_back |= len(gone) > 0 and bool(clip.in_frame[gone[0] :, i].any())
    assert came_back
    assert clip.centers.min() < -clip.scene.objects[0].radius or clip.centers.max() > 63


def test_rotation_advances_by_the_angular_velocity_and_is_visible():
    clip = w.render_clip(w.Scene((obj(angle=0.1, spin=0.05),), plain()), 5)
    assert np.allclose(np.diff(clip.angles[:, 0]), 0.05)
    assert not np.array_equal(clip.full_masks[0, 0], clip.full_masks[4, 0])
    square = w.shape_template("square", 8.0, 0.0, 64, (20.0, 20.0))
    assert np.allclose(w.shape_template("square", 8.0, math.pi / 2, 64, (20.0, 20.0)), square, atol=1e-6)
    assert np.abs(w.shape_template("square", 8.0, math.pi / 4, 64, (20.0, 20.0)) - square).sum() > 20
    circle = w.shape_template("circle", 8.0, 0.0, 64, (20.3, 20.0))
    assert np.array_equal(circle, w.shape_template("circle", 8.0, 1.0, 64, (20.3, 20.0)))


def test_angles_follow_atan2_in_image_coordinates():
    # At angle 0 the triangle's vertex points up (-y); turning by +pi/2 points it along +x.
    up = w.shape_template("triangle", 10.0, 0.0, 64, (30.0, 30.0)) >= 0.5
    right = w.shape_template("triangle", 10.0, math.pi / 2, 64, (30.0, 30.0)) >= 0.5
    assert np.nonzero(up)[0].min() == 21 and np.nonzero(up)[0].max() < 36
    assert np.nonzero(right)[1].max() == 39 and np.nonzero(right)[1].min() > 24


def test_shape_coverage_batches_shape_template():
    angles, centers = np.array([0.0, 0.7, 2.0]), np.array([[10.2, 50.0], [-3.0, 30.5], [40.0, 40.0]])
    batch = w.shape_coverage("star", 9.0, angles, centers, (48, 64))
    for k in range(3):
        assert np.array_equal(batch[k], w.shape_template("star", 9.0, angles[k], (48, 64), tuple(centers[k])))
    area = w.shape_template("circle", 10.0, 0.0, 64, (30.0, 30.0)).sum()
    assert abs(area - math.pi * 100) < 2.0


def test_segmentation_recovers_visible_masks():
    scores = []
    for seed in range(40):
        clip = clip_for(seed, frames=4)
        for t in range(4):
            for i, o in enumerate(clip.scene.objects):
                truth = clip.visible_masks[t, i]
                if truth.sum() >= 60:
                    scores.append(iou(w.segment_object(clip.frames[t], o.color), truth))
    assert len(scores) > 100 and np.mean(np.array(scores) > 0.9) > 0.95
    scene = w.Scene((obj("star", "orange", radius=10.0), obj("circle", "yellow", (30.0, 22.0))), plain())
    clip = w.render_clip(scene, 1)
    for i, o in enumerate(scene.objects):
        assert iou(w.segment_object(clip.frames[0], o.color), clip.visible_masks[0, i]) > 0.9


def test_scene_from_prompt_honours_the_prompt():
    prompt = "a green star, an orange triangle and a white circle on a checkered background"
    for seed in range(5):
        scene = w.scene_from_prompt(prompt, np.random.default_rng(seed))
        assert scene.prompt == prompt and not scene.leaves_frame
        assert [(o.color, o.shape) for o in scene.objects] == [
            ("green", "star"),
            ("orange", "triangle"),
            ("white", "circle"),
        ]
        assert scene.background.kind == "checkered"
    config = w.WorldConfig(size=96)
    scene = w.scene_from_prompt("a purple square on a gradient background", np.random.default_rng(0), config)
    clip = w.render_clip(scene, 3, config)
    assert clip.frames.shape == (3, 96, 96, 3) and clip.in_frame.all()
    assert iou(w.segment_object(clip.frames[0], "purple"), clip.visible_masks[0, 0]) > 0.9
    with pytest.raises(ValueError, match="cannot read"):
        w.scene_from_prompt("a red circle", np.random.default_rng(0))


@pytest.mark.parametrize("center", [(30.3, 33.7), (2.2, 61.5)], ids=["inside", "over_the_border"])
def test_template_ious_equal_the_iou_with_each_template_drawn_on_the_frame(center):
    rng = np.random.default_rng(3)
    mask = (w.shape_template("star", 9.0, 0.4, 64, center) >= 0.5) | (rng.random((64, 64)) > 0.98)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    expected = [mask_iou(w.shape_template("star", 10.0, a, 64, center) >= 0.5, mask) for a in angles]
    assert w.template_ious(mask, "star", 10.0, angles, center).tolist() == expected
    assert w.template_ious(np.zeros((64, 64), bool), "circle", 5.0, angles[:1], center).tolist() == [0.0]


def test_rounding_cuts_corners_and_points_and_keeps_areas_places_and_circles():
    angle = 0.3
    scene = w.Scene((obj("square", angle=angle, radius=10.0, position=(32.0, 32.0)),), plain())
    crisp = w.render_clip(scene, 1)
    mask = crisp.full_masks[0, 0]
    rounded = w.segment_object(w.render_rounded(scene, 1, 2.5)[0], "red")
    corner = np.array([32 + 9 * math.cos(angle + math.pi / 4), 32 + 9 * math.sin(angle + math.pi / 4)])
    x, y = np.round(corner).astype(int)
    assert mask[y, x] and not rounded[y, x]  # a pixel just inside a corner is cut away
    edge_middle = np.round(32 + 6.5 * np.array([math.cos(angle), math.sin(angle)])).astype(int)
    assert rounded[edge_middle[1], edge_middle[0]]  # the middle of an edge stays
    assert abs(int(rounded.sum()) - int(mask.sum())) <= 0.05 * mask.sum() and iou(rounded, mask) > 0.85
    assert np.allclose(np.argwhere(rounded).mean(axis=0), np.argwhere(mask).mean(axis=0), atol=0.5)
    assert np.array_equal(w.render_rounded(scene, 1, 0.0), crisp.frames)
    circle = w.Scene((obj("circle", radius=10.0, position=(32.0, 32.0)),), plain())
    disc = w.render_clip(circle, 1).full_masks[0, 0]
    assert iou(w.segment_object(w.render_rounded(circle, 1, 2.5)[0], "red"), disc) > 0.93
    star = w.Scene((obj("star", radius=10.0, position=(32.0, 32.0)),), plain())
    crisp_star = w.render_clip(star, 1).full_masks[0, 0]
    fits = [iou(w.segment_object(w.render_rounded(star, 1, r)[0], "red"), crisp_star) for r in (1, 2, 3)]
    assert fits == sorted(fits, reverse=True) and fits[-1] < 0.75  # the points go as the rounding grows


def test_object_labels_agree_with_segmenting_each_colour_and_count_objects_of_a_clean_frame():
    from dragstream_widget.models.toyworld.scenes import COLOR_INDEX, count_changes, object_counts

    rng = np.random.default_rng(4)
    for _ in range(6):
        scene = w.sample_scene(rng)
        frame = w.render_clip(scene, 3).frames[-1]
        labels = w.object_labels(frame)
        for color in w.OBJECT_COLORS:
            assert (w.segment_object(frame, color) != (labels == COLOR_INDEX[color])).sum() <= 12
    scene = w.Scene((obj("circle", "red", (16.0, 16.0)), obj("square", "blue", (46.0, 40.0))), plain())
    frame = w.render_clip(scene, 1).frames[0]
    truth = {"red": 1, "blue": 1}
    counts = object_counts(frame)
    assert {c: n for c, n in counts.items() if n} == truth
    assert count_changes(counts, truth) == {"spawned": 0, "lost": 0}
    split = frame.copy()
    split[:, 14:19] = frame[0, 0]  # a background band cuts the red circle in two
    split[50:60, 2:12] = w.OBJECT_COLORS["green"]  # a foreign patch appears
    split[30:50, 36:56] = frame[0, 0]  # the blue square is painted over
    assert count_changes(object_counts(split), truth) == {"spawned": 2, "lost": 1}
