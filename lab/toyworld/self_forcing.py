"""Self-Forcing for the toy world: the causal few-step student trained by distribution matching on its
own rollouts.

    python -m lab self-forcing --teacher runs/teacher/weights --out runs/sf --minutes 10

Each generator step rolls the student out autoregressively exactly as it streams (the few-step sampler
per block over a rolling KV window of committed blocks, ``student_rollout``): from a real clip's opening
block, or from nothing (free generation). Only the pass at a random exit step of each block keeps its
gradient; the blocks before reach the context detached, as committed blocks do. A random window of the
teacher's clip length is cut from the rollout and noised to a random level; the bidirectional teacher
(``teacher.py``, with guidance) gives the real score, a critic of the same size, initialised from the
teacher and trained by flow matching on the student's rollouts, gives the fake score, and their
difference, normalised, is the generator's gradient (``distribution_matching_loss``). The critic takes
``critic_steps`` updates per generator update, each on a fresh rollout.

Where this departs from the paper's recipe (Self-Forcing on Wan-1.3B): the student starts from
weights trained by teacher forcing here rather than from an ODE-distilled initialisation; rollouts
half start from real opening frames (how the quickstart streams), half from noise; they run longer
than the teacher's clips so that the KV window slides, and distribution matching reads a random window
of them; learning rates and batch fit a 9 M model. Checkpoints every two minutes; resumes from ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from dragstream_widget.arguments import at_least, fraction, positive_number
from dragstream_widget.models.causal_wan import block_causal_mask
from dragstream_widget.models.sampler import FlowSampler, add_noise, next_noise, shift_sigma
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR, ToyWorldConfig, ToyWorldModel

from .teacher import guided_x0, save_run, whole_clip_flow
from .train import encode_dataset, render_dataset, update_ema


@dataclass(frozen=True)
class SelfForcingConfig:
    clips: int = 6000  # real clips whose opening blocks and prompts start the rollouts
    rollout_frames: int = 24  # longer than the KV window (9 frames), so that it slides
    window_frames: int = 12  # the teacher's clip length: distribution matching reads such a window
    batch: int = 24
    generator_lr: float = 1e-5
    critic_lr: float = 2e-5
    critic_steps: int = 5  # critic updates per generator update (Self-Forcing: 5)
    guidance: float = 2.0  # classifier-free guidance of the teacher's score
    free_start: float = 0.5  # share of rollouts started from noise instead of real opening frames
    min_sigma: float = 0.02
    max_sigma: float = 0.98
    sampler_update: str = "renoise"  # how the student moves between its steps (Self-Forcing: renoise)
    ema: float = 0.99
    minutes: float = 10.0
    checkpoint_seconds: float = 120.0
    seed: int = 2


SMOKE = SelfForcingConfig(
    clips=6, rollout_frames=9, window_frames=6, batch=2, critic_steps=2, minutes=0.03, checkpoint_seconds=1e9
)


def student_rollout(
    transformer,
    text: torch.Tensor,
    opening: torch.Tensor | None,
    frames: int,
    config: ToyWorldConfig,
    exit_steps: list[int],
    shape: tuple[int, ...],
) -> torch.Tensor:
    """A clip of ``frames`` frames ``[B, C, F, h, w]`` streamed by the causal student, block by block as
    streaming makes it: each block by the few-step sampler over the committed blocks its KV window holds
    (each committed noised to ``commit_sigma``). With ``opening`` the clip starts from those real frames;
    without, from nothing. Block ``k`` is its x0 at step ``exit_steps[k]``; that pass alone keeps its
    gradient (where gradients are on), and the context is committed from the detached block."""
    per_block, commit = config.frames_per_block, config.commit_sigma
    sampler = FlowSampler(config.steps, config.shift, config.sampler_update)
    batch, device = shape[0], text.device
    block_shape = (batch, shape[1], per_block, *shape[3:])
    tokens_per_frame = transformer.tokens_per_frame(*shape[3:])
    mask = block_causal_mask(frames, per_block, tokens_per_frame, device, *config.window_blocks())
    context = None if opening is None else add_noise(opening, torch.randn_like(opening), commit)
    clip = [] if opening is None else [opening]
    start = 0 if opening is None else per_block
    for block, begin in enumerate(range(start, frames, per_block)):
        length = begin + per_block
        positions = torch.arange(length, device=device)
        z = torch.randn(block_shape, device=device)
        exit_step = exit_steps[block]
        for i, sigma in enumerate(sampler.sigmas[: exit_step + 1]):
            steps = torch.full((batch, length), commit * 1000, device=device)
            steps[:, begin:] = sigma * 1000
            window = mask[: length * tokens_per_frame, : length * tokens_per_frame]
            inputs = z if context is None else torch.cat([context, z], 2)
            with torch.set_grad_enabled(i == exit_step and torch.is_grad_enabled()):
                flow = transformer(
                    inputs, steps, text, frame_positions=positions, attention_mask=window
                ).sample[:, :, begin:]
                x0 = z - sigma * flow.to(z.dtype)
            if i < exit_step:
                noise = next_noise(z, x0, sigma, torch.randn_like(z), sampler.update)
                z = add_noise(x0.detach(), noise, sampler.sigmas[i + 1])
        clip.append(x0)
        committed = add_noise(x0.detach(), torch.randn_like(x0), commit)
        context = committed if context is None else torch.cat([context, committed], 2)
    return torch.cat(clip, dim=2)


def random_window(clip: torch.Tensor, window_frames: int, per_block: int) -> torch.Tensor:
    """A window of ``window_frames`` frames starting at a random block boundary of ``clip``."""
    starts = range(0, clip.shape[2] - window_frames + 1, per_block)
    start = starts[int(torch.randint(len(starts), ()))]
    return clip[:, :, start : start + window_frames]


def noise_levels(batch: int, config: SelfForcingConfig, shift: float, device) -> torch.Tensor:
    """One level per clip in [min_sigma, max_sigma], shifted as the sampler shifts its steps."""
    uniform = config.min_sigma + (config.max_sigma - config.min_sigma) * torch.rand(batch, device=device)
    return shift_sigma(uniform, shift)


def distribution_matching_loss(
    generated: torch.Tensor,
    teacher,
    critic,
    text: torch.Tensor,
    sigma: torch.Tensor,
    guidance: float,
) -> torch.Tensor:
    """DMD (Yin et al. 2024), as Self-Forcing uses it: the generated clips noised to ``sigma``; the
    difference of the critic's (fake) and the guided teacher's (real) x0, normalised per clip by the
    distance to the real x0, is the gradient the loss gives ``generated``."""
    noisy = add_noise(generated.detach(), torch.randn_like(generated), sigma.view(-1, 1, 1, 1, 1))
    with torch.no_grad():
        real = guided_x0(teacher, noisy, sigma, text, guidance)
        fake = noisy - sigma.view(-1, 1, 1, 1, 1) * whole_clip_flow(critic, noisy, sigma, text)
        normaliser = (generated.detach() - real).abs().float().mean(dim=(1, 2, 3, 4), keepdim=True)
        gradient = torch.nan_to_num((fake - real).float() / normaliser.clamp_min(1e-6))
    return 0.5 * F.mse_loss(generated.float(), (generated.float() - gradient).detach())


def critic_loss(critic, generated: torch.Tensor, text: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Flow matching of the critic on the student's clips: it learns the score of their distribution."""
    noise = torch.randn_like(generated)
    noisy = add_noise(generated, noise, sigma.view(-1, 1, 1, 1, 1))
    flow = whole_clip_flow(critic, noisy, sigma, text)
    return F.mse_loss(flow.float(), (noise - generated).float())


