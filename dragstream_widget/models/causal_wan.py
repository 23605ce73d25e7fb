"""Block-causal Wan transformer on diffusers' ``WanTransformer3DModel``.

The subclass keeps diffusers' config, parameter names, ``save_pretrained`` and ``from_pretrained``;
it overrides only ``forward`` so that a call can

* place its frames at an absolute frame offset for RoPE (frame ``offset`` .. ``offset + F``),
* take one timestep per frame (context frames at t=0 beside a noisy block, for training),
* attend to the keys/values of earlier frames held in a :class:`KVCache` (stored after RoPE),
* low-pass those context keys/values through a filter hook (SFS),
* record chosen layers' self-attention outputs (before the output projection) with their graph,
* write its own detached keys/values to the cache when it is the commit pass.

Everything per call lives in a :class:`ForwardState` that the self-attention processors read; the
diffusers block code runs unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers import WanTransformer3DModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput

from .kv_cache import KVCache, check_window

# A filter on the attention window's keys/values (context frames first, then the current ones):
# (keys, values, layer, (frames, h, w), num_context_frames) -> (keys, values).
KVFilter = Callable[
    [torch.Tensor, torch.Tensor, int, tuple[int, int, int], int], tuple[torch.Tensor, torch.Tensor]
]


@dataclass
class ForwardState:
    """What one forward call asks of the self-attention layers, and what they hand back."""

    grid: tuple[int, int, int]
    cache: KVCache | None = None
    commit: bool = False
    kv_filter: KVFilter | None = None
    record_layers: frozenset[int] = frozenset()
    attention_mask: torch.Tensor | None = None
    records: dict[int, torch.Tensor] = field(default_factory=dict)
    new_keys: dict[int, torch.Tensor] = field(default_factory=dict)
    new_values: dict[int, torch.Tensor] = field(default_factory=dict)


def apply_rotary(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Wan's interleaved rotary embedding on ``[B, L, heads, head_dim]``: channels ``2i, 2i + 1`` read as one
    complex number and multiplied by ``turns[..., i]`` (unit complex numbers, ``[1 or B, L, 1, head_dim / 2]``)."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * turns).flatten(-2).type_as(x)


def rotary_turns(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Diffusers' Wan RoPE tables (cos and sin repeated for both channels of a pair) as complex64 turns."""
    return torch.complex(cos[..., 0::2].float(), sin[..., 1::2].float())


class CausalSelfAttnProcessor:
    """Self-attention over cached context frames plus the current frames."""

    def __init__(self, layer_index: int):
        self.layer_index = layer_index
        self.state: ForwardState | None = None

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        state = self.state
        if state is None:
            raise RuntimeError(
                "CausalWanTransformer3DModel layers must be called through the model's forward"
            )
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(attn.to_k(hidden_states)).unflatten(2, (attn.heads, -1))
        value = attn.to_v(hidden_states).unflatten(2, (attn.heads, -1))
        query = apply_rotary(query, rotary_emb)
        key = apply_rotary(key, rotary_emb)

        layer = self.layer_index
        context = state.cache.context(layer) if state.cache is not None else None
        all_keys, all_values, context_frames = key, value, 0
        if context is not None:
            ctx_keys, ctx_values = context
            context_frames = ctx_keys.shape[1] // (state.grid[1] * state.grid[2])
            if ctx_keys.shape[0] != key.shape[0]:  # one cached context shared by a batch of variants
                ctx_keys = ctx_keys.expand(key.shape[0], -1, -1, -1)
                ctx_values = ctx_values.expand(key.shape[0], -1, -1, -1)
            all_keys = torch.cat([ctx_keys.to(key.dtype), key], dim=1)
            all_values = torch.cat([ctx_values.to(value.dtype), value], dim=1)
        if state.kv_filter is not None:
            window_grid = (context_frames + state.grid[0], *state.grid[1:])
            all_keys, all_values = state.kv_filter(all_keys, all_values, layer, window_grid, context_frames)

        out = F.scaled_dot_product_attention(
            query.transpose(1, 2),
            all_keys.transpose(1, 2),
            all_values.transpose(1, 2),
            attn_mask=state.attention_mask,
        )
        out = out.transpose(1, 2).flatten(2, 3).type_as(query)
        if layer in state.record_layers:
            state.records[layer] = out
        if state.commit:
            state.new_keys[layer] = key.detach()
            state.new_values[layer] = value.detach()
        return attn.to_out[1](attn.to_out[0](out))


