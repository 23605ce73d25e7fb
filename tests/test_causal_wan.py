import pytest
import torch
from diffusers import WanTransformer3DModel

from dragstream_widget.models.causal_wan import (
    CausalWanTransformer3DModel,
    apply_rotary,
    block_causal_mask,
    clean_noisy_mask,
    visible_blocks,
)
from dragstream_widget.models.random_model import TINY, RandomModelSpec, random_transformer

SPEC = RandomModelSpec(
    num_layers=3,
    num_heads=2,
    head_dim=12,
    ffn_dim=32,
    text_dim=8,
    channels=4,
    latent_height=6,
    latent_width=8,
    frames_per_block=2,
)


@pytest.fixture
def model():
    return random_transformer(SPEC, seed=1).eval()


def _inputs(frames=6):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(1, SPEC.channels, frames, SPEC.latent_height, SPEC.latent_width, generator=g)
    text = torch.randn(1, 5, SPEC.text_dim, generator=g)
    return z, text


def test_commit_passes_equal_one_block_causal_pass(model):
    z, text = _inputs()
    tpf = model.tokens_per_frame(SPEC.latent_height, SPEC.latent_width)
    with torch.no_grad():
        mask = block_causal_mask(6, 2, tpf)
        full = model(z, torch.zeros(1), text, attention_mask=mask).sample
        cache = model.new_cache(SPEC.latent_height, SPEC.latent_width)
        blocks = [
            model(z[:, :, i : i + 2], torch.zeros(1), text, cache=cache, commit=True).sample
            for i in (0, 2, 4)
        ]
    assert (full - torch.cat(blocks, 2)).abs().max() <= 1e-5


def test_full_pass_without_cache_equals_diffusers_wan(model):
    """With no cache and no mask, the causal model is Wan itself: the same weights in diffusers' own
    WanTransformer3DModel (its attention processor and RoPE) give the same flow."""
    z, text = _inputs()
    reference = WanTransformer3DModel(
        **{k: v for k, v in model.config.items() if not k.startswith("_")}
    ).eval()
    reference.load_state_dict(model.state_dict())
    with torch.no_grad():
        ours = model(z, torch.full((1,), 400.0), text).sample
        theirs = reference(z, torch.full((1,), 400.0), text).sample
    assert theirs.abs().mean() > 0.1
    assert (ours - theirs).abs().max() <= 1e-5


def test_noisy_block_over_cache_equals_teacher_forced_full_pass(model):
    """A block at t=600 over a cache of clean blocks equals the full pass with per-frame timesteps."""
    z, text = _inputs()
    tpf = model.tokens_per_frame(SPEC.latent_height, SPEC.latent_width)
    noisy = torch.randn(1, SPEC.channels, 2, SPEC.latent_height, SPEC.latent_width)
    with torch.no_grad():
        cache = model.new_cache(SPEC.latent_height, SPEC.latent_width)
        for i in (0, 2):
            model(z[:, :, i : i + 2], torch.zeros(1), text, cache=cache, commit=True)
        cached = model(noisy, torch.full((1,), 600.0), text, cache=cache).sample
        sequence = torch.cat([z[:, :, :4], noisy], 2)
        steps = torch.tensor([[0.0, 0.0, 0.0, 0.0, 600.0, 600.0]])
        full = model(sequence, steps, text, attention_mask=block_causal_mask(6, 2, tpf)).sample
    assert (full[:, :, 4:] - cached).abs().max() <= 1e-5
    assert (full[:, :, 4:] - model(noisy, torch.full((1,), 600.0), text).sample).abs().max() > 1e-3


