"""Train the embedded toy world model: codec, then text encoder + causal transformer.

    python -m lab train --out runs/toy --minutes 20      # GPU
    python -m lab train --out /tmp/smoke --smoke         # CPU, seconds

Recipe (what makes autoregressive rollouts hold their objects):
1. Codec: a convolutional autoencoder on single frames (L1 + MSE), with noise on the latents so the
   decoder tolerates imperfect generated latents; then per-channel latent statistics.
2. World model: flow matching with teacher forcing in one pass: each clip is given twice, clean and
   noisy, under a mask where noisy block i sees clean blocks < i and itself (exactly what streaming
   with a KV cache sees). Noise levels per block are drawn mostly from the sampler's few steps.
3. Context noise: the clean context of most clips is noised to a random level per block (given to the
   model as that block's timestep), so it learns to redraw objects from a context whose details are
   unreliable instead of copying them; streaming then commits each block at a small level
   (``ToyWorldConfig.commit_sigma``). Without it, the blur of each generated block is copied into the next.
4. Recovery: for the last part of training, the clean context is replaced (per clip, at random) by the
   model's own predictions, so it learns to continue from its own imperfect frames: either the x0 of one
   step from the sampler's last level (``last_step``), each block after the real opening one sampled by
   the full few-step chain from noise over the real blocks before it, as streaming makes it
   (``sampled``), or the clip streamed by the model from its real opening block (``rollouts``,
   ``own_rollout``), so that later blocks read context that is generated all the way back, as in a long
   stream, and learn to draw the real clip's next block from it. ``context_blur`` > 0 instead rounds
   the context after the opening block in place (``blur_context``), keeping it on the real clip's path,
   and ``context_rounding`` > 0 replaces it by the same clip rendered with its objects' corners and
   points rounded off (``rounded_context``, ``world.render_rounded``): real places, angles and areas in
   the outlines the model's own blocks drift towards, with the real shapes as targets. With
   ``aligned_targets`` the rollout clips' targets are their real clips re-drawn from where the rollout put
   each object (``aligned_targets.py``), so the target agrees with the context it follows.
5. Object weighting (``object_weight`` > 1): the flow error at latent cells covered by an object (grown by
   one cell) counts that many times more than the background's, so shapes and sizes get the capacity.
6. Adversarial fine-tuning (``adversarial_weight`` > 0, usually with ``--init``): a discriminator on
   single latent frames (``adversarial.py``) scores generated frames against real ones, and its loss
   joins the flow-matching loss, to make the few-step predictions commit to sharp shapes. The generated
   frames are the teacher-forced x0 predictions (``adversarial_on="predictions"``) or the blocks of the
   model's own rollouts from the clip's real opening block (``"rollouts"``, ``own_rollout``: self forcing
   with a discriminator, conditioned on the opening frame, in place of distribution matching).
7. The KV window (``cache_frames``, ``sink_frames`` of the model config): the training masks let each
   block see exactly the blocks streaming's rolling cache holds when it is made, so clips longer than the
   window (``--clip-frames``) slide it, and ``--sink-frames`` teaches a window that keeps the opening
   frames (saved with the weights).
Checkpoints are written every ``TrainConfig.checkpoint_seconds`` (2 minutes) and the run resumes from ``--out`` if one exists.
``--init`` fine-tunes trained weights (codec and text encoder kept, no codec phase); ``--codec-from``
trains a new text encoder and transformer (of the shape ``--layers``/``--heads``/``--ffn`` give) on the
codec of trained weights.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dragstream_widget.arguments import at_least, fraction, non_negative_number, positive_number
from dragstream_widget.models.causal_wan import block_causal_mask, clean_noisy_mask
from dragstream_widget.models.sampler import FlowSampler, add_noise, next_noise, shift_sigma
from dragstream_widget.models.toyworld.codec import CodecConfig
from dragstream_widget.models.toyworld.model import ToyWorldConfig, ToyWorldModel
from dragstream_widget.models.toyworld.world import (
    Scene,
    WorldConfig,
    render_clip,
    render_rounded,
    sample_scene,
)

from .adversarial import LatentFrameDiscriminator, discriminator_loss, generator_loss, latent_frames
from .aligned_targets import aligned_clips


@dataclass(frozen=True)
class TrainConfig:
    clips: int = 24000
    clip_frames: int = 12
    codec_steps: int = 3000
    codec_batch: int = 64
    world_batch: int = 32
    world_lr: float = 3e-4
    codec_lr: float = 3e-4
    schedule_fraction: float = 0.75  # share of blocks noised at one of the sampler's own levels
    recovery_start: float = 0.6  # fraction of the world budget after which own-prediction context is used
    recovery_probability: float = 0.5
    recovery_context: str = "last_step"  # or "sampled" (after the opening block), "rollouts"
    object_weight: float = 1.0  # loss weight of latent cells covered by objects (1: plain MSE)
    context_noise: float = 0.0  # highest noise level of the context (0: clean context only)
    context_noise_probability: float = 0.75  # share of clips whose context is noised
    context_blur: float = 0.0  # largest latent blur (Gaussian std in cells) after the opening block (0: none)
    context_blur_probability: float = 0.5  # share of clips whose context is blurred
    # Largest rounding (pixel Gaussian std) of the objects in the context after the opening block (0: none)
    context_rounding: float = 0.0
    context_rounding_probability: float = 0.5  # share of clips whose context is rounded
    # With recovery_context "rollouts": the targets of the clips given streamed context are their real
    # clips re-drawn from where the rollout put each object (aligned_targets.py), not the real clips.
    aligned_targets: bool = False
    # Adversarial fine-tuning (adversarial.py): weight of the generator loss (0: flow matching alone), on
    # what it acts ("predictions": teacher-forced x0; "rollouts": own_rollout's blocks, a batch of
    # rollout_batch clips), the discriminator's learning rate and the frames it sees per step.
    adversarial_weight: float = 0.0
    adversarial_on: str = "predictions"
    rollout_batch: int = 16
    discriminator_lr: float = 2e-4
    discriminator_warmup: int = 0  # steps the discriminator learns before its loss reaches the generator
    adversarial_frames: int = 128
    warmup_steps: int = 500
    ema: float = 0.999
    minutes: float = 20.0  # wall-clock budget for the world model
    checkpoint_seconds: float = 120.0
    seed: int = 0


SMOKE = TrainConfig(
    clips=24, clip_frames=6, codec_steps=4, codec_batch=8, world_batch=4, minutes=0.05, checkpoint_seconds=1e9
)


def object_cells(full_masks: np.ndarray, stride: int) -> np.ndarray:
    """``bool [T, H/stride, W/stride]``: latent cells that any object covers, from ``[T, N, H, W]`` masks."""
    covered = full_masks.any(axis=1)
    t, h, w = covered.shape
    return covered.reshape(t, h // stride, stride, w // stride, stride).any(axis=(2, 4))


@dataclass
class WorldClips:
    """Rendered training clips: ``frames`` ``uint8 [count, T, H, W, 3]``, the latent cells their objects
    cover (``bool [count, T, H/stride, W/stride]``), the same clips with rounded objects
    (``world.render_rounded``; None without rounding) and the scenes they were rendered from."""

    frames: np.ndarray
    cells: np.ndarray
    rounded: np.ndarray | None
    scenes: list[Scene]

    @property
    def prompts(self) -> list[str]:
        return [scene.prompt for scene in self.scenes]


def _render_chunk(args) -> WorldClips:
    seed, count, frames, size, stride, rounding = args
    rng = np.random.default_rng(seed)
    rounding_rng = np.random.default_rng(seed + 1)  # leaves the scenes those of a run without rounding
    config = WorldConfig(size=size)
    clips, cells, rounded, scenes = [], [], [], []
    for _ in range(count):
        scene = sample_scene(rng, config)
        clip = render_clip(scene, frames, config)
        clips.append(clip.frames)
        scenes.append(scene)
        cells.append(object_cells(clip.full_masks, stride))
        if rounding > 0:
            rounded.append(
                render_rounded(scene, frames, rounding_rng.uniform(rounding / 2, rounding), config)
            )
    return WorldClips(
        np.stack(clips),
        np.stack(cells),
        np.stack(rounded) if rounded else None,
        scenes,
    )


def render_dataset(
    count: int, frames: int, size: int, seed: int, workers: int, stride: int = 4, rounding: float = 0.0
) -> WorldClips:
    """``count`` world clips of ``frames`` frames, rendered in parallel; with ``rounding`` > 0 also with
    their objects rounded off by a pixel std drawn per clip in [``rounding`` / 2, ``rounding``]."""
    chunk = max(1, math.ceil(count / max(1, workers * 4)))
    jobs = [
        (seed * 100_003 + i, min(chunk, count - i * chunk), frames, size, stride, rounding)
        for i in range(math.ceil(count / chunk))
    ]
    if workers <= 1:
        parts = [_render_chunk(job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(tqdm(pool.map(_render_chunk, jobs), total=len(jobs), desc="render world"))
    return WorldClips(
        np.concatenate([p.frames for p in parts]),
        np.concatenate([p.cells for p in parts]),
        np.concatenate([p.rounded for p in parts]) if rounding > 0 else None,
        [scene for p in parts for scene in p.scenes],
    )


def to_pixels(frames: np.ndarray, device) -> torch.Tensor:
    return torch.as_tensor(frames, device=device).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a, b).item()
    return 10 * math.log10(4.0 / max(mse, 1e-12))


def train_codec(model: ToyWorldModel, frames: np.ndarray, config: TrainConfig, log) -> dict:
    """Phase 1: the autoencoder, then its latent statistics."""
    codec = model.codec.train().requires_grad_(True)
    device = codec.latent_mean.device
    flat = frames.reshape(-1, *frames.shape[2:])
    optimizer = torch.optim.AdamW(codec.parameters(), lr=config.codec_lr, weight_decay=0.0)
    generator = np.random.default_rng(config.seed)
    for step in tqdm(range(config.codec_steps), desc="codec"):
        batch = to_pixels(flat[generator.integers(0, len(flat), config.codec_batch)], device)
        latent = codec.encode_pixels(batch)
        noisy_latent = latent + 0.1 * latent.detach().std() * torch.randn_like(latent)
        recon = codec.decode_pixels(noisy_latent)
        loss = F.l1_loss(recon, batch) + F.mse_loss(recon, batch) + 1e-4 * latent.square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for group in optimizer.param_groups:
            group["lr"] = config.codec_lr * 0.5 * (1 + math.cos(math.pi * step / config.codec_steps))
        if step % 200 == 0:
            log({"phase": "codec", "step": step, "loss": loss.item()})
    codec.eval().requires_grad_(False)
    with torch.no_grad():
        sample = to_pixels(flat[generator.integers(0, len(flat), 512)], device)
        latents = torch.cat([codec.encode_pixels(sample[i : i + 128]) for i in range(0, 512, 128)])
        codec.latent_mean.copy_(latents.mean(dim=(0, 2, 3)))
        codec.latent_std.copy_(latents.std(dim=(0, 2, 3)))
        recon = torch.cat([codec.decode_pixels(latents[i : i + 128]) for i in range(0, 512, 128)])
    report = {"codec_psnr_db": psnr(recon.clamp(-1, 1), sample)}
    log({"phase": "codec", **report})
    return report


@torch.no_grad()
def encode_dataset(model: ToyWorldModel, frames: np.ndarray) -> torch.Tensor:
    """All clips as normalised latents ``[N, C, F, h, w]`` (kept on the training device)."""
    codec = model.codec
    out = []
    for start in tqdm(range(0, len(frames), 64), desc="encode", mininterval=5):
        chunk = frames[start : start + 64]
        pixels = to_pixels(chunk.reshape(-1, *chunk.shape[2:]), codec.latent_mean.device)
        latents = codec.normalize(codec.encode_pixels(pixels))
        out.append(latents.unflatten(0, chunk.shape[:2]).transpose(1, 2))  # [clips, C, F, h, w]
    return torch.cat(out)


def sample_sigmas(batch: int, blocks: int, sampler: FlowSampler, config: TrainConfig, device) -> torch.Tensor:
    """Per-block noise levels: mostly the sampler's own levels, otherwise uniform (shifted)."""
    own = torch.tensor(sampler.sigmas, device=device)
    from_schedule = own[torch.randint(len(own), (batch, blocks), device=device)]
    uniform = shift_sigma(torch.rand(batch, blocks, device=device), sampler.shift)
    use_schedule = torch.rand(batch, blocks, device=device) < config.schedule_fraction
    return torch.where(use_schedule, from_schedule, uniform)


