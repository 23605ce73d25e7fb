"""A :class:`VideoBackend` made of a causal Wan transformer, a text encoder and a latent codec."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .base import DenoiseResult, LatentLayout, StreamDecoder
from .causal_wan import CausalWanTransformer3DModel, KVFilter
from .kv_cache import KVCache, check_window
from .sampler import FlowSampler, add_noise, x0_from_flow


def middle_layers(num_layers: int, count: int = 4) -> tuple[int, ...]:
    """Layers whose features DragStream supervises: 12-15 of 30 on Wan, the middle ones elsewhere."""
    count = min(count, num_layers)
    first = max(0, round(num_layers * 0.4))
    first = min(first, num_layers - count)
    return tuple(range(first, first + count))


def tokens_to_latent_grid(tokens: torch.Tensor, grid: tuple[int, int, int], latent_size: tuple[int, int]):
    """``[B, F*h*w, D]`` token features to ``[B, D, F, H, W]`` at latent resolution (bilinear upsampling)."""
    frames, h, w = grid
    batch, _, dim = tokens.shape
    maps = tokens.transpose(1, 2).reshape(batch, dim, frames, h, w)
    if (h, w) == tuple(latent_size):
        return maps
    flat = maps.permute(0, 2, 1, 3, 4).reshape(batch * frames, dim, h, w)
    up = F.interpolate(flat, size=latent_size, mode="bilinear", align_corners=False)
    return up.reshape(batch, frames, dim, *latent_size).permute(0, 2, 1, 3, 4).contiguous()


class TransformerBackend:
    """Drives a :class:`CausalWanTransformer3DModel` block by block with a flow sampler.

    ``text_encoder`` maps a prompt to ``[1, tokens, text_dim]``; ``decoder_factory`` makes a fresh
    :class:`StreamDecoder`; ``frame_encoder`` (optional) encodes given frames to latents.
    ``commit_sigma`` > 0 writes the cache from the block noised to that level (context noise, for
    models trained with noisy context); 0 is the clean t=0 pass of Self-Forcing. With
    ``commit_at_last_step`` the last denoising pass writes the cache itself, from the block at the last
    step's noise level, which saves a pass per block (for models trained with context at that level).
    ``streaming_transformer`` (optional, e.g. :func:`~.quantize.int8_blocks_copy`) is a faster copy of the
    transformer for the passes that record no features and need no gradient: plain denoising steps and
    the commit pass. Drags optimise and compare features with the transformer itself.
    ``name`` identifies the model (the engine finds drag settings tuned for it by this name).
    """

    def __init__(
        self,
        transformer: CausalWanTransformer3DModel,
        layout: LatentLayout,
        sampler: FlowSampler,
        text_encoder: Callable[[str], torch.Tensor],
        decoder_factory: Callable[[], StreamDecoder],
        frame_encoder: Callable[[np.ndarray], torch.Tensor] | None = None,
        feature_layers: tuple[int, ...] | None = None,
        cache_max_frames: int | None = None,
        cache_sink_frames: int = 0,
        commit_sigma: float = 0.0,
        commit_at_last_step: bool = False,
        streaming_transformer: CausalWanTransformer3DModel | None = None,
        name: str = "transformer",
    ):
        if not 0.0 <= commit_sigma < 1.0:
            raise ValueError(f"commit_sigma must lie in [0, 1), got {commit_sigma}")
        if commit_at_last_step and commit_sigma:
            raise ValueError(
                "commit_at_last_step commits at the last step's noise level; leave commit_sigma at 0"
            )
        check_window(cache_max_frames, cache_sink_frames)
        self.transformer = transformer.eval().requires_grad_(False)
        self.streaming_transformer = streaming_transformer
        self.name = name
        self.layout = layout
        self.sampler = sampler
        self.text_encoder = text_encoder
        self.decoder_factory = decoder_factory
        self.frame_encoder = frame_encoder
        self.num_layers = transformer.num_layers
        self.feature_layers = feature_layers or middle_layers(self.num_layers)
        bad = [i for i in self.feature_layers if not 0 <= i < self.num_layers]
        if bad:
            raise ValueError(f"feature layers {bad} do not exist in a {self.num_layers}-layer model")
        self.cache_max_frames = cache_max_frames
        self.cache_sink_frames = cache_sink_frames
        self.commit_at_last_step = commit_at_last_step
        self.commit_sigma = sampler.sigma(sampler.num_steps - 1) if commit_at_last_step else commit_sigma
        self._prompt_memo: dict[str, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype: that of the patch embedding (some modules stay in float32)."""
        return self.transformer.patch_embedding.weight.dtype

    def encode_prompt(self, prompt: str) -> torch.Tensor:
        if prompt not in self._prompt_memo:
            with torch.no_grad():
                embeds = self.text_encoder(prompt)
            self._prompt_memo = {prompt: embeds.to(self.device, self.dtype)}
        return self._prompt_memo[prompt]

    def new_cache(self) -> KVCache:
        return self.transformer.new_cache(
            self.layout.height, self.layout.width, self.cache_max_frames, self.cache_sink_frames
        )

    def _timesteps(self, value: float, batch: int) -> torch.Tensor:
        return torch.full((batch,), value, device=self.device, dtype=torch.float32)

    def denoise(
        self,
        z_t: torch.Tensor,
        step_index: int,
        cache: KVCache,
        prompt_embeds: torch.Tensor,
        *,
        record_layers: tuple[int, ...] = (),
        kv_filter: KVFilter | None = None,
        features_only: bool = False,
        commit: bool = False,
    ) -> DenoiseResult:
        records: dict[int, torch.Tensor] = {}
        if prompt_embeds.shape[0] != z_t.shape[0]:  # one prompt for a batch of variants of the block
            prompt_embeds = prompt_embeds.expand(z_t.shape[0], -1, -1)
        plain = (
            not record_layers and kv_filter is None and not (torch.is_grad_enabled() and z_t.requires_grad)
        )
        model = (
            self.streaming_transformer
            if plain and self.streaming_transformer is not None
            else self.transformer
        )
        flow = model(
            z_t.to(self.dtype),
            self._timesteps(self.sampler.timestep(step_index), z_t.shape[0]),
            prompt_embeds,
            cache=cache,
            kv_filter=kv_filter,
            record_layers=record_layers,
            records=records,
            features_only=features_only,
            commit=commit,
        ).sample
        x0 = None if features_only else x0_from_flow(z_t, flow.to(z_t.dtype), self.sampler.sigma(step_index))
        p_t, p_h, p_w = self.transformer.config.patch_size
        grid = (z_t.shape[2] // p_t, z_t.shape[3] // p_h, z_t.shape[4] // p_w)
        features = {i: tokens_to_latent_grid(t, grid, self.layout.latent_size) for i, t in records.items()}
        return DenoiseResult(x0, features)

    @torch.no_grad()
    def commit(
        self, z0: torch.Tensor, cache: KVCache, prompt_embeds: torch.Tensor, noise: torch.Tensor | None = None
    ) -> None:
        if self.commit_sigma > 0:
            if noise is None:
                raise ValueError("this backend commits noisy context (commit_sigma > 0) and needs the noise")
            z0 = add_noise(z0, noise.to(z0), self.commit_sigma)
        (self.streaming_transformer or self.transformer)(
            z0.to(self.dtype),
            self._timesteps(self.commit_sigma * 1000, z0.shape[0]),
            prompt_embeds,
            cache=cache,
            commit=True,
        )

    def new_decoder(self) -> StreamDecoder:
        return self.decoder_factory()

    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        if self.frame_encoder is None:
            raise NotImplementedError(
                "this backend has no frame encoder, so it cannot start from given frames"
            )
        with torch.no_grad():
            return self.frame_encoder(frames).to(self.device, torch.float32)