def test_clean_noisy_training_pass_equals_cached_denoising(model):
    """The training layout (clean copy + noisy copy, one pass) sees what streaming sees, block by block."""
    z, text = _inputs()
    noisy = torch.randn_like(z)
    tpf = model.tokens_per_frame(SPEC.latent_height, SPEC.latent_width)
    steps = torch.tensor([[0.0] * 6 + [900.0, 900.0, 500.0, 500.0, 250.0, 250.0]])
    positions = torch.arange(6).repeat(2)
    with torch.no_grad():
        full = model(
            torch.cat([z, noisy], 2),
            steps,
            text,
            frame_positions=positions,
            attention_mask=clean_noisy_mask(6, 2, tpf),
        ).sample
        cache = model.new_cache(SPEC.latent_height, SPEC.latent_width)
        for b, t in enumerate((900.0, 500.0, 250.0)):
            out = model(noisy[:, :, 2 * b : 2 * b + 2], torch.full((1,), t), text, cache=cache).sample
            assert (full[:, :, 6 + 2 * b : 8 + 2 * b] - out).abs().max() <= 1e-5
            model(z[:, :, 2 * b : 2 * b + 2], torch.zeros(1), text, cache=cache, commit=True)


@pytest.mark.parametrize("window, sinks", [(None, 0), (3, 0), (3, 1), (4, 2), (2, 1)])
def test_visible_blocks_are_the_blocks_a_rolling_cache_holds(window, sinks):
    from dragstream_widget.models.kv_cache import KVCache

    per_block, blocks = 2, 9
    max_frames = None if window is None else window * per_block
    cache = KVCache(1, 1, max_frames, sinks * per_block)
    visible = visible_blocks(blocks, window, sinks)
    for i in range(blocks):
        held = sorted({frame // per_block for frame in cache.cached_frame_indices})
        assert held == visible[i].nonzero().flatten().tolist(), i
        keys = [torch.zeros(1, per_block, 1, 1)]
        cache.append(i * per_block, per_block, keys, keys)
    with pytest.raises(ValueError, match="sink blocks"):
        visible_blocks(4, 2, 2)


def test_windowed_training_pass_equals_streaming_over_a_rolling_cache_with_sinks(model):
    """With clips longer than the KV window, the training masks reproduce the rolling cache and its
    sinks: the clean/noisy pass and the own-rollout layout see what streaming sees, block by block."""
    z, text = _inputs(10)
    noisy = torch.randn_like(z)
    tpf = model.tokens_per_frame(SPEC.latent_height, SPEC.latent_width)
    levels = [900.0, 700.0, 500.0, 300.0, 100.0]
    steps = torch.tensor([[0.0] * 10 + [t for t in levels for _ in range(2)]])
    window = {"window_blocks": 3, "sink_blocks": 1}
    with torch.no_grad():
        full = model(
            torch.cat([z, noisy], 2),
            steps,
            text,
            frame_positions=torch.arange(10).repeat(2),
            attention_mask=clean_noisy_mask(10, 2, tpf, **window),
        ).sample
        unwindowed = model(
            torch.cat([z, noisy], 2),
            steps,
            text,
            frame_positions=torch.arange(10).repeat(2),
            attention_mask=clean_noisy_mask(10, 2, tpf),
        ).sample
        cache = model.new_cache(SPEC.latent_height, SPEC.latent_width, max_frames=6, sink_frames=2)
        for b, t in enumerate(levels):
            out = model(noisy[:, :, 2 * b : 2 * b + 2], torch.full((1,), t), text, cache=cache).sample
            assert (full[:, :, 10 + 2 * b : 12 + 2 * b] - out).abs().max() <= 1e-5
            model(z[:, :, 2 * b : 2 * b + 2], torch.zeros(1), text, cache=cache, commit=True)
        # the last block, made over the context as one sequence (own_rollout's layout)
        sequence = torch.cat([z[:, :, :8], noisy[:, :, 8:]], 2)
        rollout_steps = torch.tensor([[0.0] * 8 + [levels[-1]] * 2])
        rollout = model(
            sequence, rollout_steps, text, attention_mask=block_causal_mask(10, 2, tpf, **window)
        ).sample
        assert (rollout[:, :, 8:] - out).abs().max() <= 1e-5
    assert (unwindowed[:, :, 18:] - out).abs().max() > 1e-3  # the window changes what the last block sees


def test_diffusers_save_and_load_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    loaded = CausalWanTransformer3DModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CausalWanTransformer3DModel)
    assert loaded.config.num_layers == SPEC.num_layers
    z, text = _inputs(2)
    with torch.no_grad():
        a = model(z, torch.full((1,), 500.0), text).sample
        b = loaded(z, torch.full((1,), 500.0), text).sample
    assert torch.equal(a, b)
    names = set(dict(loaded.named_parameters()))
    assert (
        "blocks.0.attn1.to_q.weight" in names and "condition_embedder.text_embedder.linear_1.weight" in names
    )


def test_records_carry_gradients_and_cache_is_read_only(model):
    z, text = _inputs()
    cache = model.new_cache(SPEC.latent_height, SPEC.latent_width)
    with torch.no_grad():
        model(z[:, :, :2], torch.zeros(1), text, cache=cache, commit=True)
    before = cache.snapshot()
    k0 = cache.context(0)[0].clone()
    z_t = z[:, :, 2:4].clone().requires_grad_(True)
    records = {}
    model(z_t, torch.full((1,), 750.0), text, cache=cache, record_layers=(1, 2), records=records)
    assert set(records) == {1, 2}
    assert records[1].shape == (1, 2 * 3 * 4, SPEC.num_heads * SPEC.head_dim)
    records[1].square().sum().backward()
    assert z_t.grad is not None and z_t.grad.abs().sum() > 0
    after = cache.snapshot()
    assert after == before and torch.equal(cache.context(0)[0], k0) and cache.next_frame == 2


def test_frame_offset_places_the_block_relative_to_its_context(model):
    """RoPE is relative: an offset alone changes nothing, but the distance to cached frames does."""
    z, text = _inputs(4)
    with torch.no_grad():
        alone = [model(z[:, :, 2:], torch.zeros(1), text, frame_offset=o).sample for o in (0, 5)]
        cache = model.new_cache(SPEC.latent_height, SPEC.latent_width)
        model(z[:, :, :2], torch.zeros(1), text, cache=cache, commit=True)
        near = model(z[:, :, 2:], torch.zeros(1), text, cache=cache).sample
        far = model(z[:, :, 2:], torch.zeros(1), text, cache=cache, frame_offset=7).sample
    assert (alone[0] - alone[1]).abs().max() <= 1e-5
    assert (near - far).abs().max() > 1e-4
    with pytest.raises(ValueError, match="RoPE range"):
        model(z, torch.zeros(1), text, frame_offset=1023)


def test_rolling_window_keeps_sink_frames_and_bounds_memory(model):
    z, text = _inputs(12)
    cache = model.new_cache(SPEC.latent_height, SPEC.latent_width, max_frames=6, sink_frames=2)
    sizes = []
    with torch.no_grad():
        for i in range(0, 12, 2):
            model(z[:, :, i : i + 2], torch.zeros(1), text, cache=cache, commit=True)
            sizes.append(cache.nbytes())
    assert cache.cached_frame_indices == [0, 1, 8, 9, 10, 11]
    assert cache.next_frame == 12
    assert sizes[-1] == sizes[2] and max(sizes) == sizes[2]


def test_commit_without_cache_is_an_error(model):
    z, text = _inputs(2)
    with pytest.raises(ValueError, match="needs a cache"):
        model(z, torch.zeros(1), text, commit=True)


def test_tiny_spec_derives_tokens_from_config():
    model = random_transformer(TINY)
    assert model.tokens_per_frame(8, 8) == 16
    assert model.num_layers == TINY.num_layers


def test_keys_moved_back_equal_keys_computed_earlier(model):
    """Moving a stored key back on RoPE's time axis is the same as rotating it at the earlier position."""
    grid = (2, SPEC.latent_height // 2, SPEC.latent_width // 2)
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(1, grid[0] * grid[1] * grid[2], SPEC.num_heads, SPEC.head_dim, generator=g)
    late = apply_rotary(keys, model.rotary_at(torch.tensor([9, 10]), *grid[1:]))
    early = apply_rotary(keys, model.rotary_at(torch.tensor([2, 3]), *grid[1:]))
    assert (model.keys_moved_back(late, 7) - early).abs().max() < 1e-5
    assert (late - early).abs().max() > 0.1
