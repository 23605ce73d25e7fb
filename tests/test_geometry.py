import math

import numpy as np
import pytest
import torch

from dragstream_widget import geometry as g


def rect(size, x0, y0, x1, y1):
    m = torch.zeros(size)
    m[y0:y1, x0:x1] = 1.0
    return m


def test_translated_mask_is_an_exact_shift():
    mask = rect((16, 20), 3, 4, 9, 7)
    moved = g.target_mask(mask, g.translation_map((16, 20), (5, 2)))
    expected = torch.roll(mask, shifts=(2, 5), dims=(0, 1))  # the rectangle stays clear of the border
    assert moved.dtype == torch.float32 and moved.shape == (16, 20)
    # grid_sample's normalised coordinates leave a rounding error below 1e-6; the mask itself is exact.
    assert torch.equal(moved.round(), expected) and torch.allclose(moved, expected, rtol=0, atol=1e-6)
    assert torch.equal(expected, rect((16, 20), 8, 6, 14, 9))


def test_translation_map_holds_source_positions():
    coords = g.translation_map((4, 6), (1.5, -2.0))
    assert coords.shape == (4, 6, 2) and coords.dtype == torch.float32
    assert coords[3, 2].tolist() == [0.5, 5.0]  # target pixel (2, 3) comes from (2 - 1.5, 3 + 2)


def test_mask_rotated_by_90_degrees_about_its_centre():
    # A 7 wide x 3 tall bar centred on (10, 10) becomes 3 wide x 7 tall.
    mask = rect((21, 21), 7, 9, 14, 12)
    assert g.mask_centroid(mask) == (10.0, 10.0)
    turned = g.target_mask(mask, g.rotation_map((21, 21), (10.0, 10.0), math.pi / 2))
    upright = rect((21, 21), 9, 7, 12, 14)
    assert torch.equal(turned.round(), upright) and torch.allclose(turned, upright, rtol=0, atol=1e-5)


def test_rotation_direction_follows_the_screen_convention():
    # +90 degrees takes (c.x + 5, c.y) to (c.x, c.y + 5): the map at the target points back to the source.
    coords = g.rotation_map((21, 21), (10.0, 10.0), math.pi / 2)
    assert torch.allclose(coords[15, 10], torch.tensor([15.0, 10.0]), atol=1e-5)
    assert torch.allclose(coords[10, 10], torch.tensor([10.0, 10.0]))  # the centre stays
    dot = torch.zeros(21, 21)
    dot[10, 15] = 1.0
    moved = g.warp(dot, coords)
    assert moved[15, 10] == pytest.approx(1.0, abs=1e-5) and moved.sum() == pytest.approx(1.0, abs=1e-4)


def test_warp_then_inverse_translation_recovers_the_interior():
    field = torch.randn(3, 12, 12)
    there = g.warp(field, g.translation_map((12, 12), (2.0, -1.0)))
    back = g.warp(there, g.translation_map((12, 12), (-2.0, 1.0)))
    assert torch.allclose(back[:, 2:10, 2:10], field[:, 2:10, 2:10], atol=1e-5)
    assert there[:, :, :2].abs().max() == 0  # zero where the source lies outside


def test_warp_keeps_the_leading_shape():
    field = torch.randn(2, 3, 8, 10)
    identity = g.translation_map((8, 10), (0.0, 0.0))
    assert torch.allclose(g.warp(field, identity), field, atol=1e-5)
    assert torch.allclose(g.warp(field[0, 0], identity), field[0, 0], atol=1e-5)
    half = g.warp(field[0], g.translation_map((4, 5), (0.0, 0.0)))
    assert half.shape == (3, 4, 5)
    with pytest.raises(ValueError):
        g.warp(torch.zeros(8), identity)


def test_warp_interpolates_bilinearly():
    field = torch.arange(12.0).reshape(3, 4)  # value = 4 y + x
    coords = torch.tensor([[[1.5, 0.5], [3.0, 2.0], [3.5, 0.0]]])
    sampled = g.warp(field, coords)  # 3.5 lies half outside: half the weight falls on zeros
    assert sampled.shape == (1, 3) and sampled[0].tolist() == pytest.approx([3.5, 11.0, 1.5], abs=1e-5)


