"""The whole real-size pipeline with random weights: UMT5-XXL text encoder, Wan-1.3B-shaped causal
transformer and Wan 2.1's VAE at 832x480, streamed block by block through the streaming VAE decoder,
with one drag imported from reference labels.

Prints and saves (``--out``) the prompt encoding time, the time per block, the decode time per block,
the time of the dragged blocks, the peak GPU memory and the device name. ``--tiny`` builds the same
pipeline at toy size so that it runs on a CPU in seconds.

    python -m dragstream_widget bench gpu-pipeline --out pipeline.json [--tiny] [--labels DIR]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from transformers import UMT5Config, UMT5EncoderModel

from ..arguments import at_least
from ..engine.config import DragConfig
from ..engine.session import StreamSession
from ..geometry import scale_point
from ..labels import import_labels
from ..models.base import StreamDecoder
from ..models.random_model import WAN_1_3B_480P, RandomModelSpec, cast_keeping_fp32, random_transformer
from ..models.wan import SELF_FORCING, assemble_backend
from ..models.wan_checkpoints import default_dtype
from ..models.wan_text import UMT5TextEncoder, word_tokenizer
from ..models.wan_vae import WanStreamDecoder
from ..ops import DragInstruction, Mode
from . import report, timed

REFERENCE_LABELS = Path(__file__).resolve().parents[2] / "tests" / "data" / "reference_labels"

# google/umt5-xxl's encoder (the text encoder of Wan 2.1).
UMT5_XXL = dict(
    vocab_size=256384,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    feed_forward_proj="gated-gelu",
)
UMT5_TINY = dict(UMT5_XXL, vocab_size=512, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
TINY_SPEC = RandomModelSpec(
    text_dim=32,
    text_tokens=64,
    channels=16,
    latent_height=6,
    latent_width=10,
    frames_per_block=3,
    vae_stride=8,
)


class TimedDecoder:
    """A :class:`StreamDecoder` that records how long each block's decode took."""

    def __init__(self, decoder: StreamDecoder, seconds: list[float]):
        self.decoder = decoder
        self.seconds = seconds

    def decode(self, z0: torch.Tensor) -> np.ndarray:
        frames, seconds = timed(lambda: self.decoder.decode(z0))
        self.seconds.append(seconds)
        return frames

    def snapshot(self) -> object:
        return self.decoder.snapshot()

    def restore(self, state: object) -> None:
        self.decoder.restore(state)


def rescale_instruction(instruction: DragInstruction, size: tuple[int, int]) -> DragInstruction:
    """The same drag on a frame of ``size`` ``(height, width)``: masks resampled (nearest), points scaled."""
    old = instruction.frame_size
    if tuple(size) == tuple(old):
        return instruction
    rows = (np.arange(size[0]) * old[0] / size[0]).astype(int)
    cols = (np.arange(size[1]) * old[1] / size[1]).astype(int)

    def mask(m):
        return None if m is None else np.asarray(m)[np.ix_(rows, cols)]

    def point(p):
        return None if p is None else scale_point(p, old, size)

    regions = tuple(
        replace(
            r,
            mask=mask(r.mask),
            handle=point(r.handle),
            targets=tuple(map(point, r.targets)),
            center=point(r.center),
        )
        for r in instruction.regions
    )
    return replace(
        instruction, frame_size=tuple(size), regions=regions, frozen_mask=mask(instruction.frozen_mask)
    ).validate()


def build_pipeline(tiny: bool, device: str, dtype: torch.dtype, words: list[str]):
    """Random-weight transformer, VAE and UMT5 encoder of the real shapes (or tiny ones) as a backend."""
    spec = TINY_SPEC if tiny else WAN_1_3B_480P
    transformer = cast_keeping_fp32(random_transformer(spec).to(device), dtype)
    with torch.device(device), default_dtype(dtype):
        vae = AutoencoderKLWan(base_dim=8 if tiny else 96).eval()  # Wan 2.1's config
        torch.manual_seed(1)
        text_model = UMT5EncoderModel(UMT5Config(**(UMT5_TINY if tiny else UMT5_XXL))).eval()
    text_encoder = UMT5TextEncoder(word_tokenizer(words), text_model, spec.text_tokens)
    stride = vae.config.scale_factor_spatial
    height, width = spec.latent_height * stride, spec.latent_width * stride
    backend = assemble_backend(transformer, vae, text_encoder, SELF_FORCING, height, width, 21, 3)
    return backend, vae


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tiny", action="store_true", help="toy sizes, for a CPU")
    parser.add_argument("--blocks", type=at_least(1), default=3, help="blocks streamed before the drag")
    parser.add_argument(
        "--labels",
        default=str(REFERENCE_LABELS / "animation-monster"),
        help="reference label folder of the drag",
    )
    parser.add_argument(
        "--dtype",
        default=None,
        choices=["bfloat16", "float16", "float32"],
        help="default: bfloat16 on a GPU, float32 on a CPU",
    )
    parser.add_argument("--out", default=None, help="write the numbers to this JSON file")


def main(args: argparse.Namespace) -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(torch, args.dtype or ("bfloat16" if device == "cuda" else "float32"))
    drag = import_labels(args.labels)

    (backend, vae), build_s = timed(lambda: build_pipeline(args.tiny, device, dtype, drag.prompt.split()))
    decode_seconds: list[float] = []
    backend.decoder_factory = lambda: TimedDecoder(WanStreamDecoder(vae), decode_seconds)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    layout = backend.layout
    instruction = rescale_instruction(drag.instruction, layout.pixel_size)

    session, encode_s = timed(lambda: StreamSession(backend, drag.prompt, seed=0, config=DragConfig()))
    block_s = []
    for _ in range(args.blocks):
        _, seconds = timed(session.step)
        block_s.append(seconds)
        print(
            f"block {session.num_blocks - 1}: {seconds:.3f} s (decode {decode_seconds[-1]:.3f} s)", flush=True
        )
    _, apply_s = timed(lambda: session.apply(instruction))  # an edit re-denoises the last block here
    drag_s = [apply_s] if instruction.mode == Mode.EDIT else []
    animated_blocks = (
        0 if instruction.mode == Mode.EDIT else math.ceil(instruction.num_targets / layout.frames_per_block)
    )
    for _ in range(animated_blocks):
        _, seconds = timed(session.step)
        drag_s.append(seconds)
    for record, seconds in zip([b for b in session.blocks if b.instruction is not None], drag_s):
        print(
            f"block {record.index} with the drag ({len(record.losses)} iterations): {seconds:.3f} s",
            flush=True,
        )
    frames = session.frames()
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "tiny": args.tiny,
        "resolution": f"{layout.pixel_width}x{layout.pixel_height}",
        "latent_block": list(layout.block_shape),
        "parameters": {
            "transformer": sum(p.numel() for p in backend.transformer.parameters()),
            "vae": sum(p.numel() for p in vae.parameters()),
            "text_encoder": sum(p.numel() for p in backend.text_encoder.model.parameters()),
        },
        "labels": Path(args.labels).name,
        "drag_mode": instruction.mode.value,
        "build_seconds": build_s,
        "prompt_encoding_seconds": encode_s,
        "seconds_per_block": block_s,
        "decode_seconds_per_block": decode_seconds[: args.blocks],
        "drag_apply_seconds": apply_s,
        "seconds_per_block_with_drag": drag_s,
        "drag_iterations_per_block": [len(b.losses) for b in session.blocks if b.instruction is not None],
        "frames": list(frames.shape),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
    }
    return report(result, args.out)