def noise_context(
    clean: torch.Tensor, frames_per_block: int, config: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """``clean`` ``[B, C, F, h, w]`` noised per block to levels in [0, ``context_noise``) for a share of the
    clips (0 for the rest); returns the noised context and its per-frame levels ``[B, F]``."""
    batch, _, frames = clean.shape[:3]
    levels = config.context_noise * torch.rand(batch, frames // frames_per_block, device=clean.device)
    chosen = torch.rand(batch, 1, device=clean.device) < config.context_noise_probability
    levels = torch.where(chosen, levels, torch.zeros_like(levels)).repeat_interleave(frames_per_block, dim=1)
    return add_noise(clean, torch.randn_like(clean), levels[:, None, :, None, None]), levels


def blur_context(clean: torch.Tensor, frames_per_block: int, config: TrainConfig) -> torch.Tensor:
    """``clean`` ``[B, C, F, h, w]`` with every frame after the opening block blurred in latent space by a
    Gaussian of std drawn in [``context_blur`` / 2, ``context_blur``] cells, for a share
    ``context_blur_probability`` of the clips. The recent context's shapes come out rounded at their real
    places, as the model's own blocks round them, while the opening block (the window's sink) and the
    targets stay crisp: the model learns to draw the real shape again from a rounded context, not to copy
    the rounding on."""
    batch, channels, frames, height, width = clean.shape
    opening, later = clean[:, :, :frames_per_block], clean[:, :, frames_per_block:]
    radius = 3
    std = config.context_blur * (1 + torch.rand(batch, 1, device=clean.device)) / 2
    offsets = torch.arange(-radius, radius + 1, device=clean.device, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / std).square())
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(channels * later.shape[2], 0)
    planes = later.float().reshape(1, -1, height, width)  # one plane per clip, channel and frame
    groups = planes.shape[1]
    rows = F.conv2d(
        F.pad(planes, (radius, radius, 0, 0), mode="replicate"), kernel[:, None, None, :], groups=groups
    )
    blurred = F.conv2d(
        F.pad(rows, (0, 0, radius, radius), mode="replicate"), kernel[:, None, :, None], groups=groups
    )
    chosen = torch.rand(batch, device=clean.device) < config.context_blur_probability
    later = torch.where(
        chosen[:, None, None, None, None], blurred.reshape(later.shape).to(clean.dtype), later
    )
    return torch.cat([opening, later], dim=2)


def rounded_context(
    clean: torch.Tensor, rounded: torch.Tensor, frames_per_block: int, probability: float
) -> torch.Tensor:
    """``clean`` ``[B, C, F, h, w]`` with every frame after the opening block taken from ``rounded`` (the
    latents of the same clips with their objects rounded off in pixels, ``world.render_rounded``) for a
    share ``probability`` of the clips. The recent context then shows the objects at their real places,
    angles and colours but in the rounded outlines of the model's own blocks, while the opening block (the
    window's sink) and the targets keep the real shapes: the model learns to draw the shape the prompt and
    the opening frames name from a rounded context, instead of carrying the rounding on."""
    chosen = torch.rand(clean.shape[0], device=clean.device) < probability
    later = torch.where(
        chosen[:, None, None, None, None],
        rounded[:, :, frames_per_block:].to(clean.dtype),
        clean[:, :, frames_per_block:],
    )
    return torch.cat([clean[:, :, :frames_per_block], later], dim=2)


def loss_weights(cells: torch.Tensor, object_weight: float) -> torch.Tensor:
    """``[B, F, h, w]`` weights: ``object_weight`` on object cells grown by one cell, 1 elsewhere."""
    grown = F.max_pool2d(cells.float().flatten(0, 1)[:, None], 3, stride=1, padding=1)[:, 0]
    return 1.0 + (object_weight - 1.0) * grown.unflatten(0, cells.shape[:2])


@torch.no_grad()
def sampled_context(
    transformer, latents, text, positions, mask, sampler: FlowSampler, frames_per_block: int
) -> torch.Tensor:
    """The clip's real opening block, then every later block sampled by the few-step chain from noise,
    each seeing the real blocks before it (what streaming makes of a block from a clean context): context
    one generation deep, as blurred as a streamed block but still on the real clip's path."""
    frames = latents.shape[2]
    z = torch.randn_like(latents)
    zeros = torch.zeros(latents.shape[0], frames, device=latents.device)
    for i, sigma in enumerate(sampler.sigmas):
        steps = torch.cat([zeros, torch.full_like(zeros, sigma * 1000)], dim=1)
        flow = transformer(
            torch.cat([latents, z], 2), steps, text, frame_positions=positions, attention_mask=mask
        ).sample[:, :, frames:]
        x0 = z - sigma * flow
        if i + 1 < sampler.num_steps:
            implied = next_noise(z, x0, sigma, torch.randn_like(z), sampler.update)
            z = add_noise(x0, implied, sampler.sigmas[i + 1])
    return torch.cat([latents[:, :, :frames_per_block], x0[:, :, frames_per_block:].to(latents.dtype)], dim=2)


def own_rollout(
    transformer, latents: torch.Tensor, text: torch.Tensor, config: ToyWorldConfig, exit_step: int
) -> torch.Tensor:
    """Self forcing: the blocks after a clip's real opening block, generated one at a time as streaming
    makes them (the few-step sampler over the blocks before, each committed at ``commit_sigma``);
    ``[B, C, F - frames_per_block, h, w]``. A block is its x0 prediction at sampler step ``exit_step``,
    so that a random exit trains every step; that pass alone keeps its gradient, and the context is
    committed from the detached block."""
    per_block, commit = config.frames_per_block, config.commit_sigma
    sampler = FlowSampler(config.steps, config.shift, config.sampler_update)
    frames = latents.shape[2]
    tokens_per_frame = transformer.tokens_per_frame(*latents.shape[3:])
    opening = latents[:, :, :per_block]
    context = add_noise(opening, torch.randn_like(opening), commit)
    # Block-causal rows only look back, so each prefix of the clip's mask is that prefix's mask.
    clip_mask = block_causal_mask(
        frames, per_block, tokens_per_frame, latents.device, *config.window_blocks()
    )
    blocks = []
    for start in range(per_block, frames, per_block):
        length = start + per_block
        mask = clip_mask[: length * tokens_per_frame, : length * tokens_per_frame]
        positions = torch.arange(length, device=latents.device)
        z = torch.randn_like(opening)
        for i, sigma in enumerate(sampler.sigmas[: exit_step + 1]):
            steps = torch.full((latents.shape[0], length), commit * 1000, device=latents.device)
            steps[:, start:] = sigma * 1000
            with torch.set_grad_enabled(i == exit_step and torch.is_grad_enabled()):
                flow = transformer(
                    torch.cat([context, z], 2), steps, text, frame_positions=positions, attention_mask=mask
                ).sample[:, :, start:]
                x0 = z - sigma * flow.to(z.dtype)
            if i < exit_step:
                implied = next_noise(z, x0, sigma, torch.randn_like(z), sampler.update)
                z = add_noise(x0, implied, sampler.sigmas[i + 1])
        blocks.append(x0)
        context = torch.cat([context, add_noise(x0.detach(), torch.randn_like(x0), commit)], dim=2)
    return torch.cat(blocks, dim=2)


@torch.no_grad()
def last_step_context(transformer, latents, text, positions, mask, sampler: FlowSampler) -> torch.Tensor:
    """Every frame's x0 from one pass at the sampler's last noise level over the real context before it."""
    frames, last = latents.shape[2], sampler.sigmas[-1]
    renoised = add_noise(latents, torch.randn_like(latents), last)
    zeros = torch.zeros(latents.shape[0], frames, device=latents.device)
    steps = torch.cat([zeros, torch.full_like(zeros, last * 1000)], dim=1)
    flow = transformer(
        torch.cat([latents, renoised], 2), steps, text, frame_positions=positions, attention_mask=mask
    ).sample[:, :, frames:]
    return renoised - last * flow


def recovery_context(
    transformer, latents, text, positions, mask, model_config: ToyWorldConfig, config: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean context of a batch in the recovery phase: for a share ``recovery_probability`` of the
    clips, the model's own version of them (``config.recovery_context``); the real latents for the rest.
    Also returns which clips ``[B]`` got their own version."""
    own = torch.rand(latents.shape[0], device=latents.device) < config.recovery_probability
    if not own.any():
        return latents, own
    sampler = FlowSampler(model_config.steps, model_config.shift, model_config.sampler_update)
    chosen, chosen_text = latents[own], text[own]
    with torch.no_grad():
        if config.recovery_context == "sampled":
            made = sampled_context(
                transformer, chosen, chosen_text, positions, mask, sampler, model_config.frames_per_block
            )
        elif config.recovery_context == "rollouts":
            streamed = own_rollout(transformer, chosen, chosen_text, model_config, sampler.num_steps - 1)
            made = torch.cat(
                [chosen[:, :, : model_config.frames_per_block], streamed.to(chosen.dtype)], dim=2
            )
        else:
            made = last_step_context(transformer, chosen, chosen_text, positions, mask, sampler)
    clean = latents.clone()
    clean[own] = made.to(latents.dtype)
    return clean, own


@torch.no_grad()
def rollout_aligned_targets(
    model: ToyWorldModel, latents: torch.Tensor, context: torch.Tensor, own: torch.Tensor, scenes: list[Scene]
) -> torch.Tensor:
    """``latents`` with each clip that reads its own rollout (``own``; ``context`` holds the rollouts)
    replaced by its real clip re-drawn from where the rollout put each object (``aligned_targets.py``)."""
    codec, per_block = model.codec, model.config.frames_per_block
    chosen = own.nonzero()[:, 0]
    last = context[chosen][:, :, per_block - 1 :: per_block].float()  # [b, C, K, h, w]
    pixels = codec.decode_pixels(codec.denormalize(last.transpose(1, 2).flatten(0, 1)))
    pixels = ((pixels.clamp(-1, 1) + 1) * 127.5).unflatten(0, last.shape[:1] + last.shape[2:3])
    size = model.config.codec.frame_size
    clips = aligned_clips(
        [scenes[i] for i in chosen.tolist()], pixels, latents.shape[2], per_block, WorldConfig(size=size)
    )
    flat = to_pixels(clips.reshape(-1, *clips.shape[2:]), latents.device)
    redrawn = codec.normalize(codec.encode_pixels(flat)).unflatten(0, clips.shape[:2]).transpose(1, 2)
    targets = latents.clone()
    targets[chosen] = redrawn.to(latents.dtype)
    return targets


def world_loss(
    model: ToyWorldModel,
    latents: torch.Tensor,
    prompts: list[str],
    mask,
    config: TrainConfig,
    recovery: bool,
    cells: torch.Tensor | None = None,
    rounded: torch.Tensor | None = None,
    scenes: list[Scene] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced flow-matching loss of one batch ``[B, C, F, h, w]`` (``cells``: ``[B, F, h, w]``
    object cells for the object weighting; ``rounded``: the batch's rounded latents for
    :func:`rounded_context`; ``scenes``: the batch's scenes, for ``config.aligned_targets``), and the x0
    the transformer predicts for each noisy frame."""
    cfg = model.config
    transformer = model.transformer
    batch, _, frames = latents.shape[:3]
    blocks = frames // cfg.frames_per_block
    sampler = FlowSampler(cfg.steps, cfg.shift, cfg.sampler_update)
    sigmas = sample_sigmas(batch, blocks, sampler, config, latents.device)
    sigma_frames = sigmas.repeat_interleave(cfg.frames_per_block, dim=1)  # [B, F]
    noise = torch.randn_like(latents)
    s = sigma_frames[:, None, :, None, None]
    text = model.text_encoder(model.text_encoder.token_ids(prompts))
    positions = torch.arange(frames, device=latents.device).repeat(2)
    steps = torch.cat([torch.zeros_like(sigma_frames), sigma_frames * 1000], dim=1)
    clean = targets = latents
    if recovery:
        clean, own = recovery_context(transformer, latents, text, positions, mask, cfg, config)
        if config.aligned_targets and own.any():
            targets = rollout_aligned_targets(model, latents, clean, own, scenes)
    noisy = (1 - s) * targets + s * noise
    if rounded is not None:
        clean = rounded_context(clean, rounded, cfg.frames_per_block, config.context_rounding_probability)
    if config.context_blur > 0:
        clean = blur_context(clean, cfg.frames_per_block, config)
    if config.context_noise > 0:
        clean, context_levels = noise_context(clean, cfg.frames_per_block, config)
        steps = torch.cat([context_levels * 1000, sigma_frames * 1000], dim=1)
    flow = transformer(
        torch.cat([clean, noisy], 2), steps, text, frame_positions=positions, attention_mask=mask
    ).sample[:, :, frames:]
    x0 = noisy.float() - s * flow.float()
    if cells is None or config.object_weight == 1.0:
        return F.mse_loss(flow.float(), (noise - targets).float()), x0
    error = (flow.float() - (noise - targets).float()).square().mean(dim=1)  # [B, F, h, w]
    weights = loss_weights(cells, config.object_weight)
    return (error * weights).sum() / weights.sum(), x0


def save_checkpoint(model: ToyWorldModel, ema, optimizer, state: dict, out: Path) -> None:
    exported = replace_transformer(model, ema)
    exported.save(out / "weights")
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "raw_transformer": model.transformer.state_dict(),
            "text_encoder": model.text_encoder.state_dict(),
            **state,
        },
        out / "resume.pt",
    )


