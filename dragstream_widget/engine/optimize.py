"""Latent region optimisation of one block (DragStream, Eq. 2-3, with ADSR, SFS and CSS).

At step T' the block's noisy latent z is optimised so that the recorded self-attention features
inside each target region Y_i match the reference features warped by Pi (L_rec), while the
non-editable region keeps its initial features (L_cst). The gradient is weighted by a Gaussian map
around the targets (CSS); the reference features come from context keys/values low-passed at a
cutoff switched at random each iteration (SFS); after each iteration z is re-standardised (ADSR).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from .. import geometry
from ..models.base import VideoBackend
from ..models.kv_cache import KVCache
from .config import DragConfig
from .events import EventBus
from .frequency import CutoffSwitch, kv_lowpass_filter, lowpass_spatial
from .rectify import self_rectify
from .targets import BlockPlan, RegionGoal


def stacked_features(features: dict[int, torch.Tensor], layers: tuple[int, ...]) -> torch.Tensor:
    """Recorded layers concatenated on channels: ``[B, sum(D), F, h, w]``."""
    return torch.cat([features[i] for i in layers], dim=1)


def record_features(
    backend: VideoBackend, z, step, cache, prompt_embeds, layers, kv_filter=None, need_x0: bool = True
):
    """Features F(z) of ``layers`` at sampler step ``step``, and the x0 prediction of the same pass
    (None without ``need_x0``: the model then stops after the deepest recorded layer)."""
    result = backend.denoise(
        z, step, cache, prompt_embeds, record_layers=layers, kv_filter=kv_filter, features_only=not need_x0
    )
    return stacked_features(result.features, layers), result.x0


@torch.no_grad()
def reference_features(
    backend: VideoBackend, z_ref, step, cache, prompt_embeds, layers, cutoffs, scope
) -> dict[float, torch.Tensor]:
    """Reference features of a committed block for every cutoff of the switch set (1 = unfiltered).

    ``cache`` must hold the context that block saw. All cutoffs run in one batched pass, each sample
    with its own low-pass. Returns ``{cutoff: [D, F, h, w]}``, detached.
    """
    cutoffs = tuple(float(c) for c in cutoffs)
    batch = z_ref.expand(len(cutoffs), *z_ref.shape[1:])
    kv_filter = kv_lowpass_filter(cutoffs, scope)
    feats, _ = record_features(backend, batch, step, cache, prompt_embeds, layers, kv_filter, need_x0=False)
    return {cutoff: feats[i].detach() for i, cutoff in enumerate(cutoffs)}


class ReferenceFeatures(Mapping[float, torch.Tensor]):
    """:func:`reference_features` of a committed block, each cutoff computed the first time it is read.

    An edit reads only the cutoffs its switch draws (4 iterations over the paper's 4 cutoffs draw 2.7
    on average), so it pays for those alone, computed together before its first iteration.
    :meth:`compute` fills the missing ones in one batched pass (an animation, which draws from all of
    them over its blocks, asks for every one). ``cache`` must hold the context the block saw and stay
    unchanged while this object is in use.
    """

    def __init__(self, backend: VideoBackend, z_ref, step, cache, prompt_embeds, layers, cutoffs, scope):
        self._pass = (backend, z_ref, step, cache, prompt_embeds, layers)
        self.cutoffs = tuple(float(c) for c in cutoffs)
        self.scope = scope
        self._features: dict[float, torch.Tensor] = {}
        self._x0: torch.Tensor | None = None
        self.seconds = 0.0  # spent computing so far
        self.passes = 0  # model passes run so far

    @torch.no_grad()
    def x0(self) -> torch.Tensor:
        """The reference latent's x0 prediction ``[C, F, h, w]`` in its own context, unfiltered (one
        full pass of the model the optimisation runs, the first time it is asked for)."""
        if self._x0 is None:
            backend, z_ref, step, cache, prompt_embeds, layers = self._pass
            started = time.perf_counter()
            self._x0 = backend.denoise(z_ref, step, cache, prompt_embeds, record_layers=layers).x0[0].detach()
            self.seconds += time.perf_counter() - started
            self.passes += 1
        return self._x0

    @property
    def computed(self) -> tuple[float, ...]:
        """The cutoffs whose features exist so far."""
        return tuple(self._features)

    def compute(self, cutoffs: Sequence[float] | None = None) -> None:
        """Compute the missing features among ``cutoffs`` (all by default) in one batched pass."""
        wanted = self.cutoffs if cutoffs is None else tuple(float(c) for c in cutoffs)
        missing = tuple(c for c in wanted if c not in self._features)
        if missing:
            started = time.perf_counter()
            self._features.update(reference_features(*self._pass, missing, self.scope))
            self.seconds += time.perf_counter() - started
            self.passes += 1

    def adopt_unfiltered(self, features: torch.Tensor) -> None:
        """Take ``features`` ``[D, F, h, w]`` as the unfiltered reference: the features of the reference
        latent itself in its own context, computed by the caller's pass (an edit's first iteration)."""
        if 1.0 in self.cutoffs and 1.0 not in self._features:
            self._features[1.0] = features.detach()

    def __getitem__(self, cutoff: float) -> torch.Tensor:
        cutoff = float(cutoff)
        if cutoff not in self.cutoffs:
            raise KeyError(f"cutoff {cutoff} is not in the switch set {self.cutoffs}")
        self.compute((cutoff,))
        return self._features[cutoff]

    def __contains__(self, cutoff: object) -> bool:  # without computing anything
        return isinstance(cutoff, (int, float)) and float(cutoff) in self.cutoffs

    def __iter__(self) -> Iterator[float]:
        return iter(self.cutoffs)

    def __len__(self) -> int:
        return len(self.cutoffs)


def masked_distance(
    a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, norm: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over pixels of ``mask * mean_channels(|a - b|)`` (or squared), and the mask's total weight."""
    diff = (a - b).abs() if norm == "l1" else (a - b) ** 2
    return (diff.mean(dim=0) * mask).sum(), mask.sum()


