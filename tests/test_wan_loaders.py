"""Loading real-backbone files: tiny random checkpoints written in each original key format, loaded for real."""

import json
import re

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan
from transformers import UMT5Config, UMT5EncoderModel

from dragstream_widget.engine.session import StreamSession
from dragstream_widget.models.random_model import RandomModelSpec, random_transformer
from dragstream_widget.models.wan import CAUSVID, SELF_FORCING, load_wan_backend, wan_transformer_config
from dragstream_widget.models.wan_checkpoints import CheckpointMismatch, load_generator, transformer_config
from dragstream_widget.models.wan_text import UMT5TextEncoder, load_text_encoder, word_tokenizer
from dragstream_widget.models.wan_vae import denormalize_latents

TEXT_DIM = 16
SPEC = RandomModelSpec(num_layers=2, num_heads=2, head_dim=8, ffn_dim=32, text_dim=TEXT_DIM, channels=16)
WORDS = "a red fox running through fresh snow in the forest".split()


# ----- writers of the original formats (Wan's own module names) -------------------------------------

WAN_TOP = {
    "proj_out": "head.head",
    "condition_embedder.time_embedder.linear_1": "time_embedding.0",
    "condition_embedder.time_embedder.linear_2": "time_embedding.2",
    "condition_embedder.time_proj": "time_projection.1",
    "condition_embedder.text_embedder.linear_1": "text_embedding.0",
    "condition_embedder.text_embedder.linear_2": "text_embedding.2",
}
WAN_BLOCK = {
    "scale_shift_table": "modulation",
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn1.norm_q": "self_attn.norm_q",
    "attn1.norm_k": "self_attn.norm_k",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "attn2.norm_q": "cross_attn.norm_q",
    "attn2.norm_k": "cross_attn.norm_k",
    "norm2": "norm3",  # Wan's affine cross-attention norm is its norm3
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
}


def wan_transformer_name(key: str) -> str:
    module, leaf = key.rsplit(".", 1) if key.count(".") else ("", key)
    if key == "scale_shift_table":
        return "head.modulation"
    block = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    if block:
        inner = block.group(2)
        if inner == "scale_shift_table":
            return f"blocks.{block.group(1)}.modulation"
        module, leaf = inner.rsplit(".", 1)
        return f"blocks.{block.group(1)}.{WAN_BLOCK[module]}.{leaf}"
    return f"{WAN_TOP.get(module, module)}.{leaf}"


def wan_original_config(model) -> dict:
    c = model.config
    return {
        "_class_name": "WanModel",
        "model_type": "t2v",
        "dim": c.num_attention_heads * c.attention_head_dim,
        "ffn_dim": c.ffn_dim,
        "freq_dim": c.freq_dim,
        "in_dim": c.in_channels,
        "out_dim": c.out_channels,
        "num_heads": c.num_attention_heads,
        "num_layers": c.num_layers,
        "text_dim": c.text_dim,
        "eps": c.eps,
    }


def generator_checkpoint(model, key: str, path) -> dict:
    weights = {f"model.{wan_transformer_name(k)}": v.clone() for k, v in model.state_dict().items()}
    torch.save({key: weights}, path)
    return weights


RESNET_PARTS = {"norm1": "residual.0", "conv1": "residual.2", "norm2": "residual.3", "conv2": "residual.6"}
RESNET_PARTS["conv_shortcut"] = "shortcut"


def wan_vae_name(key: str) -> str:
    """Wan's VAE names: Encoder3d/Decoder3d with conv1, downsamples/upsamples (flat), middle, head."""
    if key.startswith(("quant_conv", "post_quant_conv")):
        return key.replace("post_quant_conv", "conv2").replace("quant_conv", "conv1")
    if re.search(r"(resnets\.\d|down_blocks\.\d+)\.(norm|conv)", key):
        for ours, theirs in RESNET_PARTS.items():
            key = re.sub(rf"\.{ours}\.(weight|bias|gamma)$", rf".{theirs}.\1", key)
    key = (
        key.replace(".conv_in.", ".conv1.")
        .replace(".norm_out.", ".head.0.")
        .replace(".conv_out.", ".head.2.")
    )
    key = re.sub(r"mid_block\.resnets\.(\d)", lambda m: f"middle.{2 * int(m.group(1))}", key)
    key = key.replace("mid_block.attentions.0", "middle.1").replace(
        "encoder.down_blocks.", "encoder.downsamples."
    )
    key = re.sub(
        r"up_blocks\.(\d)\.resnets\.(\d)", lambda m: f"upsamples.{4 * int(m.group(1)) + int(m.group(2))}", key
    )
    return re.sub(r"up_blocks\.(\d)\.upsamplers\.0", lambda m: f"upsamples.{4 * int(m.group(1)) + 3}", key)