@torch.no_grad()
def update_ema(ema, model, step: int, decay: float) -> None:
    """Move the moving average of ``model``'s weights towards them, with a decay that warms up to ``decay``."""
    rate = 1 - min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, rate)


def replace_transformer(model: ToyWorldModel, ema) -> ToyWorldModel:
    return ToyWorldModel(model.config, ema, model.codec, model.text_encoder)


def train_world(
    model: ToyWorldModel,
    latents: torch.Tensor,
    prompts: list[str],
    config: TrainConfig,
    out: Path,
    log,
    state: dict,
    cells: torch.Tensor | None = None,
    rounded: torch.Tensor | None = None,
    scenes: list[Scene] | None = None,
) -> dict:
    """Phase 2 and 3: text encoder + causal transformer, with an EMA copy that is what ships (``rounded``:
    the clips' rounded latents, see :func:`rounded_context`; ``scenes``: the clips' scenes, for
    ``config.aligned_targets``)."""
    device = latents.device
    transformer, text = (
        model.transformer.train().requires_grad_(True),
        model.text_encoder.train().requires_grad_(True),
    )
    params = list(transformer.parameters()) + list(text.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.world_lr, weight_decay=0.01, betas=(0.9, 0.99))
    ema = copy.deepcopy(transformer).eval().requires_grad_(False)
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
        transformer.load_state_dict(state["raw_transformer"])
    critic = Critic.start(
        model.config.codec.latent_channels, config, device, state, model.config.frames_per_block
    )
    frames = latents.shape[2]
    tpf = transformer.tokens_per_frame(*latents.shape[3:])
    mask = clean_noisy_mask(frames, model.config.frames_per_block, tpf, device, *model.config.window_blocks())
    budget = config.minutes * 60
    elapsed = state.get("world_seconds", 0.0)
    step = state.get("world_step", 0)
    losses = state.get("losses", [])
    last_checkpoint = time.time()
    progress = tqdm(desc="world model", total=int(budget), unit="s", initial=int(elapsed))
    use_amp = device.type == "cuda"
    while elapsed < budget:
        started = time.time()
        index = torch.randint(len(latents), (config.world_batch,))
        batch = latents[index.to(device)]
        batch_prompts = [prompts[i] for i in index.tolist()]
        batch_cells = None if cells is None else cells[index.to(device)]
        batch_rounded = None if rounded is None else rounded[index.to(device)]
        batch_scenes = None if scenes is None else [scenes[i] for i in index.tolist()]
        recovery = elapsed >= config.recovery_start * budget
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, x0 = world_loss(
                model, batch, batch_prompts, mask, config, recovery, batch_cells, batch_rounded, batch_scenes
            )
            if critic and config.adversarial_on == "rollouts":
                x0 = rollout_of(model, batch, batch_prompts, config)
            adversarial = (
                critic.generator_term(x0) if critic and step >= config.discriminator_warmup else None
            )
        optimizer.zero_grad(set_to_none=True)
        (loss if adversarial is None else loss + config.adversarial_weight * adversarial).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        lr_scale = min(1.0, (step + 1) / config.warmup_steps) * (
            0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
        )
        for group in optimizer.param_groups:
            group["lr"] = config.world_lr * lr_scale
        optimizer.step()
        update_ema(ema, transformer, step, config.ema)
        if critic:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                critic.learn(batch, x0)
        step += 1
        losses.append(loss.item())
        elapsed += time.time() - started
        progress.update(int(elapsed) - progress.n)
        if step % 100 == 0:
            log(
                {
                    "phase": "world",
                    "step": step,
                    "seconds": round(elapsed, 1),
                    "loss": float(np.mean(losses[-100:])),
                    "recovery": recovery,
                    **critic.recent(),
                }
            )
        if time.time() - last_checkpoint > config.checkpoint_seconds:
            save_checkpoint(model, ema, optimizer, training_state(elapsed, step, losses, critic), out)
            last_checkpoint = time.time()
    progress.close()
    model.transformer, model.text_encoder = ema, text.eval().requires_grad_(False)
    save_checkpoint(model, ema, optimizer, training_state(elapsed, step, losses, critic), out)
    return {
        "world_steps": step,
        "world_seconds": elapsed,
        "final_loss": float(np.mean(losses[-200:])),
        **critic.recent(),
    }