@dataclass
class ReconstructionTarget:
    """What L_rec compares the block's features with, per region, over all the block's frames: the
    reference features warped by Pi and the target masks Y_i (empty on frames without a goal)."""

    warped: list[torch.Tensor]  # per region [D, F, h, w]
    masks: list[torch.Tensor]  # per region [F, h, w]


def reconstruction_target(
    reference,
    goals: list[list[RegionGoal]],
    plan: BlockPlan,
    frames: int,
    weight: str = "mask",
    regions: Sequence[int] | None = None,
) -> ReconstructionTarget:
    """The reference features ``[D, F_ref, h, w]`` warped for a block of ``frames`` frames (fixed for a
    segment and cutoff, so built once for both), for ``regions`` (default: every region).
    ``weight="gaussian"`` weights each Y_i by a Gaussian over its bounding box (the SG-I2V-style
    baseline) instead of using it plainly."""
    dim, _, h, w = reference.shape
    regions = range(len(plan.handle_masks)) if regions is None else regions
    warped = {region: reference.new_zeros(dim, frames, h, w) for region in regions}
    masks = {region: reference.new_zeros(frames, h, w) for region in regions}
    for frame, ref_frame, frame_goals in zip(plan.frames, plan.reference_frames, goals):
        for region in regions:
            goal = frame_goals[region]
            warped[region][:, frame] = geometry.warp(reference[:, ref_frame], goal.coords)
            masks[region][frame] = goal.target_mask
            if weight == "gaussian" and goal.target_mask.max() > 0.5:
                masks[region][frame] *= geometry.css_gaussian_map(goal.target_mask).to(goal.target_mask)
    return ReconstructionTarget(list(warped.values()), list(masks.values()))


def rotation_target(
    reference_x0: torch.Tensor, goals: list[list[RegionGoal]], plan: BlockPlan, frames: int, weight: str
) -> ReconstructionTarget:
    """L_rec's target in latent space for the plan's 2D-rotation regions only: the reference x0
    prediction ``[C, F_ref, h, w]`` warped by Pi inside Y_i (``DragConfig.rotation_x0_weight``)."""
    return reconstruction_target(reference_x0, goals, plan, frames, weight, plan.rotation_regions)