WAN_T5_BLOCK = {
    "layer.0.layer_norm": "norm1",
    "layer.0.SelfAttention.q": "attn.q",
    "layer.0.SelfAttention.k": "attn.k",
    "layer.0.SelfAttention.v": "attn.v",
    "layer.0.SelfAttention.o": "attn.o",
    "layer.0.SelfAttention.relative_attention_bias": "pos_embedding.embedding",
    "layer.1.layer_norm": "norm2",
    "layer.1.DenseReluDense.wi_0": "ffn.gate.0",
    "layer.1.DenseReluDense.wi_1": "ffn.fc1",
    "layer.1.DenseReluDense.wo": "ffn.fc2",
}


def wan_t5_checkpoint(model: UMT5EncoderModel) -> dict:
    """Wan's T5Encoder names: token_embedding, blocks.i.{norm1,attn,norm2,ffn,pos_embedding}, norm."""
    out = {"token_embedding.weight": model.shared.weight.clone()}
    for key, value in model.state_dict().items():
        block = re.fullmatch(r"encoder\.block\.(\d+)\.(.+)\.weight", key)
        if block:
            out[f"blocks.{block.group(1)}.{WAN_T5_BLOCK[block.group(2)]}.weight"] = value.clone()
    out["norm.weight"] = model.encoder.final_layer_norm.weight.clone()
    return out


# ----- tiny parts --------------------------------------------------------------------------------


def tiny_parts(seed: int = 0):
    transformer = random_transformer(SPEC, seed).eval()
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=SPEC.channels
    ).eval()  # Wan 2.1's structure and statistics, narrow
    text_config = UMT5Config(
        vocab_size=40,
        d_model=TEXT_DIM,
        d_kv=4,
        d_ff=24,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu",
    )
    text_model = UMT5EncoderModel(text_config).eval()
    return transformer, vae, text_model


@pytest.fixture(scope="module")
def parts():
    return tiny_parts()


def assert_same_weights(loaded: torch.nn.Module, original: torch.nn.Module):
    mine, theirs = loaded.state_dict(), original.state_dict()
    assert mine.keys() == theirs.keys()
    for k in mine:
        assert torch.equal(mine[k].float(), theirs[k].float()), k


# ----- generator checkpoints ---------------------------------------------------------------------


@pytest.mark.parametrize("preset", [SELF_FORCING, CAUSVID])
def test_generator_checkpoints_load_exactly(preset, parts, tmp_path):
    transformer = parts[0]
    path = tmp_path / "generator.pt"
    saved = generator_checkpoint(transformer, preset.checkpoint_key, path)
    assert "model.blocks.0.self_attn.q.weight" in saved and "model.head.modulation" in saved
    loaded = load_generator(path, wan_original_config(transformer), preset.checkpoint_key)
    assert_same_weights(loaded, transformer)
    assert type(loaded).__name__ == "CausalWanTransformer3DModel"


def test_original_config_translates_to_the_diffusers_config(parts):
    transformer = parts[0]
    translated = transformer_config(wan_original_config(transformer))
    for name, value in translated.items():
        assert (
            tuple(value) == tuple(transformer.config[name])
            if name == "patch_size"
            else value == transformer.config[name]
        )
    assert transformer_config(dict(transformer.config))["num_layers"] == SPEC.num_layers


def test_mismatches_are_named_with_counts(parts, tmp_path):
    transformer = parts[0]
    weights = {f"model.{wan_transformer_name(k)}": v for k, v in transformer.state_dict().items()}
    del weights["model.blocks.1.ffn.0.weight"]
    weights["model.blocks.0.extra.weight"] = torch.zeros(1)
    weights["model.head.head.weight"] = torch.zeros(3, 3)
    torch.save({"generator_ema": weights}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointMismatch) as error:
        load_generator(tmp_path / "bad.pt", wan_original_config(transformer), "generator_ema")
    message = str(error.value)
    assert "1 missing keys: blocks.1.ffn.net.0.proj.weight" in message
    assert "1 unexpected keys: blocks.0.extra.weight" in message
    assert "1 wrong shapes: proj_out.weight (checkpoint (3, 3), model (64, 16))" in message


def test_a_checkpoint_without_the_generator_entry_is_named(parts, tmp_path):
    generator_checkpoint(parts[0], "generator", tmp_path / "causvid.pt")
    with pytest.raises(
        CheckpointMismatch, match=r"no 'generator_ema' entry \(top-level entries: generator\)"
    ):
        load_generator(tmp_path / "causvid.pt", wan_original_config(parts[0]), "generator_ema")


