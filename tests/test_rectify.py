import pytest
import torch

from dragstream_widget.engine.rectify import self_rectify


def test_global_rectification_matches_the_neighbours_exactly():
    z = torch.randn(1, 4, 3, 8, 8) * 5 + 2
    neighbours = torch.randn(1, 4, 6, 8, 8) * 0.7 - 0.3
    out = self_rectify(z, neighbours, "global")
    assert out.mean().item() == pytest.approx(neighbours.mean().item(), abs=1e-5)
    assert out.std().item() == pytest.approx(neighbours.std().item(), abs=1e-5)
    # A standardisation keeps the shape of the signal: correlation with the input is 1.
    assert torch.corrcoef(torch.stack([out.flatten(), z.flatten()]))[0, 1] > 0.99999


def test_frame_channel_rectification_matches_per_channel_statistics():
    z = torch.randn(1, 4, 3, 8, 8) * torch.arange(1.0, 5.0)[None, :, None, None, None]
    neighbours = torch.randn(1, 4, 6, 8, 8) + torch.arange(4.0)[None, :, None, None, None]
    out = self_rectify(z, neighbours, "frame_channel")
    want_mean = neighbours.mean(dim=(3, 4)).mean(dim=2)  # [1, C]
    want_std = neighbours.std(dim=(3, 4)).mean(dim=2)
    got_mean = out.mean(dim=(3, 4))  # [1, C, F]
    got_std = out.std(dim=(3, 4))
    assert torch.allclose(got_mean, want_mean[..., None].expand_as(got_mean), atol=1e-5)
    assert torch.allclose(got_std, want_std[..., None].expand_as(got_std), atol=1e-5)


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="unknown statistics mode"):
        self_rectify(torch.randn(1, 2, 1, 2, 2), torch.randn(1, 2, 1, 2, 2), "per_pixel")