def reconstruction_loss(current, target: ReconstructionTarget, norm: str):
    # Eq. 2: L_rec, current features inside Y_i against the reference features warped by Pi (detached)
    total, weight = current.new_zeros(()), current.new_zeros(())
    for warped, mask in zip(target.warped, target.masks):
        value, area = masked_distance(current, warped, mask, norm)
        total, weight = total + value, weight + area
    return total / weight.clamp_min(1e-6)


def constraint_region(goals: list[list[RegionGoal]], plan: BlockPlan) -> torch.Tensor:
    """Where the block must stay: the user's non-editable region M, or else everything outside the
    handle and target regions."""
    if plan.frozen_mask is not None:
        return plan.frozen_mask
    moving = torch.zeros_like(plan.handle_masks[0])
    for frame_goals in goals:
        for goal in frame_goals:
            moving = torch.maximum(moving, torch.maximum(goal.handle_mask, goal.target_mask))
    return 1.0 - moving


def feature_constraint_loss(current, initial, region: torch.Tensor, plan: BlockPlan, norm: str):
    # Eq. 3: L_cst, features of the non-editable region kept at their initial values
    supervised = current.new_zeros(current.shape[1], 1, 1)
    supervised[plan.frames] = 1.0
    value, area = masked_distance(current, initial, region * supervised, norm)
    return value / area.clamp_min(1e-6)


def x0_constraint_loss(x0, x0_initial, region: torch.Tensor) -> torch.Tensor:
    """Released-code constraint: MSE of the x0 prediction outside the editable area, over all elements."""
    return torch.nn.functional.mse_loss(x0 * region, x0_initial * region)


@dataclass
class OptimizationResult:
    z: torch.Tensor
    losses: list[dict[str, float]]