def rollout_of(
    model: ToyWorldModel, batch: torch.Tensor, prompts: list[str], config: TrainConfig
) -> torch.Tensor:
    """``own_rollout`` of the first ``rollout_batch`` clips of a batch from a random exit step, after the
    clips' real opening block (``[B', C, F, h, w]``: the discriminator reads the opening frame there)."""
    clips = batch[: config.rollout_batch]
    text = model.text_encoder(model.text_encoder.token_ids(prompts[: len(clips)]))
    exit_step = int(torch.randint(len(model.config.steps), ()).item())
    generated = own_rollout(model.transformer, clips, text, model.config, exit_step)
    per_block = model.config.frames_per_block
    return torch.cat([clips[:, :, :per_block], generated.to(clips.dtype)], dim=2)


def training_state(elapsed: float, step: int, losses: list[float], critic: Critic) -> dict:
    """What a checkpoint keeps besides the weights and the optimiser, for resuming."""
    return {"world_seconds": elapsed, "world_step": step, "losses": losses, **critic.state()}


class Critic:
    """The discriminator of adversarial fine-tuning and its optimiser (falsy when the weight is 0)."""

    def __init__(
        self, discriminator: LatentFrameDiscriminator | None, optimizer, frames: int, first_frame: int = 0
    ):
        self.discriminator, self.optimizer, self.frames = discriminator, optimizer, frames
        self.first_frame = first_frame  # real and generated frames are drawn from this frame on
        self.losses: dict[str, list[float]] = {"discriminator_loss": [], "generator_loss": []}

    @classmethod
    def start(cls, channels: int, config: TrainConfig, device, state: dict, first_frame: int) -> Critic:
        """``first_frame``: where generated frames begin in the clips of ``adversarial_on="rollouts"``."""
        if config.adversarial_weight <= 0:
            return cls(None, None, 0)
        on_rollouts = config.adversarial_on == "rollouts"
        discriminator = LatentFrameDiscriminator(channels, conditioned=on_rollouts).to(device)
        optimizer = torch.optim.AdamW(
            discriminator.parameters(), lr=config.discriminator_lr, betas=(0.0, 0.99)
        )
        if "discriminator" in state:
            discriminator.load_state_dict(state["discriminator"])
            optimizer.load_state_dict(state["discriminator_optimizer"])
        return cls(discriminator, optimizer, config.adversarial_frames, first_frame if on_rollouts else 0)

    def __bool__(self) -> bool:
        return self.discriminator is not None

    def generator_term(self, generated: torch.Tensor) -> torch.Tensor:
        """The generator loss on a random draw of the generated frames (the discriminator held still)."""
        self.discriminator.requires_grad_(False)
        loss = generator_loss(
            self.discriminator, *latent_frames(generated, self.frames, first=self.first_frame)
        )
        self.discriminator.requires_grad_(True)
        self.losses["generator_loss"].append(loss.item())
        return loss

    def learn(self, real: torch.Tensor, generated: torch.Tensor) -> None:
        """One discriminator step: real frames of the batch against generated ones."""
        real_frames, real_openings = latent_frames(real, self.frames, first=self.first_frame)
        fake_frames, fake_openings = latent_frames(generated.detach(), self.frames, first=self.first_frame)
        loss = discriminator_loss(self.discriminator, real_frames, fake_frames, real_openings, fake_openings)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.losses["discriminator_loss"].append(loss.item())

    def recent(self) -> dict[str, float]:
        """Mean of each loss over the last 100 steps (nothing without a discriminator)."""
        return {name: float(np.mean(values[-100:])) for name, values in self.losses.items() if values}

    def state(self) -> dict:
        if not self:
            return {}
        return {
            "discriminator": self.discriminator.state_dict(),
            "discriminator_optimizer": self.optimizer.state_dict(),
        }


