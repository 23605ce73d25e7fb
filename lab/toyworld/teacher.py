"""The bidirectional teacher of the toy world: the same Wan transformer, no causal mask, whole clips.

    python -m lab teacher --init dragstream_widget/models/toyworld/weights --out runs/teacher --minutes 6

Trained by flow matching on whole clips (every frame at one noise level, every frame seeing every
other), initialised from causal weights so that it starts from their features, with the prompt dropped
for a share of clips so that it can be guided (classifier-free guidance). It is sampled with many steps
(``sample_clip``). It is what Self-Forcing distils from (``self_forcing.py``): the real score of
distribution matching, and the starting point of the critic that learns the student's distribution.

The text encoder is the causal weights' own, frozen: teacher, critic and student read the same prompt
embeddings. Checkpoints every two minutes; the run resumes from ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dragstream_widget.arguments import at_least, fraction, positive_number
from dragstream_widget.export import save_image, side_by_side
from dragstream_widget.models.sampler import add_noise, shift_sigma
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR, ToyWorldModel

from .train import encode_dataset, render_dataset, update_ema


@dataclass(frozen=True)
class TeacherConfig:
    clips: int = 16000
    clip_frames: int = 12
    batch: int = 48
    lr: float = 1e-4
    warmup_steps: int = 100
    prompt_dropout: float = 0.1  # share of clips trained without their prompt (for guidance)
    ema: float = 0.995
    minutes: float = 6.0
    checkpoint_seconds: float = 120.0
    seed: int = 1


SMOKE = TeacherConfig(clips=8, clip_frames=6, batch=4, minutes=0.03, checkpoint_seconds=1e9)


def clip_sigmas(batch: int, shift: float, device) -> torch.Tensor:
    """One noise level per clip, uniform in (0, 1) then shifted as the sampler shifts its steps."""
    return shift_sigma(torch.rand(batch, device=device).clamp(1e-3, 1.0), shift)


def whole_clip_flow(
    transformer, noisy: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor
) -> torch.Tensor:
    """The flow the teacher predicts for clips ``[B, C, F, h, w]`` noised to ``sigma`` ``[B]``, every frame
    attending to every frame (no mask, no cache)."""
    return transformer(noisy, sigma * 1000, text).sample


def guided_x0(
    transformer, noisy: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor, guidance: float
) -> torch.Tensor:
    """The teacher's x0 with classifier-free guidance ``guidance`` (1: the conditional prediction alone);
    the unconditional prediction reads the zero embedding that prompt dropout trained."""
    s = sigma.view(-1, 1, 1, 1, 1)
    if guidance == 1.0:
        return noisy - s * whole_clip_flow(transformer, noisy, sigma, text)
    both = whole_clip_flow(
        transformer, noisy.repeat(2, 1, 1, 1, 1), sigma.repeat(2), torch.cat([text, torch.zeros_like(text)])
    )
    conditional, unconditional = both.chunk(2)
    flow = unconditional + guidance * (conditional - unconditional)
    return noisy - s * flow


@torch.no_grad()
def sample_clip(
    transformer,
    text: torch.Tensor,
    shape: tuple[int, ...],
    steps: int = 48,
    shift: float = 3.0,
    guidance: float = 2.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Whole clips ``[B, C, F, h, w]`` from noise by ``steps`` Euler steps of the flow ODE on the shifted
    schedule, with guidance."""
    device = text.device
    z = torch.randn(shape, generator=generator, device=device)
    levels = [shift_sigma(1.0 - i / steps, shift) for i in range(steps)] + [0.0]
    for sigma, following in zip(levels[:-1], levels[1:]):
        s = torch.full((shape[0],), sigma, device=device)
        x0 = guided_x0(transformer, z, s, text, guidance)
        noise = (z - (1 - sigma) * x0) / sigma
        z = add_noise(x0, noise, following)
    return z


def teacher_loss(
    transformer, latents: torch.Tensor, text: torch.Tensor, shift: float, prompt_dropout: float
) -> torch.Tensor:
    """Flow matching on whole clips, the prompt dropped (zero embedding) for a share of them."""
    sigma = clip_sigmas(len(latents), shift, latents.device)
    noise = torch.randn_like(latents)
    noisy = add_noise(latents, noise, sigma.view(-1, 1, 1, 1, 1))
    dropped = torch.rand(len(latents), device=latents.device) < prompt_dropout
    text = torch.where(dropped[:, None, None], torch.zeros_like(text), text)
    flow = whole_clip_flow(transformer, noisy, sigma, text)
    return F.mse_loss(flow.float(), (noise - latents).float())


def save_run(model: ToyWorldModel, ema, out: Path, state: dict) -> None:
    """The EMA transformer as toy-world weights (``out / "weights"``, the codec and text encoder beside
    it) and what resuming needs (``out / "resume.pt"``)."""
    ToyWorldModel(model.config, ema, model.codec, model.text_encoder).save(out / "weights")
    torch.save(state, out / "resume.pt")