def optimize_block(
    backend: VideoBackend,
    z_init: torch.Tensor,
    cache: KVCache,
    prompt_embeds: torch.Tensor,
    plan: BlockPlan,
    reference: Mapping[float, torch.Tensor],
    neighbours: torch.Tensor | None,
    config: DragConfig,
    generator: torch.Generator,
    events: EventBus | None = None,
    block_index: int = 0,
    should_stop: Callable[[], bool] | None = None,
    starts_at_reference: bool = False,
    reference_x0: torch.Tensor | None = None,
) -> OptimizationResult:
    """Optimise the noisy block latent ``z_init`` ``[1, C, F, h, w]`` at step ``config.optimize_step``.

    ``reference`` maps each cutoff of the switch set to the reference features ``[D, F_ref, h, w]``.
    ``starts_at_reference``: ``z_init`` is the reference latent in the same context (the edit of an
    undragged block), so the first iteration's pass is also the unfiltered reference, and ``reference``
    (a :class:`ReferenceFeatures`) adopts it instead of computing it again.
    ``reference_x0`` ``[C, F_ref, h, w]``: the reference's x0 prediction, for the rotation term of
    ``config.rotation_x0_weight``; by default the first pass's own (``starts_at_reference``) or
    ``reference.x0()``.
    """
    layout = backend.layout
    layers = config.feature_layers or backend.feature_layers
    step = config.optimize_step
    norm = config.reconstruction_loss
    rotation_weight = config.rotation_x0_weight if uses_rotation_term(plan, config) else 0.0
    need_x0 = config.constraint == "x0" or rotation_weight > 0
    initial_features = x0_initial = None  # F(z_init) and its x0: those of the first iteration's pass
    restores_statistics = config.adsr and backend.sampler.sigma(step) >= config.adsr_min_sigma
    rectify_to = neighbours if (config.adsr_reference == "neighbours" and neighbours is not None) else z_init
    switch = CutoffSwitch(config.cutoffs if config.sfs else (1.0,), generator)
    z = z_init.detach().clone().requires_grad_(True)
    optimizer = torch.optim.AdamW([z], lr=config.learning_rate)
    segments = trajectory_segments(backend, plan, config)
    draws = iter(drawn_cutoffs(switch, segments * config.iterations, reference, starts_at_reference))
    losses: list[dict[str, float]] = []
    for segment in range(1, segments + 1):
        goals = plan.goals(segment / segments, layout.pixel_size, layout.latent_size)
        region = constraint_region(goals, plan)
        gradient_map = None
        if config.css:
            gradient_map = frame_gradient_map(goals, plan, config.css_alpha, z.shape[2], layout.latent_size)
            gradient_map = gradient_map.to(z.device)
        targets: dict[float, ReconstructionTarget] = {}
        latent_target = None
        for iteration in range(config.iterations):
            if should_stop is not None and should_stop():
                return OptimizationResult(z.detach(), losses)
            cutoff = next(draws)
            current, x0 = record_features(backend, z, step, cache, prompt_embeds, layers, need_x0=need_x0)
            current = current.squeeze(0)
            if initial_features is None:
                initial_features = current.detach()
                x0_initial = x0.detach() if need_x0 else None
                if starts_at_reference:
                    reference.adopt_unfiltered(initial_features)
                if rotation_weight > 0 and reference_x0 is None:
                    reference_x0 = x0_initial[0] if starts_at_reference else reference.x0()
            if rotation_weight > 0 and latent_target is None:
                latent_target = rotation_target(
                    reference_x0, goals, plan, z.shape[2], config.reconstruction_weight
                )
            if cutoff not in targets:
                targets[cutoff] = reconstruction_target(
                    reference[cutoff], goals, plan, z.shape[2], config.reconstruction_weight
                )
            l_rec = reconstruction_loss(current, targets[cutoff], norm)
            if config.constraint == "features":
                l_cst = feature_constraint_loss(current, initial_features, region, plan, norm)
            else:
                l_cst = x0_constraint_loss(x0, x0_initial, region)
            latent_terms = {}
            if latent_target is not None:  # the rotation term: Eq. 2 and Eq. 3 again, on the x0 prediction
                latent_terms = {
                    "l_rec_x0": reconstruction_loss(x0[0], latent_target, norm),
                    "l_cst_x0": feature_constraint_loss(x0[0], x0_initial[0], region, plan, norm),
                }
                l_rec = l_rec + rotation_weight * latent_terms["l_rec_x0"]
                l_cst = l_cst + config.rotation_x0_constraint * latent_terms["l_cst_x0"]
            loss = l_rec + config.constraint_weight * l_cst
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if gradient_map is not None and config.css_on == "gradient":
                z.grad.mul_(gradient_map[None, None])
            if config.gradient_clip is not None:
                torch.nn.utils.clip_grad_norm_([z], config.gradient_clip)
            if not torch.isfinite(z.grad).all():
                raise FloatingPointError(
                    "the drag produced a non-finite gradient; the block was left unchanged"
                )
            before_step = z.detach().clone()
            optimizer.step()
            with torch.no_grad():
                if gradient_map is not None and config.css_on == "step":
                    z.copy_(css_step(before_step, z, gradient_map))
                moved = z.detach() - before_step  # the step taken, before ADSR
            if restores_statistics:
                with torch.no_grad():
                    z.copy_(self_rectify(z, rectify_to, config.adsr_stats))
            if config.reset_optimizer_each_iteration:
                optimizer = torch.optim.AdamW([z], lr=config.learning_rate)
            record = {
                "segment": segment,
                "iteration": iteration,
                "l_rec": l_rec.item(),
                "l_cst": l_cst.item(),
                "cutoff": cutoff,
            }
            record.update({name: value.item() for name, value in latent_terms.items()})
            losses.append(record)
            if events is not None:
                events.emit(
                    "iteration",
                    lambda r=record, g=gradient_map, m=moved: {
                        **r,
                        "block": block_index,
                        "num_segments": segments,
                        "num_iterations": config.iterations,
                        "z": z.detach().clone(),
                        "grad": z.grad.detach().clone(),
                        "step": m,
                        "gradient_map": g,
                    },
                )
    if not torch.isfinite(z).all():
        raise FloatingPointError("the drag produced a non-finite latent; the block was left unchanged")
    if config.latent_lowpass is not None:
        z = lowpass_change(z_init, z.detach(), config.latent_lowpass)
    return OptimizationResult(z.detach(), losses)