class Rollouts:
    """Draws batches of rollouts: prompts and opening blocks of real clips, the free-start share, exit steps."""

    def __init__(
        self,
        openings: torch.Tensor,
        texts: torch.Tensor,
        model_config: ToyWorldConfig,
        config: SelfForcingConfig,
    ):
        self.openings, self.texts = openings, texts
        self.model_config, self.config = model_config, config

    def draw(self, transformer) -> torch.Tensor:
        """One batch of rollouts (gradient at each block's exit step where gradients are on), cut to a
        random window; returns the window and its prompts' embeddings."""
        config, per_block = self.config, self.model_config.frames_per_block
        index = torch.randint(len(self.openings), (config.batch,), device=self.openings.device)
        text, opening = self.texts[index], self.openings[index]
        blocks = config.rollout_frames // per_block
        exit_steps = torch.randint(len(self.model_config.steps), (blocks,)).tolist()
        free = bool(torch.rand(()) < config.free_start)
        clip = student_rollout(
            transformer,
            text,
            None if free else opening,
            config.rollout_frames,
            self.model_config,
            exit_steps,
            (config.batch, *opening.shape[1:2], config.rollout_frames, *opening.shape[3:]),
        )
        return random_window(clip, config.window_frames, per_block), text


def train_self_forcing(
    model: ToyWorldModel, teacher, rollouts: Rollouts, config: SelfForcingConfig, out: Path, log
) -> dict:
    device = model.codec.latent_mean.device
    student = model.transformer.train().requires_grad_(True)
    critic = copy.deepcopy(teacher).train().requires_grad_(True)
    teacher.eval().requires_grad_(False)
    ema = copy.deepcopy(student).eval().requires_grad_(False)
    betas = (0.0, 0.999)  # as Self-Forcing
    generator_optimizer = torch.optim.AdamW(
        student.parameters(), lr=config.generator_lr, betas=betas, weight_decay=0.01
    )
    critic_optimizer = torch.optim.AdamW(
        critic.parameters(), lr=config.critic_lr, betas=betas, weight_decay=0.01
    )
    state = torch.load(out / "resume.pt", map_location=device) if (out / "resume.pt").exists() else {}
    if state:
        student.load_state_dict(state["raw_student"])
        critic.load_state_dict(state["critic"])
        ema.load_state_dict(state["ema"])
        generator_optimizer.load_state_dict(state["generator_optimizer"])
        critic_optimizer.load_state_dict(state["critic_optimizer"])
    budget, elapsed, step = config.minutes * 60, state.get("seconds", 0.0), state.get("step", 0)
    history: dict[str, list[float]] = state.get("history", {"dmd": [], "critic": []})
    shift, use_amp = model.config.shift, device.type == "cuda"
    last_checkpoint = time.time()
    progress = tqdm(desc="self forcing", total=int(budget), unit="s", initial=int(elapsed))
    while elapsed < budget:
        started = time.time()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            generated, text = rollouts.draw(student)
            sigma = noise_levels(len(generated), config, shift, device)
            loss = distribution_matching_loss(generated, teacher, critic, text, sigma, config.guidance)
        generator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        generator_optimizer.step()
        update_ema(ema, student, step, config.ema)
        history["dmd"].append(loss.item())
        for update in range(config.critic_steps):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                if update:
                    with torch.no_grad():
                        generated, text = rollouts.draw(student)
                sigma = noise_levels(len(generated), config, shift, device)
                fake = critic_loss(critic, generated.detach(), text, sigma)
            critic_optimizer.zero_grad(set_to_none=True)
            fake.backward()
            torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
            critic_optimizer.step()
            history["critic"].append(fake.item())
        step += 1
        elapsed += time.time() - started
        progress.update(int(elapsed) - progress.n)
        if step % 20 == 0:
            log(
                {
                    "phase": "self_forcing",
                    "step": step,
                    "seconds": round(elapsed, 1),
                    "dmd_loss": float(np.mean(history["dmd"][-20:])),
                    "critic_loss": float(np.mean(history["critic"][-100:])),
                }
            )
        if time.time() - last_checkpoint > config.checkpoint_seconds:
            save_run(
                model,
                ema,
                out,
                _resume_state(
                    student, critic, ema, generator_optimizer, critic_optimizer, elapsed, step, history
                ),
            )
            last_checkpoint = time.time()
    progress.close()
    save_run(
        model,
        ema,
        out,
        _resume_state(student, critic, ema, generator_optimizer, critic_optimizer, elapsed, step, history),
    )
    model.transformer = ema
    return {
        "steps": step,
        "seconds": elapsed,
        "dmd_loss": float(np.mean(history["dmd"][-50:])) if history["dmd"] else None,
        "critic_loss": float(np.mean(history["critic"][-250:])) if history["critic"] else None,
    }


