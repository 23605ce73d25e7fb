"""A small text encoder for the toy world's prompt vocabulary (UMT5's role in miniature)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .world import VOCABULARY, tokenize

MAX_PROMPT_TOKENS = 16


class ToyTextEncoder(nn.Module):
    """Word and position embeddings followed by one transformer layer: ``prompt -> [1, 16, dim]``."""

    def __init__(self, dim: int = 64, heads: int = 4):
        super().__init__()
        self.words = nn.Embedding(len(VOCABULARY), dim, padding_idx=0)
        self.positions = nn.Parameter(torch.randn(MAX_PROMPT_TOKENS, dim) * 0.02)
        self.layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """``[B, 16]`` token ids to ``[B, 16, dim]`` embeddings (padding positions are zeroed)."""
        x = self.words(token_ids) + self.positions
        padding = token_ids == 0
        x = self.layer(x, src_key_padding_mask=padding)
        return x.masked_fill(padding[..., None], 0.0)

    def token_ids(self, prompts: list[str]) -> torch.Tensor:
        ids = [tokenize(p, MAX_PROMPT_TOKENS) for p in prompts]
        return torch.tensor(ids, device=self.positions.device)

    def encode(self, prompt: str) -> torch.Tensor:
        return self(self.token_ids([prompt]))
