import numpy as np
import pytest

from dragstream_widget.metrics import (
    dai,
    frechet_distance,
    frechet_video_distance,
    gaussian_statistics,
    objmc,
)


def test_objmc_pools_over_frames_and_points():
    targets = np.zeros((2, 2, 2))
    tracked = np.array([[[3.0, 4.0], [0.0, 1.0]], [[np.nan, np.nan], [0.0, 2.0]]])
    assert objmc(tracked, targets) == pytest.approx((5 + 1 + 2) / 3)  # the lost point is skipped
    with pytest.raises(ValueError, match="every track is missing"):
        objmc(np.full((1, 1, 2), np.nan), np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match="frames, points, 2"):
        objmc(np.zeros((2, 2)), np.zeros((2, 2)))


def test_dai_by_hand():
    original = np.zeros((10, 10, 3), np.uint8)
    original[4:7, 4:7] = 255  # a white 3x3 square around (5, 5)
    moved = np.zeros_like(original)
    moved[4:7, 6:9] = 255  # moved 2 px right: around (7, 5)
    assert dai(original, moved, [(5, 5)], [(7, 5)], radius=1) == 0.0  # the content arrived
    # Left where it was: the 3x3 patch around (5, 5) in the dragged frame has 1 white column of 3.
    # Differences: 6 pixels of 3 channels, each (1 - 0)^2 = 1 -> 18 / 9 offsets.
    assert dai(original, moved, [(5, 5)], [(5, 5)], radius=1) == pytest.approx(18 / 9)


def test_dai_border_counts_only_offsets_inside_both_frames():
    a = np.full((6, 6, 3), 255, np.uint8)
    b = np.zeros_like(a)
    # At the corner (0, 0) with r = 1 only the 4 offsets (0..1, 0..1) are inside: each differs by 3.
    assert dai(a, b, [(0, 0)], [(0, 0)], radius=1) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="one target per handle"):
        dai(a, b, [(0, 0)], [], radius=1)


def test_frechet_closed_forms():
    assert frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3)) == pytest.approx(0.0, abs=1e-9)
    # One dimension: (mu1 - mu2)^2 + (s1 - s2)^2
    assert frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])
    ) == pytest.approx(4 + 1)
    # Diagonal covariances: sum of (sqrt(a) - sqrt(b))^2
    value = frechet_distance(np.zeros(2), np.diag([1.0, 16.0]), np.ones(2), np.diag([4.0, 4.0]))
    assert value == pytest.approx(2 + (1 - 2) ** 2 + (4 - 2) ** 2)


def test_frechet_video_distance_labels_its_proxy_and_separates_sets():
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 80, (40, 32, 32, 3), dtype=np.uint8)
    dark2 = rng.integers(0, 80, (40, 32, 32, 3), dtype=np.uint8)
    bright = rng.integers(150, 255, (40, 32, 32, 3), dtype=np.uint8)
    near = frechet_video_distance(dark, dark2)
    far = frechet_video_distance(dark, bright)
    assert "proxy" in near["extractor"] and far["frechet_distance"] > 10 * near["frechet_distance"]
    mean, cov = gaussian_statistics(np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert mean.tolist() == [1.0, 2.0] and cov.tolist() == [[2.0, 2.0], [2.0, 2.0]]
