"""Latent region optimisation of one block: the drag step of DragStream, in the paper's order.

At step T' the block's noisy latent z is optimised, segment by segment along the trajectory: the
targets Y_i and coordinate maps Pi of the segment (Eq. 1); L_rec, the features inside each Y_i against
the reference features warped by Pi, those of a cutoff the SFS switch draws (Eq. 2, 5-8); L_cst, the
non-editable region kept (Eq. 3); an AdamW step weighted by the CSS map (Eq. 9-10); and ADSR, the
latent re-standardised to its neighbours (Eq. 4). The variants (released code, baselines, the
embedded model's rotation term) are pieces chosen once (:mod:`.variants`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from ..models.base import VideoBackend
from ..models.kv_cache import KVCache
from .control import RunControl
from .drag import ResolvedDrag, iteration_segments
from .frequency import CutoffSwitch
from .losses import SegmentTargets, constraint_region, reconstruction_loss
from .reference import ReferenceFeatures, feature_layers, record_features
from .variants import choose_variants, first_pass


@dataclass
class OptimizationResult:
    z: torch.Tensor
    losses: list[dict[str, float]]


def optimize_block(
    backend: VideoBackend,
    z_init: torch.Tensor,
    cache: KVCache,
    prompt_embeds: torch.Tensor,
    drag: ResolvedDrag,
    control: RunControl | None = None,
) -> OptimizationResult:
    """Optimise the noisy block latent ``z_init`` ``[1, C, F, h, w]`` at step ``drag.config.optimize_step``."""
    config, plan, layout, control = drag.config, drag.plan, backend.layout, control or RunControl()
    variants, layers = choose_variants(drag, backend, z_init), feature_layers(config, backend)
    z = z_init.detach().clone().requires_grad_(True)
    optimizer = torch.optim.AdamW([z], lr=config.learning_rate)
    schedule = block_schedule(drag)
    cutoffs = iter(draw_cutoffs(drag, len(schedule)))
    first, losses = None, []
    for segment, iteration, count in schedule:
        if iteration == 0:  # a new goal: the segment's targets, constraint region and CSS map
            goals = plan.goals(
                segment / drag.segments, layout.pixel_size, layout.latent_size, config.walk_from
            )  # Eq. 1
            targets = SegmentTargets(drag.reference, goals, plan, z.shape[2], config.reconstruction_weight)
            region = constraint_region(goals, plan)
            css_map = variants.css_map(goals, z.shape[2]) if variants.css_map else None  # Eq. 9-10
        if control.should_stop():
            return OptimizationResult(z.detach(), losses)
        cutoff = next(cutoffs)
        current, x0 = record_features(
            backend, z, config.optimize_step, cache, prompt_embeds, layers, need_x0=variants.needs_x0
        )
        current = current.squeeze(0)
        first = first or first_pass(drag, current, x0)
        terms = {  # Eq. 2 against the drawn cutoff's reference (SFS, Eq. 5-8), and Eq. 3
            "l_rec": reconstruction_loss(current, targets.features(cutoff), config.reconstruction_loss),
            "l_cst": variants.constraint(current, x0, first, region, plan),
        }
        if variants.rotation is not None:
            latent_target = targets.latent(first.reference_x0)
            terms = variants.rotation.add(terms, x0, first, latent_target, region, plan)
        loss = terms["l_rec"] + config.constraint_weight * terms["l_cst"]
        moved = variants.descend(z, optimizer, loss, css_map)  # AdamW, shaped by the CSS map
        variants.rectify(z)  # ADSR, Eq. 4
        optimizer = variants.next_optimizer(optimizer, z)
        record = {"segment": segment, "iteration": iteration, "cutoff": cutoff}
        losses.append({**record, **{name: value.item() for name, value in terms.items()}})
        control.emit("iteration", iteration_payload(losses[-1], drag, count, z, moved, css_map))
    if not torch.isfinite(z).all():
        raise FloatingPointError("the drag produced a non-finite latent; the block was left unchanged")
    return OptimizationResult(variants.finish(z_init, z.detach()).detach(), losses)


def block_schedule(drag: ResolvedDrag) -> list[tuple[int, int, int]]:
    """Every iteration of the block as (segment, its index within the segment, the segment's
    iterations), in order (see :func:`~.drag.iteration_segments`)."""
    segments = iteration_segments(drag.segments, drag.config.iterations, drag.config.animation_max_iterations)
    counts = Counter(segments)
    seen: Counter = Counter()
    schedule = []
    for segment in segments:
        schedule.append((segment, seen[segment], counts[segment]))
        seen[segment] += 1
    return schedule


def draw_cutoffs(drag: ResolvedDrag, iterations: int) -> list[float]:
    """The cutoff of every iteration (SFS, Eq. 8), drawn up front so that lazy reference features
    compute all the drawn ones in one batched pass; the unfiltered one is left to the first iteration
    where that iteration's pass is the reference itself."""
    config = drag.config
    switch = CutoffSwitch(config.cutoffs if config.sfs else (1.0,), drag.generator)
    draws = [switch.draw() for _ in range(iterations)]
    if isinstance(drag.reference, ReferenceFeatures):
        drag.reference.compute(sorted({c for c in draws if not (drag.starts_at_reference and c == 1.0)}))
    return draws


def iteration_payload(record: dict, drag: ResolvedDrag, count: int, z, moved, css_map):
    """The "iteration" event's payload, built only when someone listens (``count``: the iterations of
    this segment)."""
    return lambda: {
        **record,
        "num_segments": drag.segments,
        "num_iterations": count,
        "z": z.detach().clone(),
        "grad": z.grad.detach().clone(),
        "step": moved,
        "gradient_map": css_map,
    }