def test_signed_angles():
    c = (0.0, 0.0)
    assert g.signed_angle(c, (1, 0), (0, 1)) == pytest.approx(math.pi / 2)
    assert g.signed_angle(c, (1, 0), (0, -1)) == pytest.approx(-math.pi / 2)
    assert g.signed_angle(c, (1, 0), (-1, 0)) == pytest.approx(math.pi)
    assert g.signed_angle(c, (-1, 0), (1, 0)) == pytest.approx(math.pi)  # half turns are +pi, never -pi
    assert g.signed_angle((5, 5), (6, 6), (4, 6)) == pytest.approx(math.pi / 2)
    assert g.signed_angle(c, (-1, 1), (-1, -1)) == pytest.approx(math.pi / 2)  # across the +-pi seam


def test_resample_polyline_on_an_l_shaped_path():
    points = g.resample_polyline([(0, 0), (10, 0), (10, 10)], 4)
    assert points == [(5.0, 0.0), (10.0, 0.0), (10.0, 5.0), (10.0, 10.0)]
    assert g.resample_polyline([(0, 0), (10, 0), (10, 0), (10, 10)], 4) == points  # repeated point
    assert g.resample_polyline([(0, 0), (10, 0), (10, 10)], 1) == [(10.0, 10.0)]


def test_resample_polyline_degenerate_cases():
    assert g.resample_polyline([(3, 3), (3, 3)], 2) == [(3.0, 3.0), (3.0, 3.0)]
    assert g.resample_polyline([(3, 4)], 3) == [(3.0, 4.0)] * 3
    with pytest.raises(ValueError):
        g.resample_polyline([(0, 0), (1, 1)], 0)
    with pytest.raises(ValueError):
        g.resample_polyline([], 2)


def test_trajectory_splitting():
    steps = g.split_translation((0, 0), (30, 40), 16)
    assert steps == [(7.5, 10.0), (15.0, 20.0), (22.5, 30.0), (30.0, 40.0)]
    assert g.split_translation((0, 0), (16, 0), 16) == [(16.0, 0.0)]
    assert g.split_translation((0, 0), (16.5, 0), 16) == [(8.25, 0.0), (16.5, 0.0)]
    assert g.split_translation((2, 3), (2, 3)) == [(2.0, 3.0)]
    angles = g.split_rotation(math.radians(-20), math.radians(8))
    assert len(angles) == 3 and angles[-1] == math.radians(-20)
    assert angles[0] == pytest.approx(math.radians(-20) / 3)
    assert g.split_rotation(math.radians(16)) == [pytest.approx(math.radians(8)), math.radians(16)]
    assert g.split_rotation(0.0) == [0.0]
    with pytest.raises(ValueError):
        g.split_translation((0, 0), (1, 0), 0.0)


def test_css_gaussian_map_peaks_at_the_box_centre_with_the_stated_sigmas():
    mask = rect((40, 40), 10, 20, 20, 26)  # box x 10..19 (w 10), y 20..25 (h 6)
    assert g.mask_bbox(mask) == (10, 20, 19, 25)
    gmap = g.css_gaussian_map(mask, alpha=1.0)
    # Centre (14.5, 22.5); sigma_x = 10 / 2 = 5, sigma_y = 6 / 2 = 3.
    assert torch.allclose(gmap, g.gaussian_map((40, 40), (14.5, 22.5), (5.0, 3.0)))
    assert torch.equal(g.css_gaussian_map(mask.numpy() > 0.5), gmap)
    # An odd box puts the centre on a pixel: peak 1 there, exp(-0.5) one sigma away in x and in y.
    odd = rect((41, 41), 15, 17, 26, 24)  # box x 15..25 (w 11), y 17..23 (h 7): centre (20, 20)
    omap = g.css_gaussian_map(odd)
    assert omap[20, 20] == 1.0 and omap.argmax() == 20 * 41 + 20
    assert omap[20, 20 + 5].item() == pytest.approx(math.exp(-0.5 * (5 / 5.5) ** 2))
    assert g.gaussian_map((41, 41), (20, 20), (5.0, 3.0))[20, 25] == pytest.approx(math.exp(-0.5))
    assert g.gaussian_map((41, 41), (20, 20), (5.0, 3.0))[23, 20] == pytest.approx(math.exp(-0.5))
    wider = g.css_gaussian_map(mask, alpha=2.0)
    assert wider[22, 34] > gmap[22, 34]