def _resume_state(
    student, critic, ema, generator_optimizer, critic_optimizer, elapsed, step, history
) -> dict:
    return {
        "raw_student": student.state_dict(),
        "critic": critic.state_dict(),
        "ema": ema.state_dict(),
        "generator_optimizer": generator_optimizer.state_dict(),
        "critic_optimizer": critic_optimizer.state_dict(),
        "seconds": elapsed,
        "step": step,
        "history": history,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m lab self-forcing",
        description="Distil the bidirectional teacher into the causal few-step student on its own rollouts.",
    )
    parser.add_argument(
        "--out", required=True, help="run folder (weights/, resume.pt, log.jsonl, report.json)"
    )
    parser.add_argument(
        "--teacher", required=True, help="the bidirectional teacher's weights (python -m lab teacher)"
    )
    parser.add_argument("--init", default=str(WEIGHTS_DIR), help="the causal student's starting weights")
    parser.add_argument("--minutes", type=positive_number, default=None)
    parser.add_argument("--clips", type=at_least(1), default=None)
    parser.add_argument("--batch", type=at_least(1), default=None)
    parser.add_argument("--rollout-frames", type=at_least(1), default=None)
    parser.add_argument("--generator-lr", type=positive_number, default=None)
    parser.add_argument("--critic-lr", type=positive_number, default=None)
    parser.add_argument("--critic-steps", type=at_least(1), default=None)
    parser.add_argument("--guidance", type=positive_number, default=None)
    parser.add_argument("--free-start", type=fraction, default=None, help="share of rollouts from noise")
    parser.add_argument("--sampler-update", choices=("renoise", "euler"), default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=at_least(1), default=8, help="processes rendering the world")
    parser.add_argument("--smoke", action="store_true", help="a tiny CPU run that checks the whole pipeline")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else SelfForcingConfig()
    overrides = {
        "minutes": args.minutes,
        "clips": args.clips,
        "batch": args.batch,
        "rollout_frames": args.rollout_frames,
        "generator_lr": args.generator_lr,
        "critic_lr": args.critic_lr,
        "critic_steps": args.critic_steps,
        "guidance": args.guidance,
        "free_start": args.free_start,
        "sampler_update": args.sampler_update,
        "seed": args.seed,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    torch.manual_seed(config.seed)
    model = ToyWorldModel.load(args.init, device)
    model.config = replace(model.config, sampler_update=config.sampler_update)
    per_block = model.config.frames_per_block
    if config.rollout_frames % per_block or config.window_frames % per_block:
        parser.error(f"--rollout-frames and the window must be whole blocks of {per_block} frames")
    if config.window_frames > config.rollout_frames:
        parser.error(f"--rollout-frames must be at least the teacher's {config.window_frames} frames")
    teacher = ToyWorldModel.load(args.teacher, device).transformer
    clips = render_dataset(
        config.clips,
        per_block,
        model.config.codec.frame_size,
        config.seed,
        1 if args.smoke else args.workers,
        model.config.codec.stride,
    )
    openings = encode_dataset(model, clips.frames)
    with torch.no_grad():
        texts = model.text_encoder(model.text_encoder.token_ids(clips.prompts))
    rollouts = Rollouts(openings, texts, model.config, config)
    with (out / "log.jsonl").open("a") as log_file:

        def log(record: dict) -> None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()

        report = train_self_forcing(model, teacher, rollouts, config, out, log)
    report.update(config=asdict(config), init=str(args.init), teacher=str(args.teacher))
    report["device"] = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return report
