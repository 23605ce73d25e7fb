import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan

from dragstream_widget.models.wan_vae import (
    WanFrameEncoder,
    WanStreamDecoder,
    denormalize_latents,
    load_wan_vae,
    normalize_latents,
    to_uint8_frames,
)

Z_DIM = 4


def tiny_vae(seed: int = 0) -> AutoencoderKLWan:
    """Wan 2.1's VAE structure (4 stages, 2 residual blocks, temporal stride 4) at a tiny width."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=Z_DIM,
        latents_mean=torch.randn(Z_DIM, generator=g).tolist(),
        latents_std=(torch.rand(Z_DIM, generator=g) + 0.5).tolist(),
    )
    return vae.eval()


@pytest.fixture(scope="module")
def vae():
    return tiny_vae()


def test_streaming_decode_equals_whole_video_decode(vae):
    z = torch.randn(1, Z_DIM, 9, 4, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = vae.decode(denormalize_latents(vae, z)).sample
    decoder = WanStreamDecoder(vae)
    blocks = [decoder.decode_pixels(z[:, :, i : i + 3]) for i in (0, 3, 6)]
    assert [b.shape[2] for b in blocks] == [9, 12, 12]  # 1 + 4 + 4 frames, then 4 per latent frame
    streamed = torch.cat(blocks, dim=2)
    assert streamed.shape == whole.shape == (1, 3, 33, 32, 48)
    assert (streamed - whole).abs().max() < 1e-5
    # Without the cache kept across blocks the second block would differ.
    fresh = WanStreamDecoder(vae).decode_pixels(z[:, :, 3:6])
    assert fresh.shape[2] == 9 and (fresh[:, :, -4:] - blocks[1][:, :, -4:]).abs().max() > 1e-3


def test_snapshot_and_restore_redecode_a_block_exactly(vae):
    z = torch.randn(1, Z_DIM, 6, 4, 4, generator=torch.Generator().manual_seed(3))
    decoder = WanStreamDecoder(vae)
    decoder.decode(z[:, :, :3])
    state = decoder.snapshot()
    first = decoder.decode(z[:, :, 3:])
    decoder.decode(torch.randn_like(z[:, :, 3:]))  # a block that undo throws away
    decoder.restore(state)
    again = decoder.decode(z[:, :, 3:])
    assert first.dtype == np.uint8 and first.shape == (12, 32, 32, 3)
    assert np.array_equal(first, again) and decoder.latent_frames == 6


def test_normalisation_round_trips_and_uses_the_config_statistics(vae):
    z = torch.randn(1, Z_DIM, 2, 3, 3)
    raw = denormalize_latents(vae, z)
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    assert torch.allclose(raw, z * std + mean)
    assert torch.allclose(normalize_latents(vae, raw), z, atol=1e-6)


def test_frame_encoder_gives_normalised_latents_of_the_vae(vae):
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    z = WanFrameEncoder(vae)(frames)
    assert z.shape == (1, Z_DIM, 2, 4, 4)
    x = torch.as_tensor(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = normalize_latents(vae, vae.encode(x).latent_dist.mode())
    assert torch.allclose(z, expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"1 \+ 4k"):
        WanFrameEncoder(vae)(frames[:4])


def test_uint8_conversion_maps_the_pixel_range():
    pixels = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 1, 4).expand(1, 3, 1, 1, 4)
    assert to_uint8_frames(pixels)[0, 0, :, 0].tolist() == [0, 128, 255, 255]


def test_load_from_a_diffusers_layout_folder(tmp_path, vae):
    vae.save_pretrained(tmp_path / "vae")
    loaded = load_wan_vae(tmp_path)
    for (name, mine), theirs in zip(loaded.state_dict().items(), vae.state_dict().values()):
        assert torch.equal(mine, theirs), name
    assert loaded.config.latents_mean == vae.config.latents_mean


def test_missing_vae_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="Wan2.1_VAE.pth"):
        load_wan_vae(tmp_path)