def test_scaling_points_between_pixel_and_latent_grids():
    # Pixels 0..3 make latent cell 0: their centre 1.5 maps to 0.0, pixel 5.5 to cell 1.
    assert g.scale_point((1.5, 5.5), (64, 64), (16, 16)) == (0.0, 1.0)
    assert g.scale_point((2.0, -0.5), (64, 64), (16, 16)) == (0.125, -0.5)  # frame edge stays the edge
    assert g.scale_point((0.0, 0.0), (60, 104), (480, 832)) == (3.5, 3.5)
    p = (37.25, 12.0)
    back = g.scale_point(g.scale_point(p, (64, 48), (16, 12)), (16, 12), (64, 48))
    assert back == pytest.approx(p)


def test_resize_mask_gives_area_coverage():
    mask = np.zeros((8, 8), bool)
    mask[0:2, 0:4] = True  # half of latent cell (0, 0) at 4x downsampling
    cover = g.resize_mask(mask, (2, 2))
    assert cover.dtype == torch.float32 and cover.tolist() == [[0.5, 0.0], [0.0, 0.0]]
    assert torch.equal(g.resize_mask(torch.from_numpy(mask), (2, 2)), cover)
    assert torch.equal(g.resize_mask(mask, (8, 8)), torch.from_numpy(mask).float())
    full = g.resize_mask(np.ones((10, 10), bool), (4, 4))  # sizes that do not divide
    assert torch.allclose(full, torch.ones(4, 4))
    uneven = g.resize_mask(np.pad(np.ones((10, 5), bool), ((0, 0), (0, 5))), (4, 4))
    assert uneven.min() >= 0 and uneven.max() <= 1 and uneven.mean().item() == pytest.approx(0.5, abs=0.02)


def test_mask_bounds_and_centroid_threshold_float_masks():
    soft = torch.zeros(6, 6)
    soft[1:3, 2:5] = 0.8
    soft[5, 5] = 0.5  # not above the threshold
    assert g.mask_bbox(soft) == (2, 1, 4, 2)
    assert g.mask_centroid(soft) == (3.0, 1.5)
    assert g.mask_bbox(soft.numpy() > 0.5) == (2, 1, 4, 2)


def test_empty_masks_are_errors():
    with pytest.raises(ValueError, match="empty"):
        g.mask_bbox(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="empty"):
        g.mask_centroid(torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="empty"):
        g.css_gaussian_map(torch.zeros(4, 4))


def test_grow_dilates_by_a_square_and_does_not_wrap_at_the_borders():
    mask = np.zeros((10, 12), bool)
    mask[0, 5] = True  # touches the top border
    grown = g.grow(mask, 2)
    assert grown[:3, 3:8].all() and grown.sum() == 3 * 5
    assert not grown[-2:].any()  # nothing leaks to the bottom rows
    moved = g.shifted(mask, 0, -1)
    assert not moved.any()  # moved off the frame, not rolled to the bottom


def test_mask_iou_of_overlapping_identical_disjoint_and_empty_masks():
    a = np.zeros((8, 8), bool)
    a[2:6, 2:6] = True  # 16 pixels
    b = g.shifted(a, 2, 0)  # overlaps a on 8 of 24 pixels
    assert g.mask_iou(a, b) == pytest.approx(8 / 24)
    assert g.mask_iou(a, a) == 1.0
    assert g.mask_iou(a, g.shifted(a, 4, 0)) == 0.0
    empty = np.zeros_like(a)
    assert g.mask_iou(empty, empty) == 0.0


def test_component_sizes_count_8_connected_patches_largest_first():
    from dragstream_widget.geometry import component_sizes

    mask = np.zeros((20, 20), bool)
    mask[1:4, 1:4] = True  # 9 pixels
    mask[10, 10] = mask[11, 11] = True  # diagonal neighbours: one patch of 2
    mask[15:17, 2:19] = True  # a long bar of 34
    assert component_sizes(mask) == [34, 9, 2]
    assert component_sizes(np.zeros((5, 5), bool)) == []
