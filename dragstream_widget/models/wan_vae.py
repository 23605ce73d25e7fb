"""Wan 2.1's video VAE (diffusers' ``AutoencoderKLWan``): loading, and decoding block by block.

The decoder is causal in time: each causal 3D convolution keeps the last input frames it saw
(diffusers calls this list ``feat_cache`` and fills it one latent frame at a time inside
``AutoencoderKLWan._decode``). :class:`WanStreamDecoder` keeps that list itself across blocks, so
decoding blocks one after another gives exactly the frames of one whole-video decode. It calls
``vae.decoder(x, feat_cache=..., feat_idx=..., first_chunk=...)``, an internal of diffusers 0.42.1
(pinned; the tests check the equality).

Latents in the stream are normalised per channel, ``(z - latents_mean) / latents_std``, with the
statistics of the VAE config, as in diffusers' Wan pipeline.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, unpatchify

from .random_model import cast_keeping_fp32
from .wan_checkpoints import CheckpointMismatch, load_strict, read_folder_weights, read_state_dict

ORIGINAL_VAE_FILE = "Wan2.1_VAE.pth"
DEFAULT_LATENTS_MEAN = inspect.signature(AutoencoderKLWan.__init__).parameters["latents_mean"].default


def latent_statistics(vae: AutoencoderKLWan, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``latents_mean`` and ``latents_std`` of the config, shaped to broadcast over ``[B, C, F, H, W]``."""
    shape = (1, -1, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32, device=like.device).view(shape)
    std = torch.tensor(vae.config.latents_std, dtype=torch.float32, device=like.device).view(shape)
    return mean, std


def normalize_latents(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents to the model's normalised latents: ``(z - mean) / std``."""
    mean, std = latent_statistics(vae, z)
    return (z.float() - mean) / std


def denormalize_latents(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    """Normalised latents back to raw VAE latents: ``z * std + mean``."""
    mean, std = latent_statistics(vae, z)
    return z.float() * std + mean


def to_uint8_frames(pixels: torch.Tensor) -> np.ndarray:
    """``[1, 3, T, H, W]`` in [-1, 1] to ``uint8 [T, H, W, 3]``."""
    frames = ((pixels[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return frames.permute(1, 2, 3, 0).cpu().numpy()


def count_causal_convs(module: torch.nn.Module) -> int:
    return sum(isinstance(m, WanCausalConv3d) for m in module.modules())


class WanStreamDecoder:
    """Decodes normalised latent blocks ``[1, C, F, h, w]`` one after another, keeping the causal cache.

    The first latent frame of the stream gives one video frame, every later one gives the VAE's
    temporal stride (4 for Wan 2.1) frames.
    """

    def __init__(self, vae: AutoencoderKLWan):
        if vae.decoder is None:
            raise ValueError("this AutoencoderKLWan has no decoder")
        self.vae = vae
        self._cache: list = [None] * count_causal_convs(vae.decoder)
        self._latent_frames = 0

    @property
    def latent_frames(self) -> int:
        """How many latent frames this decoder has consumed."""
        return self._latent_frames

    @torch.no_grad()
    def decode_pixels(self, z0: torch.Tensor) -> torch.Tensor:
        """The block's video frames ``[1, 3, T, H, W]`` in [-1, 1]."""
        if z0.ndim != 5 or z0.shape[1] != self.vae.config.z_dim:
            raise ValueError(f"expected latents [1, {self.vae.config.z_dim}, F, h, w], got {tuple(z0.shape)}")
        parameter = next(self.vae.parameters())
        x = self.vae.post_quant_conv(denormalize_latents(self.vae, z0).to(parameter))
        outputs = []
        for i in range(x.shape[2]):
            outputs.append(
                self.vae.decoder(
                    x[:, :, i : i + 1],
                    feat_cache=self._cache,
                    feat_idx=[0],
                    first_chunk=self._latent_frames == 0,
                )
            )
            self._latent_frames += 1
        out = torch.cat(outputs, dim=2)
        if self.vae.config.patch_size is not None:
            out = unpatchify(out, patch_size=self.vae.config.patch_size)
        return out.clamp(-1.0, 1.0)

    def decode(self, z0: torch.Tensor) -> np.ndarray:
        return to_uint8_frames(self.decode_pixels(z0))

    def snapshot(self) -> object:
        # Cache entries are replaced, never written in place, so a shallow copy is an exact snapshot.
        return (self._latent_frames, tuple(self._cache))

    def restore(self, state: object) -> None:
        self._latent_frames, cache = state
        self._cache = list(cache)


class WanFrameEncoder:
    """``uint8 [T, H, W, 3]`` (T = 1 + 4k for Wan 2.1) to normalised latents ``[1, C, 1 + k, h, w]``."""

    def __init__(self, vae: AutoencoderKLWan):
        self.vae = vae

    @torch.no_grad()
    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        frames = np.asarray(frames)
        stride = self.vae.config.scale_factor_temporal
        if frames.ndim != 4 or frames.shape[-1] != 3 or (frames.shape[0] - 1) % stride:
            raise ValueError(
                f"expected uint8 frames [1 + {stride}k, H, W, 3], got an array of shape {frames.shape}"
            )
        parameter = next(self.vae.parameters())
        x = torch.as_tensor(frames).permute(3, 0, 1, 2)[None].to(parameter.device, torch.float32) / 127.5 - 1
        z = self.vae.encode(x.to(parameter.dtype)).latent_dist.mode()
        return normalize_latents(self.vae, z)


def load_wan_vae(wan_dir: str | Path, dtype: torch.dtype = torch.float32) -> AutoencoderKLWan:
    """The VAE of a local Wan2.1 folder: ``vae/`` (diffusers layout) or ``Wan2.1_VAE.pth`` (original)."""
    wan_dir = Path(wan_dir)
    if (wan_dir / "vae" / "config.json").is_file():
        folder = wan_dir / "vae"
        vae = AutoencoderKLWan.from_config(AutoencoderKLWan.load_config(folder))
        load_strict(vae, read_folder_weights(folder), str(folder))
    elif (wan_dir / ORIGINAL_VAE_FILE).is_file():
        path = wan_dir / ORIGINAL_VAE_FILE
        state = convert_wan_vae_to_diffusers(read_state_dict(path))
        vae = load_strict(original_vae_model(state, path), state, str(path))
    else:
        raise FileNotFoundError(
            f"no Wan VAE in {wan_dir}: expected vae/config.json (diffusers layout) or {ORIGINAL_VAE_FILE}"
        )
    return cast_keeping_fp32(vae, dtype).eval().requires_grad_(False)


def original_vae_model(state: dict[str, torch.Tensor], path: Path) -> AutoencoderKLWan:
    """An ``AutoencoderKLWan`` of Wan 2.1's config (the defaults) at the width and latent size of ``state``.

    The original release ships no VAE config: its latent statistics are those of diffusers' defaults.
    """
    for key in ("encoder.conv_in.weight", "post_quant_conv.weight"):
        if key not in state:
            raise CheckpointMismatch(f"{path} is not a Wan VAE checkpoint: no {key} after conversion")
    z_dim = state["post_quant_conv.weight"].shape[0]
    statistics = len(DEFAULT_LATENTS_MEAN)
    if z_dim != statistics:
        raise CheckpointMismatch(
            f"{path} has {z_dim} latent channels; Wan 2.1's latent statistics are known for {statistics}"
        )
    return AutoencoderKLWan(base_dim=state["encoder.conv_in.weight"].shape[0], z_dim=z_dim)