def uses_rotation_term(plan: BlockPlan, config: DragConfig) -> bool:
    """Whether the optimisation of ``plan`` adds the latent rotation term: a region turns in 2D and
    ``config.rotation_x0_weight`` is set."""
    return config.rotation_x0_weight > 0 and bool(plan.rotation_regions)


def css_step(before: torch.Tensor, after: torch.Tensor, gradient_map: torch.Tensor) -> torch.Tensor:
    # Eq. 9-10 applied to the optimiser's step: the latent moves by the map times the step it was given
    return before + gradient_map[None, None] * (after - before)


def drawn_cutoffs(
    switch: CutoffSwitch, count: int, reference: Mapping[float, torch.Tensor], starts_at_reference: bool
) -> list[float]:
    """The switch's next ``count`` cutoffs (SFS, one per iteration), drawn up front so that lazy
    reference features compute all the drawn ones in one batched pass; the unfiltered one is left to
    the first iteration where that iteration's pass is the reference itself."""
    draws = [switch.draw() for _ in range(count)]
    if isinstance(reference, ReferenceFeatures):
        reference.compute(sorted({c for c in draws if not (starts_at_reference and c == 1.0)}))
    return draws


def lowpass_change(z_init: torch.Tensor, z: torch.Tensor, cutoff: float) -> torch.Tensor:
    """SG-I2V-style post-processing: low frequencies of the optimised latent, high ones of the initial."""
    return lowpass_spatial(z, cutoff) + z_init - lowpass_spatial(z_init, cutoff)


def trajectory_segments(backend: VideoBackend, plan: BlockPlan, config: DragConfig) -> int:
    """How many segments the optimisation walks ``plan``'s motion in (each ``config.segment_tokens``
    token widths or ``config.segment_degrees`` long at most), each with ``config.iterations`` iterations."""
    token_px = backend.layout.pixel_width / backend.layout.width * backend_patch(backend)[1]
    return plan.segments(config.segment_tokens * token_px, config.segment_degrees)


def backend_patch(backend: VideoBackend) -> tuple[int, int]:
    """Spatial patch size (height, width) of the backend's transformer; (1, 1) without one."""
    transformer = getattr(backend, "transformer", None)
    return tuple(transformer.config.patch_size[1:]) if transformer is not None else (1, 1)


def token_grid(backend: VideoBackend) -> tuple[int, int]:
    """Tokens per latent frame, (rows, columns)."""
    patch_h, patch_w = backend_patch(backend)
    return backend.layout.height // patch_h, backend.layout.width // patch_w


def frame_gradient_map(goals, plan: BlockPlan, alpha: float, frames: int, latent_size) -> torch.Tensor:
    # Eq. 9-10: CSS Gaussian map per latent frame: 1 - prod_i (1 - G_i), G_i centred on Y_i's box
    device = plan.handle_masks[0].device
    maps = torch.ones(frames, *latent_size, device=device)
    supervised = torch.zeros(frames, dtype=torch.bool)
    for frame, frame_goals in zip(plan.frames, goals):
        keep = torch.ones(latent_size, device=device)
        for goal in frame_goals:
            if goal.target_mask.max() <= 0.5:
                continue
            keep = keep * (1.0 - geometry.css_gaussian_map(goal.target_mask, alpha).to(device))
        maps[frame] = 1.0 - keep
        supervised[frame] = True
    if not supervised.all():
        # Frames without a goal take the union of the others' maps (the edit of the last frame only).
        union = maps[supervised].amax(dim=0)
        maps[~supervised] = union
    return maps