def save_loss_curves(log_path: Path, image_path: Path) -> bool:
    """The codec's and the world model's training losses from a run's ``log.jsonl``, side by side (the
    world model's alone for a fine-tune, which has no codec phase). A run too short to log a loss gets
    no image; returns whether one was written."""
    from matplotlib.figure import Figure

    records = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    logged = [r for r in records if "loss" in r]
    phases = [phase for phase in ("codec", "world") if any(r.get("phase") == phase for r in logged)]
    if not phases:
        return False
    figure = Figure(figsize=(4.5 * len(phases), 3.2), layout="constrained")
    for axis, phase in zip(figure.subplots(1, len(phases), squeeze=False)[0], phases):
        axis.plot(*zip(*[(r["step"], r["loss"]) for r in logged if r.get("phase") == phase]))
        recovery = [r["step"] for r in records if r.get("phase") == phase and r.get("recovery")]
        if recovery:
            axis.axvline(recovery[0], color="grey", linestyle="--", label="own-prediction context from here")
            axis.legend(fontsize=8)
        axis.set(title=f"{phase} loss", xlabel="step", yscale="log")
    figure.savefig(image_path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m lab train", description="Train the embedded toy world model."
    )
    parser.add_argument(
        "--out", required=True, help="run folder (checkpoints, weights/, log.jsonl, report.json)"
    )
    parser.add_argument(
        "--minutes", type=positive_number, default=None, help="wall-clock budget of the world model"
    )
    parser.add_argument("--clips", type=at_least(1), default=None)
    parser.add_argument(
        "--clip-frames",
        type=at_least(1),
        default=None,
        help="frames per training clip (longer than the KV window: it slides)",
    )
    parser.add_argument(
        "--sink-frames",
        type=at_least(0),
        default=None,
        help="first frames the KV window keeps (attention sinks), saved; training masks reproduce the window",
    )
    parser.add_argument("--workers", type=at_least(1), default=8, help="processes rendering the world")
    parser.add_argument("--smoke", action="store_true", help="a tiny CPU run that checks the whole pipeline")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--init", default=None, help="fine-tune these trained weights (no codec phase)")
    parser.add_argument("--codec-from", default=None, help="take the codec of these weights (no codec phase)")
    parser.add_argument("--layers", type=at_least(1), default=None, help="transformer layers")
    parser.add_argument("--heads", type=at_least(1), default=None, help="attention heads (64 channels each)")
    parser.add_argument("--ffn", type=at_least(1), default=None, help="feed-forward width")
    parser.add_argument(
        "--lr", type=positive_number, default=None, help="peak learning rate of the world model"
    )
    parser.add_argument("--batch", type=at_least(1), default=None, help="world model batch size")
    parser.add_argument("--seed", type=int, default=None, help="seed of the rendered clips and training")
    parser.add_argument("--object-weight", type=float, default=None, help="loss weight of object cells")
    parser.add_argument("--recovery-start", type=fraction, default=None, help="budget fraction, 0..1")
    parser.add_argument("--recovery-context", choices=("last_step", "sampled", "rollouts"), default=None)
    parser.add_argument(
        "--aligned-targets",
        action="store_true",
        help="with --recovery-context rollouts: targets re-drawn from where the rollout put each object",
    )
    parser.add_argument(
        "--recovery-probability", type=fraction, default=None, help="share of clips given own context, 0..1"
    )
    parser.add_argument("--warmup-steps", type=at_least(1), default=None)
    parser.add_argument("--codec-steps", type=at_least(1), default=None)
    parser.add_argument(
        "--context-noise", type=fraction, default=None, help="highest context noise level, 0..1"
    )
    parser.add_argument(
        "--context-blur",
        type=non_negative_number,
        default=None,
        help="largest latent blur (std in cells) of the context after the opening block (0: none)",
    )
    parser.add_argument(
        "--context-blur-probability",
        type=fraction,
        default=None,
        help="share of clips whose context is blurred",
    )
    parser.add_argument(
        "--context-rounding",
        type=non_negative_number,
        default=None,
        help="largest rounding (pixel std) of the objects in the context after the opening block (0: none)",
    )
    parser.add_argument(
        "--context-rounding-probability",
        type=fraction,
        default=None,
        help="share of clips whose context is rounded",
    )
    parser.add_argument(
        "--commit-sigma", type=float, default=None, help="context noise of streaming's commit pass, saved"
    )
    parser.add_argument(
        "--adversarial-weight", type=float, default=None, help="weight of the discriminator's loss (0: none)"
    )
    parser.add_argument(
        "--adversarial-on",
        choices=("predictions", "rollouts"),
        default=None,
        help="what the discriminator judges: teacher-forced x0 predictions, or the model's own rollouts",
    )
    parser.add_argument("--rollout-batch", type=at_least(1), default=None, help="clips rolled out per step")
    parser.add_argument("--discriminator-lr", type=positive_number, default=None)
    parser.add_argument(
        "--discriminator-warmup",
        type=at_least(0),
        default=None,
        help="steps the discriminator learns alone before its loss reaches the generator",
    )
    parser.add_argument(
        "--ema", type=float, default=None, help="decay of the weights' moving average that ships"
    )
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else TrainConfig()
    overrides = {
        "minutes": args.minutes,
        "clips": args.clips,
        "clip_frames": args.clip_frames,
        "world_lr": args.lr,
        "world_batch": args.batch,
        "seed": args.seed,
        "object_weight": args.object_weight,
        "recovery_start": args.recovery_start,
        "recovery_context": args.recovery_context,
        "recovery_probability": args.recovery_probability,
        "aligned_targets": args.aligned_targets or None,
        "warmup_steps": args.warmup_steps,
        "codec_steps": args.codec_steps,
        "context_noise": args.context_noise,
        "context_blur": args.context_blur,
        "context_blur_probability": args.context_blur_probability,
        "context_rounding": args.context_rounding,
        "context_rounding_probability": args.context_rounding_probability,
        "adversarial_weight": args.adversarial_weight,
        "discriminator_lr": args.discriminator_lr,
        "discriminator_warmup": args.discriminator_warmup,
        "adversarial_on": args.adversarial_on,
        "rollout_batch": args.rollout_batch,
        "ema": args.ema,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    torch.manual_seed(config.seed)
    log_file = (out / "log.jsonl").open("a")

    def log(record: dict) -> None:
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()

    model_config = ToyWorldConfig()
    if args.smoke:
        model_config = replace(
            model_config,
            num_layers=2,
            num_heads=2,
            head_dim=16,
            ffn_dim=32,
            text_dim=16,
            codec=CodecConfig(widths=(16, 16, 16)),
        )
    shape = {"num_layers": args.layers, "num_heads": args.heads, "ffn_dim": args.ffn}
    if args.init is not None and any(v is not None for v in shape.values()):
        parser.error("--init fine-tunes weights of their own shape; --layers/--heads/--ffn need a new model")
    if args.init is not None and args.codec_from is not None:
        parser.error("--init already keeps the codec of the weights it fine-tunes")
    if config.aligned_targets and config.recovery_context != "rollouts":
        parser.error("--aligned-targets re-draws targets from rollouts: give --recovery-context rollouts")
    model_config = replace(model_config, **{k: v for k, v in shape.items() if v is not None})
    codec_source = None if args.codec_from is None else ToyWorldModel.load(args.codec_from)
    if codec_source is not None:
        model_config = replace(model_config, codec=codec_source.config.codec)
    if args.init is not None:
        model_config = ToyWorldModel.load(args.init).config
    if args.commit_sigma is not None:
        model_config = replace(model_config, commit_sigma=args.commit_sigma)
    if args.sink_frames is not None:
        model_config = replace(model_config, sink_frames=args.sink_frames)
    try:
        model_config.window_blocks()
    except ValueError as error:
        parser.error(str(error))
    if config.clip_frames % model_config.frames_per_block:
        parser.error(f"--clip-frames must be a multiple of {model_config.frames_per_block} frames per block")
    started = time.time()
    clips = render_dataset(
        config.clips,
        config.clip_frames,
        model_config.codec.frame_size,
        config.seed,
        1 if args.smoke else args.workers,
        model_config.codec.stride,
        config.context_rounding,
    )
    frames = clips.frames
    report = {
        "render_seconds": time.time() - started,
        "clips": len(frames),
        "clip_frames": config.clip_frames,
    }
    resume_path = out / "resume.pt"
    if resume_path.exists():
        model = ToyWorldModel.load(out / "weights", device)
        state = torch.load(resume_path, map_location=device)
        model.text_encoder.load_state_dict(state["text_encoder"])
        report.update(json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else {})
    elif args.init is not None:
        model = ToyWorldModel.load(args.init, device)
        model.config = model_config
        report["init"] = str(args.init)
        state = {}
    elif codec_source is not None:
        model = ToyWorldModel.untrained(model_config, config.seed)
        model.codec = codec_source.codec
        model = model.to(device)
        report["codec_from"] = str(args.codec_from)
        state = {}
    else:
        model = ToyWorldModel.untrained(model_config, config.seed).to(device)
        started = time.time()
        report.update(train_codec(model, frames, config, log))
        report["codec_seconds"] = time.time() - started
        state = {}
    latents = encode_dataset(model, frames)
    rounded = None if clips.rounded is None else encode_dataset(model, clips.rounded)
    cells = torch.as_tensor(clips.cells, device=device)
    report.update(
        train_world(model, latents, clips.prompts, config, out, log, state, cells, rounded, clips.scenes)
    )
    report["train_config"] = asdict(config)
    report["parameters"] = {
        "transformer": sum(p.numel() for p in model.transformer.parameters()),
        "codec": sum(p.numel() for p in model.codec.parameters()),
        "text_encoder": sum(p.numel() for p in model.text_encoder.parameters()),
    }
    report["device"] = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    (out / "report.json").write_text(json.dumps(report, indent=2))
    log_file.close()
    if not save_loss_curves(out / "log.jsonl", out / "loss_curve.png"):
        print("no loss was logged (fewer than 100 steps per phase), so no loss_curve.png")
    print(json.dumps(report, indent=2))
    return report
