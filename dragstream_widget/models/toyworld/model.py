"""The embedded default model: a tiny causal Wan on the procedural toy world, runnable on a CPU.

Weights ship in ``weights/`` beside this file: ``transformer/`` (diffusers' own format),
``codec.safetensors``, ``text_encoder.safetensors`` and ``toyworld.json`` (this config).
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..backend import TransformerBackend
from ..base import LatentLayout
from ..causal_wan import CausalWanTransformer3DModel, wan_config
from ..kv_cache import check_window
from ..quantize import int8_blocks_copy
from ..sampler import FlowSampler
from .codec import CodecConfig, ToyCodec
from .text import ToyTextEncoder

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_NAME = "toyworld"  # the backend's name, by which the engine finds the drag settings tuned for it


@dataclass(frozen=True)
class ToyWorldConfig:
    """Everything needed to rebuild the toy model (saved next to its weights)."""

    codec: CodecConfig = field(default_factory=CodecConfig)
    text_dim: int = 64
    num_layers: int = 8
    num_heads: int = 4
    head_dim: int = 64
    ffn_dim: int = 1024
    frames_per_block: int = 3
    steps: tuple[int, ...] = (1000, 750, 500, 250)
    shift: float = 3.0
    sampler_update: str = "euler"  # trained by plain flow matching, so the deterministic ODE step
    # Rolling KV window of three blocks and no sink frames: every block sees its context at the same
    # relative positions as in training (12-frame clips), however long the stream runs.
    cache_frames: int = 9
    sink_frames: int = 0
    # Context noise of the commit pass (the model is trained with noisy context, so blurred or slightly
    # wrong frames it made itself read like the real ones it learned from); 0 commits clean latents.
    commit_sigma: float = 0.0
    # Let the last denoising pass write the cache, from the block at the last step's noise level, instead
    # of a commit pass of its own (one pass fewer per block; commit_sigma must then stay 0).
    commit_at_last_step: bool = False
    # Plain denoising steps and commits on an int8 copy of the transformer blocks, on the CPU; drags keep
    # the float model (model card: "Int8 streaming"). The shipped weights turn it on.
    int8_streaming: bool = False

    def transformer_kwargs(self) -> dict:
        return wan_config(
            self.num_layers,
            self.num_heads,
            self.head_dim,
            self.ffn_dim,
            self.codec.latent_channels,
            self.text_dim,
            freq_dim=128,
            rope_max_seq_len=4096,
        )

    def window_blocks(self) -> tuple[int, int]:
        """The KV window and its sinks in whole blocks, as training's attention masks reproduce them."""
        per_block = self.frames_per_block
        if self.cache_frames % per_block or self.sink_frames % per_block:
            raise ValueError(
                f"training reproduces a KV window of whole blocks: {self.cache_frames} cached and "
                f"{self.sink_frames} sink frames are not multiples of {per_block}"
            )
        check_window(self.cache_frames, self.sink_frames)
        return self.cache_frames // per_block, self.sink_frames // per_block

    def layout(self) -> LatentLayout:
        size = self.codec.latent_size
        pixels = self.codec.frame_size
        return LatentLayout(self.codec.latent_channels, size, size, self.frames_per_block, pixels, pixels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ToyWorldConfig:
        data = dict(data)
        codec = CodecConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data.pop("codec").items()}
        )
        data["steps"] = tuple(data["steps"])
        return cls(codec=codec, **data)


@dataclass
class ToyWorldModel:
    """The three trained parts of the toy model."""

    config: ToyWorldConfig
    transformer: CausalWanTransformer3DModel
    codec: ToyCodec
    text_encoder: ToyTextEncoder

    @classmethod
    def untrained(cls, config: ToyWorldConfig = ToyWorldConfig(), seed: int = 0) -> ToyWorldModel:
        torch.manual_seed(seed)
        return cls(
            config,
            CausalWanTransformer3DModel(**config.transformer_kwargs()),
            ToyCodec(config.codec),
            ToyTextEncoder(config.text_dim),
        )

    def save(self, directory: str | Path) -> None:
        """Weights in float16 (half the size; loading upcasts to float32 for the CPU)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        copy.deepcopy(self.transformer).half().save_pretrained(directory / "transformer")
        for name, part in (("codec", self.codec), ("text_encoder", self.text_encoder)):
            state = {
                k: v.half() if v.is_floating_point() and "latent_" not in k else v
                for k, v in part.state_dict().items()
            }
            save_file(state, directory / f"{name}.safetensors")
        (directory / "toyworld.json").write_text(json.dumps(self.config.to_dict(), indent=2))

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> ToyWorldModel:
        directory = Path(directory)
        config_path = directory / "toyworld.json"
        if not config_path.exists():
            raise FileNotFoundError(
                f"no toy world weights in {directory}: expected toyworld.json, transformer/, codec.safetensors and "
                "text_encoder.safetensors (train them with python -m lab train)"
            )
        config = ToyWorldConfig.from_dict(json.loads(config_path.read_text()))
        transformer = CausalWanTransformer3DModel.from_pretrained(
            directory / "transformer", torch_dtype=torch.float32
        )
        codec = ToyCodec(config.codec)
        codec.load_state_dict({k: v.float() for k, v in load_file(directory / "codec.safetensors").items()})
        text = ToyTextEncoder(config.text_dim)
        text.load_state_dict(
            {k: v.float() for k, v in load_file(directory / "text_encoder.safetensors").items()}
        )
        model = cls(config, transformer, codec, text)
        return model.to(device)

    def to(self, device: str | torch.device) -> ToyWorldModel:
        for part in (self.transformer, self.codec, self.text_encoder):
            part.to(device).eval().requires_grad_(False)
        return self

    def backend(self, **streaming) -> TransformerBackend:
        """A streaming backend on these weights; ``streaming`` overrides fields of the config for it
        alone (e.g. ``**FOLDED_COMMIT``), so backends with other settings share one set of weights."""
        config = replace(self.config, **streaming)
        return TransformerBackend(
            self.transformer,
            config.layout(),
            FlowSampler(config.steps, config.shift, config.sampler_update),
            self.text_encoder.encode,
            lambda: self.codec,
            frame_encoder=self.codec.encode,
            cache_max_frames=config.cache_frames,
            cache_sink_frames=config.sink_frames,
            commit_sigma=config.commit_sigma,
            commit_at_last_step=config.commit_at_last_step,
            streaming_transformer=int8_blocks_copy(self.transformer) if config.int8_streaming else None,
            name=MODEL_NAME,
        )


# Streaming with the cache written by the last denoising pass: the steps end at 100 (sigma 0.26, within
# the context noise the model was trained with) and the separate commit pass goes, 4 passes a block
# instead of 5 (model card: "Tried: the commit folded into the last step").
FOLDED_COMMIT = {"steps": (1000, 750, 500, 100), "commit_sigma": 0.0, "commit_at_last_step": True}

# The float model for every pass (the shipped weights stream plain passes on an int8 copy on the CPU).
FLOAT_STREAMING = {"int8_streaming": False}


def load_model(
    path: str | Path | None = None, device: str | torch.device = "cpu", **streaming
) -> TransformerBackend:
    """The embedded toy world model as a ready backend (weights shipped in the package by default);
    ``streaming`` overrides fields of its saved :class:`ToyWorldConfig`, e.g. ``**FOLDED_COMMIT``."""
    return ToyWorldModel.load(path or WEIGHTS_DIR, device).backend(**streaming)