# ----- Wan folders -------------------------------------------------------------------------------


def write_diffusers_folder(folder, parts):
    transformer, vae, text_model = parts
    transformer.save_config(folder / "transformer")
    vae.save_pretrained(folder / "vae")
    text_model.save_pretrained(folder / "text_encoder")
    word_tokenizer(WORDS).save_pretrained(folder / "tokenizer")


def write_original_folder(folder, parts):
    transformer, vae, text_model = parts
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(wan_original_config(transformer)))
    torch.save({wan_vae_name(k): v for k, v in vae.state_dict().items()}, folder / "Wan2.1_VAE.pth")
    torch.save(wan_t5_checkpoint(text_model), folder / "models_t5_umt5-xxl-enc-bf16.pth")
    word_tokenizer(WORDS).save_pretrained(folder / "google" / "umt5-xxl")


@pytest.mark.parametrize("layout", ["diffusers", "original"])
def test_wan_folder_parts_load_exactly(layout, parts, tmp_path):
    transformer, vae, text_model = parts
    (write_diffusers_folder if layout == "diffusers" else write_original_folder)(tmp_path, parts)
    generator_checkpoint(transformer, "generator_ema", tmp_path / "self_forcing_dmd.pt")
    backend = load_wan_backend(
        tmp_path, tmp_path / "self_forcing_dmd.pt", "self_forcing", height=32, width=48
    )
    assert_same_weights(backend.transformer, transformer)
    assert_same_weights(backend.text_encoder.model, text_model)
    decoder = backend.new_decoder()
    assert_same_weights(decoder.vae, vae)
    assert decoder.vae.config.latents_std == vae.config.latents_std
    assert backend.layout.block_shape == (16, 3, 4, 6) and backend.layout.pixel_frames_per_latent == 4
    assert backend.sampler.steps == (1000, 750, 500, 250) and backend.sampler.shift == 5.0


def test_the_real_loader_streams_blocks_through_stream_session(parts, tmp_path):
    transformer, vae, text_model = parts
    write_diffusers_folder(tmp_path, parts)
    generator_checkpoint(transformer, "generator", tmp_path / "model.pt")
    backend = load_wan_backend(tmp_path, tmp_path / "model.pt", "causvid", height=32, width=32)
    assert backend.sampler.steps == (1000, 757, 522) and backend.sampler.shift == 8.0
    session = StreamSession(backend, "a red fox in fresh snow", seed=0)
    session.step()
    session.step()
    frames = session.frames()
    assert frames.shape == (9 + 12, 32, 32, 3) and frames.dtype == np.uint8
    with torch.no_grad():
        whole = vae.decode(denormalize_latents(vae, session.latents())).sample
    expected = ((whole[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()
    assert np.abs(frames.astype(int) - expected.astype(int)).max() <= 1


def test_missing_folder_parts_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="transformer/config.json"):
        wan_transformer_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="models_t5_umt5-xxl-enc-bf16.pth"):
        load_text_encoder(tmp_path)


# ----- the text path -----------------------------------------------------------------------------


def test_text_encoder_masks_padding_and_zeroes_it(parts):
    text_model = parts[2]
    encoder = UMT5TextEncoder(word_tokenizer(WORDS), text_model, max_tokens=12)
    embeds = encoder("A red   fox\nin fresh snow")
    ids = encoder.tokenizer(["a red fox in fresh snow"]).input_ids[0]
    assert ids[-1] == 1 and 2 not in ids and len(ids) == 7  # six words, then </s>
    assert embeds.shape == (1, 12, TEXT_DIM)
    with torch.no_grad():
        direct = text_model(input_ids=torch.tensor([ids])).last_hidden_state
    assert torch.allclose(embeds[:, :7], direct, atol=1e-5)  # padding is masked out, not attended
    assert embeds[:, 7:].abs().max() == 0
    assert encoder.tokenizer(["owl"]).input_ids[0] == [2, 1]  # unknown words become <unk>
    assert encoder(" ".join(WORDS * 3)).abs().sum(-1).ne(0).sum() == 12  # truncated to max_tokens


@pytest.mark.parametrize("layout", ["diffusers", "original"])
def test_text_encoder_loads_in_the_asked_dtype(layout, parts, tmp_path):
    (write_diffusers_folder if layout == "diffusers" else write_original_folder)(tmp_path, parts)
    encoder = load_text_encoder(tmp_path, dtype=torch.bfloat16)
    for (name, mine), theirs in zip(encoder.model.state_dict().items(), parts[2].state_dict().values()):
        assert mine.dtype == torch.bfloat16 and torch.equal(mine, theirs.to(torch.bfloat16)), name
    assert encoder("a red fox").dtype == torch.float32