def train_teacher(
    model: ToyWorldModel, latents: torch.Tensor, prompts: list[str], config: TeacherConfig, out: Path, log
) -> dict:
    device = latents.device
    transformer = model.transformer.train().requires_grad_(True)
    ema = copy.deepcopy(transformer).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(
        transformer.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.99)
    )
    state = torch.load(out / "resume.pt", map_location=device) if (out / "resume.pt").exists() else {}
    if state:
        transformer.load_state_dict(state["raw_transformer"])
        optimizer.load_state_dict(state["optimizer"])
    with torch.no_grad():
        texts = model.text_encoder(model.text_encoder.token_ids(prompts))
    budget, elapsed, step = config.minutes * 60, state.get("seconds", 0.0), state.get("step", 0)
    losses: list[float] = state.get("losses", [])
    shift = model.config.shift
    last_checkpoint = time.time()
    progress = tqdm(desc="teacher", total=int(budget), unit="s", initial=int(elapsed))
    while elapsed < budget:
        started = time.time()
        index = torch.randint(len(latents), (config.batch,), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = teacher_loss(transformer, latents[index], texts[index], shift, config.prompt_dropout)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        scale = min(1.0, (step + 1) / config.warmup_steps) * (
            0.55 + 0.45 * math.cos(math.pi * elapsed / budget)
        )
        for group in optimizer.param_groups:
            group["lr"] = config.lr * scale
        optimizer.step()
        update_ema(ema, transformer, step, config.ema)
        step += 1
        losses.append(loss.item())
        elapsed += time.time() - started
        progress.update(int(elapsed) - progress.n)
        if step % 100 == 0:
            log(
                {
                    "phase": "teacher",
                    "step": step,
                    "seconds": round(elapsed, 1),
                    "loss": float(np.mean(losses[-100:])),
                }
            )
        if time.time() - last_checkpoint > config.checkpoint_seconds:
            save_run(model, ema, out, _resume_state(transformer, optimizer, elapsed, step, losses))
            last_checkpoint = time.time()
    progress.close()
    save_run(model, ema, out, _resume_state(transformer, optimizer, elapsed, step, losses))
    model.transformer = ema
    return {
        "steps": step,
        "seconds": elapsed,
        "final_loss": float(np.mean(losses[-200:])) if losses else None,
    }


def _resume_state(transformer, optimizer, elapsed: float, step: int, losses: list[float]) -> dict:
    return {
        "raw_transformer": transformer.state_dict(),
        "optimizer": optimizer.state_dict(),
        "seconds": elapsed,
        "step": step,
        "losses": losses,
    }


@torch.no_grad()
def teacher_sheet(
    model: ToyWorldModel, prompts: list[str], path: Path, clip_frames: int, steps: int, guidance: float
) -> None:
    """Clips the teacher samples from noise for ``prompts`` (one row each, every frame), as a PNG."""
    text = model.text_encoder(model.text_encoder.token_ids(prompts))
    size = model.config.codec.latent_size
    shape = (len(prompts), model.config.codec.latent_channels, clip_frames, size, size)
    latents = sample_clip(model.transformer, text, shape, steps, model.config.shift, guidance)
    codec = model.codec
    pixels = codec.decode_pixels(codec.denormalize(latents.transpose(1, 2).flatten(0, 1)))
    frames = ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    rows = list(frames.reshape(len(prompts), clip_frames, *frames.shape[1:]))
    save_image(side_by_side(rows, columns=clip_frames, scale=2), path)


SHEET_PROMPTS = [
    "a red circle and a blue square on a plain background",
    "a yellow star on a striped background",
    "a green triangle and a purple circle on a checkered background",
    "an orange square on a gradient background",
]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m lab teacher", description="Train the bidirectional teacher of the toy world."
    )
    parser.add_argument(
        "--out", required=True, help="run folder (weights/, resume.pt, log.jsonl, report.json)"
    )
    parser.add_argument("--init", default=str(WEIGHTS_DIR), help="causal weights to start from (codec, text)")
    parser.add_argument("--minutes", type=positive_number, default=None)
    parser.add_argument("--clips", type=at_least(1), default=None)
    parser.add_argument("--batch", type=at_least(1), default=None)
    parser.add_argument("--lr", type=positive_number, default=None)
    parser.add_argument("--prompt-dropout", type=fraction, default=None)
    parser.add_argument("--workers", type=at_least(1), default=8, help="processes rendering the world")
    parser.add_argument(
        "--sample-steps", type=at_least(1), default=48, help="Euler steps of the sample sheet"
    )
    parser.add_argument("--guidance", type=positive_number, default=2.0, help="guidance of the sample sheet")
    parser.add_argument("--smoke", action="store_true", help="a tiny CPU run that checks the whole pipeline")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else TeacherConfig()
    overrides = {
        "minutes": args.minutes,
        "clips": args.clips,
        "batch": args.batch,
        "lr": args.lr,
        "prompt_dropout": args.prompt_dropout,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    torch.manual_seed(config.seed)
    model = ToyWorldModel.load(args.init, device)
    model.config = replace(model.config, int8_streaming=False)
    clips = render_dataset(
        config.clips,
        config.clip_frames,
        model.config.codec.frame_size,
        config.seed,
        1 if args.smoke else args.workers,
        model.config.codec.stride,
    )
    latents = encode_dataset(model, clips.frames)
    with (out / "log.jsonl").open("a") as log_file:

        def log(record: dict) -> None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

        report = train_teacher(model, latents, clips.prompts, config, out, log)
    report["config"] = asdict(config)
    report["init"] = str(args.init)
    report["device"] = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    steps = 2 if args.smoke else args.sample_steps
    teacher_sheet(
        model,
        SHEET_PROMPTS[:2] if args.smoke else SHEET_PROMPTS,
        out / "samples.png",
        config.clip_frames,
        steps,
        args.guidance,
    )
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report
