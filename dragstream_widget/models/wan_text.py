"""Wan's text encoder: the UMT5 encoder (``transformers.UMT5EncoderModel``) and its tokenizer, from local files.

Two layouts: the diffusers one (``text_encoder/`` with a transformers config, ``tokenizer/``) and the
original release (``models_t5_umt5-xxl-enc-bf16.pth`` in Wan's own T5 naming, ``google/umt5-xxl/``
holding the tokenizer). The original names are converted to transformers' and the config is read off
the tensor shapes. As in Wan, a prompt is whitespace-normalised, tokenized to at most ``max_tokens``
tokens, encoded with the padding masked, and the embeddings past its real length are set to zero.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from .wan_checkpoints import CheckpointMismatch, default_dtype, load_strict, read_state_dict

ORIGINAL_T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
ORIGINAL_TOKENIZER_DIR = "google/umt5-xxl"
MAX_TOKENS = 512  # Wan's text length
BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(.+)")
# Wan's T5 encoder block parameter -> transformers' UMT5 encoder block parameter.
T5_BLOCK_NAMES = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",  # the GELU-gated branch
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}


def wan_t5_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Wan's T5 encoder names (``blocks.0.attn.q.weight``) to ``UMT5EncoderModel`` names; unknown keys pass through."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = BLOCK_KEY.fullmatch(key)
        if key == "token_embedding.weight":
            out["shared.weight"] = value
            out["encoder.embed_tokens.weight"] = value
        elif key == "norm.weight":
            out["encoder.final_layer_norm.weight"] = value
        elif match and match.group(2) in T5_BLOCK_NAMES:
            out[f"encoder.block.{match.group(1)}.{T5_BLOCK_NAMES[match.group(2)]}"] = value
        else:
            out[key] = value
    return out


def umt5_config_from_wan_t5(state: dict[str, torch.Tensor]) -> UMT5Config:
    """The UMT5 encoder config implied by the tensor shapes of a Wan T5 checkpoint (gated GELU, 128 max distance)."""
    needed = ["token_embedding.weight", "blocks.0.attn.q.weight", "blocks.0.ffn.fc1.weight"]
    needed.append("blocks.0.pos_embedding.embedding.weight")
    missing = [k for k in needed if k not in state]
    if missing:
        raise CheckpointMismatch(f"not a Wan UMT5 encoder checkpoint: missing {', '.join(missing)}")
    vocab, dim = state["token_embedding.weight"].shape
    buckets, heads = state["blocks.0.pos_embedding.embedding.weight"].shape
    layers = len({BLOCK_KEY.fullmatch(k).group(1) for k in state if BLOCK_KEY.fullmatch(k)})
    return UMT5Config(
        vocab_size=vocab,
        d_model=dim,
        d_kv=state["blocks.0.attn.q.weight"].shape[0] // heads,
        d_ff=state["blocks.0.ffn.fc1.weight"].shape[0],
        num_layers=layers,
        num_heads=heads,
        relative_attention_num_buckets=buckets,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",
        layer_norm_epsilon=1e-6,
        tie_word_embeddings=False,
    )


def load_original_umt5(path: str | Path, dtype: torch.dtype = torch.float32) -> UMT5EncoderModel:
    """A ``UMT5EncoderModel`` in ``dtype`` holding Wan's original T5 encoder checkpoint."""
    state = read_state_dict(path)
    with default_dtype(dtype):
        model = UMT5EncoderModel(umt5_config_from_wan_t5(state))
    return load_strict(model, wan_t5_to_transformers(state), str(path))


def load_transformers_umt5(folder: str | Path, dtype: torch.dtype = torch.float32) -> UMT5EncoderModel:
    """A ``UMT5EncoderModel`` in ``dtype`` saved by transformers (the diffusers layout's ``text_encoder/``)."""
    model, info = UMT5EncoderModel.from_pretrained(
        folder, local_files_only=True, output_loading_info=True, dtype=dtype
    )
    problems = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
    if problems:
        listed = "; ".join(
            f"{len(v)} {k.replace('_', ' ')}: {', '.join(map(str, v[:5]))}" for k, v in problems.items()
        )
        raise CheckpointMismatch(f"{folder} does not fit UMT5EncoderModel: {listed}")
    return model


class UMT5TextEncoder:
    """``prompt -> [1, max_tokens, dim]``: UMT5 embeddings of the prompt's tokens, zeros after them."""

    def __init__(self, tokenizer, model: UMT5EncoderModel, max_tokens: int = MAX_TOKENS):
        self.tokenizer = tokenizer
        self.model = model.eval().requires_grad_(False)
        self.max_tokens = max_tokens

    @torch.no_grad()
    def __call__(self, prompt: str) -> torch.Tensor:
        if not isinstance(prompt, str):
            raise TypeError(f"the prompt must be a string, got {type(prompt).__name__}")
        text = " ".join(prompt.split())
        tokens = self.tokenizer(
            [text],
            padding="max_length",
            max_length=self.max_tokens,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        mask = tokens.attention_mask.to(device)
        hidden = self.model(input_ids=tokens.input_ids.to(device), attention_mask=mask).last_hidden_state
        return (hidden * mask[..., None].to(hidden.dtype)).float()


def load_text_encoder(
    wan_dir: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> UMT5TextEncoder:
    """The UMT5 text encoder and tokenizer of a local Wan2.1 folder (either layout)."""
    wan_dir = Path(wan_dir)
    if (wan_dir / "text_encoder" / "config.json").is_file():
        model = load_transformers_umt5(wan_dir / "text_encoder", dtype)
        tokenizer_dir = wan_dir / "tokenizer"
    elif (wan_dir / ORIGINAL_T5_FILE).is_file():
        model = load_original_umt5(wan_dir / ORIGINAL_T5_FILE, dtype)
        tokenizer_dir = wan_dir / ORIGINAL_TOKENIZER_DIR
    else:
        raise FileNotFoundError(
            f"no UMT5 text encoder in {wan_dir}: expected text_encoder/config.json (diffusers layout) "
            f"or {ORIGINAL_T5_FILE}"
        )
    if not tokenizer_dir.is_dir():
        raise FileNotFoundError(f"no tokenizer folder {tokenizer_dir}")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    return UMT5TextEncoder(tokenizer, model.to(device))


def word_tokenizer(words: list[str]) -> PreTrainedTokenizerFast:
    """A small Unigram tokenizer over whole words with UMT5's special ids (pad 0, eos 1, unk 2), built offline.

    For random-weight models and tests: it runs the same tokenizer code path as the real vocabulary.
    """
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"\u2581{w}", -1.0) for w in dict.fromkeys(w.lower() for w in words)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
