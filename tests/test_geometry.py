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
    assert torch.allclose(moved, rect((16, 20), 8, 6, 14, 9), atol=1e-5)  # exact up to float rounding


def test_mask_rotated_by_90_degrees_about_its_centre():
    # A 7 wide x 3 tall bar centred on (10, 10) becomes 3 wide x 7 tall.
    mask = rect((21, 21), 7, 9, 14, 12)
    assert g.mask_centroid(mask) == (10.0, 10.0)
    turned = g.target_mask(mask, g.rotation_map((21, 21), (10.0, 10.0), math.pi / 2))
    assert torch.allclose(turned, rect((21, 21), 9, 7, 12, 14), atol=1e-5)


def test_rotation_direction_follows_the_screen_convention():
    # +90 degrees takes (c.x + 5, c.y) to (c.x, c.y + 5): the map at the target points back to the source.
    coords = g.rotation_map((21, 21), (10.0, 10.0), math.pi / 2)
    assert torch.allclose(coords[15, 10], torch.tensor([15.0, 10.0]), atol=1e-5)


def test_warp_then_inverse_translation_recovers_the_interior():
    field = torch.randn(3, 12, 12)
    there = g.warp(field, g.translation_map((12, 12), (2.0, -1.0)))
    back = g.warp(there, g.translation_map((12, 12), (-2.0, 1.0)))
    assert torch.allclose(back[:, 2:10, 2:10], field[:, 2:10, 2:10], atol=1e-5)
    batched = g.warp(field[None], g.translation_map((12, 12), (0.0, 0.0)))
    assert torch.allclose(batched[0], field, atol=1e-5)


def test_signed_angles():
    c = (0.0, 0.0)
    assert g.signed_angle(c, (1, 0), (0, 1)) == pytest.approx(math.pi / 2)
    assert g.signed_angle(c, (1, 0), (0, -1)) == pytest.approx(-math.pi / 2)
    assert g.signed_angle(c, (1, 0), (-1, 0)) == pytest.approx(math.pi)
    assert g.signed_angle((5, 5), (6, 6), (4, 6)) == pytest.approx(math.pi / 2)


def test_resample_polyline_on_an_l_shaped_path():
    points = g.resample_polyline([(0, 0), (10, 0), (10, 10)], 4)
    assert points == [(5.0, 0.0), (10.0, 0.0), (10.0, 5.0), (10.0, 10.0)]
    assert g.resample_polyline([(3, 3), (3, 3)], 2) == [(3.0, 3.0), (3.0, 3.0)]
    with pytest.raises(ValueError):
        g.resample_polyline([(0, 0), (1, 1)], 0)


def test_trajectory_splitting():
    steps = g.split_translation((0, 0), (30, 40), 16)
    assert len(steps) == 4 and steps[-1] == (30.0, 40.0) and steps[0] == (7.5, 10.0)
    assert g.split_translation((0, 0), (16, 0), 16) == [(16.0, 0.0)]
    angles = g.split_rotation(math.radians(-20), math.radians(8))
    assert len(angles) == 3 and angles[-1] == pytest.approx(math.radians(-20))


def test_css_gaussian_map_peaks_at_the_box_centre_with_the_stated_sigmas():
    mask = rect((40, 40), 10, 20, 20, 26)  # box x 10..19 (w 10), y 20..25 (h 6)
    gmap = g.css_gaussian_map(mask, alpha=1.0)
    cx, cy = 14.5, 22.5
    assert g.mask_bbox(mask) == (10, 20, 19, 25)
    # sigma_x = 10 / 2 = 5, sigma_y = 6 / 2 = 3; the map is exp(-0.5) one sigma away.
    peak = g.gaussian_map((40, 40), (cx, cy), (5.0, 3.0))
    assert torch.allclose(gmap, peak)
    assert g.gaussian_map((41, 41), (20, 20), (5.0, 3.0))[20, 25] == pytest.approx(math.exp(-0.5))
    assert g.gaussian_map((41, 41), (20, 20), (5.0, 3.0))[23, 20] == pytest.approx(math.exp(-0.5))
    wider = g.css_gaussian_map(mask, alpha=2.0)
    assert wider[22, 34] > gmap[22, 34]


def test_scaling_points_and_masks_between_pixel_and_latent_grids():
    # Pixels 0..3 make latent cell 0: their centre 1.5 maps to 0.0, pixel 5.5 to cell 1.
    assert g.scale_point((1.5, 5.5), (64, 64), (16, 16)) == (0.0, 1.0)
    p = (37.25, 12.0)
    back = g.scale_point(g.scale_point(p, (64, 64), (16, 16)), (16, 16), (64, 64))
    assert back == pytest.approx(p)
    mask = np.zeros((8, 8), bool)
    mask[0:2, 0:4] = True  # half of latent cell (0, 0) at 4x downsampling
    cover = g.resize_mask(mask, (2, 2))
    assert cover.tolist() == [[0.5, 0.0], [0.0, 0.0]]


def test_empty_masks_are_errors():
    with pytest.raises(ValueError, match="empty"):
        g.mask_bbox(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="empty"):
        g.mask_centroid(torch.zeros(4, 4))
