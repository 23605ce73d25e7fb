"""Real backbones: Self-Forcing and CausVid generators on Wan2.1-T2V-1.3B, from local files only.

    from dragstream_widget.models.wan import load_wan_backend
    backend = load_wan_backend("wan_models/Wan2.1-T2V-1.3B", "checkpoints/self_forcing_dmd.pt",
                               preset="self_forcing", device="cuda", dtype=torch.bfloat16)
    session = StreamSession(backend, "a red fox running through fresh snow")

The Wan folder supplies the transformer config, the VAE and the UMT5 text encoder with its tokenizer
(original release layout or diffusers layout); the checkpoint supplies the causal generator's weights.
Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan

from .backend import TransformerBackend
from .base import LatentLayout
from .causal_wan import CausalWanTransformer3DModel
from .sampler import FlowSampler
from .wan_checkpoints import load_generator, read_config
from .wan_text import UMT5TextEncoder, load_text_encoder
from .wan_vae import WanFrameEncoder, WanStreamDecoder, load_wan_vae


@dataclass(frozen=True)
class WanPreset:
    """How a distilled causal Wan generator is stored and sampled."""

    name: str
    checkpoint_key: str  # where the generator's state dict sits in the checkpoint
    steps: tuple[int, ...]
    shift: float
    frames_per_block: int = 3

    def sampler(self) -> FlowSampler:
        return FlowSampler(self.steps, self.shift)


SELF_FORCING = WanPreset("self_forcing", "generator_ema", (1000, 750, 500, 250), 5.0)
CAUSVID = WanPreset("causvid", "generator", (1000, 757, 522), 8.0)
PRESETS = {p.name: p for p in (SELF_FORCING, CAUSVID)}


def preset_named(preset: str | WanPreset) -> WanPreset:
    if isinstance(preset, WanPreset):
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def wan_transformer_config(wan_dir: str | Path) -> dict:
    """The transformer config of a local Wan folder: ``transformer/config.json`` or the original ``config.json``."""
    wan_dir = Path(wan_dir)
    if not wan_dir.is_dir():
        raise FileNotFoundError(f"Wan folder {wan_dir} does not exist")
    for path in (wan_dir / "transformer" / "config.json", wan_dir / "config.json"):
        if path.is_file():
            return read_config(path)
    raise FileNotFoundError(
        f"no transformer config in {wan_dir}: expected transformer/config.json (diffusers layout) "
        "or config.json (original layout)"
    )


def wan_layout(vae: AutoencoderKLWan, frames_per_block: int, height: int, width: int) -> LatentLayout:
    """Latent block shape for ``height x width`` video through ``vae``."""
    stride = vae.config.scale_factor_spatial
    if height % (2 * stride) or width % (2 * stride):
        raise ValueError(f"height and width must be multiples of {2 * stride}, got {height}x{width}")
    return LatentLayout(
        vae.config.z_dim,
        height // stride,
        width // stride,
        frames_per_block,
        height,
        width,
        pixel_frames_per_latent=vae.config.scale_factor_temporal,
    )


def assemble_backend(
    transformer: CausalWanTransformer3DModel,
    vae: AutoencoderKLWan,
    text_encoder: UMT5TextEncoder,
    preset: str | WanPreset = SELF_FORCING,
    height: int = 480,
    width: int = 832,
    cache_max_frames: int | None = None,
    cache_sink_frames: int = 0,
) -> TransformerBackend:
    """A :class:`TransformerBackend` streaming ``transformer`` with Wan's VAE and text encoder."""
    preset = preset_named(preset)
    if vae.config.z_dim != transformer.config.in_channels:
        raise ValueError(
            f"the VAE has {vae.config.z_dim} latent channels, the transformer {transformer.config.in_channels}"
        )
    return TransformerBackend(
        transformer,
        wan_layout(vae, preset.frames_per_block, height, width),
        preset.sampler(),
        text_encoder,
        lambda: WanStreamDecoder(vae),
        frame_encoder=WanFrameEncoder(vae),
        cache_max_frames=cache_max_frames,
        cache_sink_frames=cache_sink_frames,
        name=f"wan-{preset.name}",
    )


def load_wan_backend(
    wan_dir: str | Path,
    checkpoint: str | Path,
    preset: str | WanPreset = "self_forcing",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    height: int = 480,
    width: int = 832,
    cache_max_frames: int | None = None,
    cache_sink_frames: int = 0,
) -> TransformerBackend:
    """Self-Forcing or CausVid on a local Wan2.1 folder, ready for :class:`StreamSession`."""
    preset = preset_named(preset)
    transformer = load_generator(checkpoint, wan_transformer_config(wan_dir), preset.checkpoint_key, dtype)
    vae = load_wan_vae(wan_dir, dtype).to(device)
    text_encoder = load_text_encoder(wan_dir, dtype, device)
    return assemble_backend(
        transformer.to(device), vae, text_encoder, preset, height, width, cache_max_frames, cache_sink_frames
    )