def visible_blocks(
    num_blocks: int, window_blocks: int | None = None, sink_blocks: int = 0, device=None
) -> torch.Tensor:
    """Boolean ``[num_blocks, num_blocks]``: which earlier blocks the KV cache holds when block i is made.

    Without a window, every earlier block. With one (``KVCache(max_frames, sink_frames)`` in blocks), the
    first ``sink_blocks`` blocks and the ``window_blocks - sink_blocks`` latest ones before block i.
    """
    block = torch.arange(num_blocks, device=device)
    earlier = block[:, None] > block[None, :]
    if window_blocks is None:
        return earlier
    check_window(window_blocks, sink_blocks, unit="blocks")
    recent = block[:, None] - block[None, :] <= window_blocks - sink_blocks
    return earlier & (recent | (block[None, :] < sink_blocks))


def _token_mask(blocks: torch.Tensor, frames_per_block: int, tokens_per_frame: int) -> torch.Tensor:
    """A ``[blocks, blocks]`` mask spread to tokens."""
    per_block = frames_per_block * tokens_per_frame
    return blocks.repeat_interleave(per_block, dim=0).repeat_interleave(per_block, dim=1)


def block_causal_mask(
    num_frames: int,
    frames_per_block: int,
    tokens_per_frame: int,
    device=None,
    window_blocks: int | None = None,
    sink_blocks: int = 0,
) -> torch.Tensor:
    """Boolean ``[L, L]`` mask: a token sees every token of its own block and of the earlier blocks that a
    KV cache of ``window_blocks`` blocks with ``sink_blocks`` sinks holds (all earlier blocks without one),
    as when each block is generated and committed over that cache."""
    num_blocks = -(-num_frames // frames_per_block)
    own = torch.eye(num_blocks, dtype=torch.bool, device=device)
    blocks = own | visible_blocks(num_blocks, window_blocks, sink_blocks, device)
    return _token_mask(blocks, frames_per_block, tokens_per_frame)[
        : num_frames * tokens_per_frame, : num_frames * tokens_per_frame
    ]


def clean_noisy_mask(
    num_frames: int,
    frames_per_block: int,
    tokens_per_frame: int,
    device=None,
    window_blocks: int | None = None,
    sink_blocks: int = 0,
) -> torch.Tensor:
    """Mask for a clip given twice, clean then noisy (``2 * num_frames`` frames), in one pass.

    Clean block j sees itself and the clean blocks the cache holds when j is committed (this builds the
    context, as commit passes would); noisy block i sees the clean blocks the cache holds when i is
    made, and itself: exactly what denoising block i over a cache of clean blocks sees. The cache holds
    every earlier block, or ``window_blocks`` blocks with ``sink_blocks`` sinks.
    """
    if num_frames % frames_per_block:
        raise ValueError(f"{num_frames} frames do not fill whole blocks of {frames_per_block}")
    num_blocks = num_frames // frames_per_block
    earlier = visible_blocks(num_blocks, window_blocks, sink_blocks, device)
    own = torch.eye(num_blocks, dtype=torch.bool, device=device)
    top = torch.cat([earlier | own, torch.zeros_like(own)], dim=1)
    bottom = torch.cat([earlier, own], dim=1)
    return _token_mask(torch.cat([top, bottom], dim=0), frames_per_block, tokens_per_frame)


def wan_config(
    num_layers: int,
    num_heads: int,
    head_dim: int,
    ffn_dim: int,
    channels: int,
    text_dim: int,
    freq_dim: int,
    rope_max_seq_len: int = 1024,
) -> dict:
    """Constructor arguments of a Wan-2.1-style transformer (patch (1, 2, 2), RMS q/k norm) of the given size."""
    return dict(
        patch_size=(1, 2, 2),
        num_attention_heads=num_heads,
        attention_head_dim=head_dim,
        in_channels=channels,
        out_channels=channels,
        text_dim=text_dim,
        freq_dim=freq_dim,
        ffn_dim=ffn_dim,
        num_layers=num_layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=rope_max_seq_len,
    )


class CausalWanTransformer3DModel(WanTransformer3DModel):
    """``WanTransformer3DModel`` driven block by block with a KV cache (see module docstring)."""

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
    ) -> None:
        # The parent's signature, repeated so that diffusers' config machinery sees every argument.
        super().__init__(
            patch_size,
            num_attention_heads,
            attention_head_dim,
            in_channels,
            out_channels,
            text_dim,
            freq_dim,
            ffn_dim,
            num_layers,
            cross_attn_norm,
            qk_norm,
            eps,
            image_dim,
            added_kv_proj_dim,
            rope_max_seq_len,
            pos_embed_seq_len,
        )
        self.install_causal_processors()

    def install_causal_processors(self) -> None:
        for index, block in enumerate(self.blocks):
            block.attn1.set_processor(CausalSelfAttnProcessor(index))

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def tokens_per_frame(self, latent_height: int, latent_width: int) -> int:
        _, p_h, p_w = self.config.patch_size
        return (latent_height // p_h) * (latent_width // p_w)

    def new_cache(
        self, latent_height: int, latent_width: int, max_frames: int | None = None, sink_frames: int = 0
    ):
        return KVCache(
            self.num_layers, self.tokens_per_frame(latent_height, latent_width), max_frames, sink_frames
        )

    def rotary_at(self, frame_positions: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """RoPE turns (:func:`apply_rotary`) for a token grid whose frames sit at absolute ``frame_positions``
        (a 1-D int tensor): ``[1, frames * height * width, 1, head_dim / 2]`` complex64."""
        rope = self.rope
        frames = len(frame_positions)
        if int(frame_positions.max()) >= rope.max_seq_len or int(frame_positions.min()) < 0:
            raise ValueError(
                f"frame {int(frame_positions.max())} exceeds the model's RoPE range of {rope.max_seq_len} frames"
            )
        sizes = [rope.t_dim, rope.h_dim, rope.w_dim]
        tables = []
        for table in (rope.freqs_cos, rope.freqs_sin):
            t, h, w = table.split(sizes, dim=1)
            parts = [
                t[frame_positions.to(t.device)].view(frames, 1, 1, -1).expand(frames, height, width, -1),
                h[:height].view(1, height, 1, -1).expand(frames, height, width, -1),
                w[:width].view(1, 1, width, -1).expand(frames, height, width, -1),
            ]
            tables.append(torch.cat(parts, dim=-1).reshape(1, frames * height * width, 1, -1))
        return rotary_turns(*tables)

    def keys_moved_back(self, keys: torch.Tensor, frames: int) -> torch.Tensor:
        """Keys ``[B, L, heads, head_dim]`` stored after RoPE, turned back by ``frames`` positions on its time
        axis: as if computed ``frames`` frames earlier. Attention reads only distances between frames, so
        moving every cached key and the next frame back by the same amount changes no output."""
        rope = self.rope
        cos_t, sin_t = (table[frames, : rope.t_dim] for table in (rope.freqs_cos, rope.freqs_sin))
        spatial = rope.h_dim + rope.w_dim
        cos = torch.cat((cos_t, cos_t.new_ones(spatial)))
        sin = torch.cat((sin_t, sin_t.new_zeros(spatial)))
        return apply_rotary(keys, rotary_turns(cos, -sin).to(keys.device))  # the inverse rotation

    def make_room(self, cache: KVCache, frames: int) -> None:
        """Before a pass of ``frames`` frames placed after ``cache`` (``forward`` calls it): where they would pass the end of the RoPE
        table, moves the cache back so that its frames start at position 0 (sinks before it), and a
        stream with a rolling window goes on for ever. An unbounded cache cannot be moved; the pass then
        reports the RoPE range."""
        if cache.next_frame + frames <= self.rope.max_seq_len:
            return
        shift = cache.next_frame - cache.num_cached_frames + cache.sink_frames
        if shift > 0:
            cache.move_back(shift, self.keys_moved_back)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict | None = None,
        *,
        frame_offset: int | None = None,
        frame_positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        commit: bool = False,
        kv_filter: KVFilter | None = None,
        record_layers: Iterable[int] = (),
        attention_mask: torch.Tensor | None = None,
        records: dict[int, torch.Tensor] | None = None,
        features_only: bool = False,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor | None]:
        """Predict the flow for ``hidden_states`` ``[B, C, F, H, W]``.

        ``timestep`` is ``[B]`` (one per sample) or ``[B, F]`` (one per frame). ``frame_offset`` defaults to
        the cache's next frame (0 without a cache; the cache moved back first where the frames would pass
        the end of the RoPE table, see :meth:`make_room`); ``frame_positions`` instead gives every frame its own
        position (training on a clean copy beside a noisy copy of a clip). ``records`` (a dict) receives the recorded layers'
        self-attention outputs, each ``[B, F * h * w, inner_dim]``. With ``commit=True`` the call's keys and
        values are appended to ``cache``; otherwise the cache is only read. With ``features_only=True`` the
        layers after the deepest recorded one and the output head are skipped, and the sample is None.
        """
        if encoder_hidden_states_image is not None:
            raise ValueError("image conditioning is not supported by the causal model")
        if commit and cache is None:
            raise ValueError("a commit pass needs a cache to write to")
        record_layers = frozenset(record_layers)
        if features_only and (commit or not record_layers):
            raise ValueError("features_only needs recorded layers and cannot be a commit pass")
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        grid = (frames // p_t, height // p_h, width // p_w)
        if frame_offset is None and cache is not None:
            self.make_room(cache, grid[0])
        if frame_offset is None:
            frame_offset = cache.next_frame if cache is not None else 0
        if frame_positions is None:
            frame_positions = torch.arange(frame_offset, frame_offset + grid[0])
        elif commit:
            raise ValueError(
                "a commit pass places its frames at the cache's next frame; give no frame_positions"
            )
        rotary = self.rotary_at(frame_positions, grid[1], grid[2])

        tokens = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2).contiguous()
        per_token_steps = None
        if timestep.ndim == 2:
            tokens_per_frame = grid[1] * grid[2]
            timestep = timestep.repeat_interleave(tokens_per_frame, dim=1)
            per_token_steps = timestep.shape[1]
            timestep = timestep.flatten()
        temb, timestep_proj, text, _ = self.condition_embedder(
            timestep, encoder_hidden_states, None, timestep_seq_len=per_token_steps
        )
        if per_token_steps is not None:
            timestep_proj = timestep_proj.unflatten(2, (6, -1))
        else:
            timestep_proj = timestep_proj.unflatten(1, (6, -1))

        state = ForwardState(
            grid=grid,
            cache=cache,
            commit=commit,
            kv_filter=kv_filter,
            record_layers=record_layers,
            attention_mask=attention_mask,
        )
        processors = [block.attn1.processor for block in self.blocks]
        for processor in processors:
            processor.state = state
        blocks = self.blocks[: max(record_layers) + 1] if features_only else self.blocks
        try:
            for block in blocks:
                if torch.is_grad_enabled() and self.gradient_checkpointing:
                    tokens = self._gradient_checkpointing_func(block, tokens, text, timestep_proj, rotary)
                else:
                    tokens = block(tokens, text, timestep_proj, rotary)
        finally:
            for processor in processors:
                processor.state = None
        if records is not None:
            records.update(state.records)
        if features_only:
            return (None,) if not return_dict else Transformer2DModelOutput(sample=None)

        if temb.ndim == 3:
            shift, scale = (self.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).chunk(2, dim=2)
            shift, scale = shift.squeeze(2), scale.squeeze(2)
        else:
            shift, scale = (self.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
        tokens = (self.norm_out(tokens.float()) * (1 + scale) + shift).type_as(tokens)
        tokens = self.proj_out(tokens)
        tokens = tokens.reshape(batch, *grid, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        output = tokens.flatten(6, 7).flatten(4, 5).flatten(2, 3)

        if commit:
            cache.append(
                frame_offset,
                grid[0],
                [state.new_keys[i] for i in range(self.num_layers)],
                [state.new_values[i] for i in range(self.num_layers)],
            )
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
