"""A drag of one block, resolved once: its plan, segments, settings, references and the randomness of
its cutoff switch, handed down whole from the session to the optimisation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from ..models.base import VideoBackend, backend_patch
from .config import DragConfig
from .targets import BlockPlan


@dataclass(frozen=True)
class ResolvedDrag:
    """Everything the optimisation of one block needs besides the block itself.

    ``reference`` maps each cutoff of the switch set to the reference features ``[D, F_ref, h, w]``
    (a :class:`~.reference.ReferenceFeatures` computes them when first read).
    ``starts_at_reference``: the block's latent at step T' is the reference latent itself, in the same
    context (the edit of an undragged block), so the first iteration's pass is also the unfiltered
    reference, which ``reference`` then adopts instead of computing it again.
    ``reference_x0`` ``[C, F_ref, h, w]``: the reference's x0 prediction for the rotation term; None
    reads it from the first pass (``starts_at_reference``) or from ``reference.x0()``.
    """

    plan: BlockPlan
    config: DragConfig  # the settings this drag runs with (an edit's own, where the config has them)
    segments: int  # trajectory segments walked (see :func:`iteration_segments`)
    reference: Mapping[float, torch.Tensor]
    neighbours: torch.Tensor | None  # ADSR's latents of the previous L_n frames at step T', [1, C, L, h, w]
    generator: torch.Generator  # draws the SFS cutoffs
    starts_at_reference: bool = False
    reference_x0: torch.Tensor | None = None

    @property
    def rotates(self) -> bool:
        """Whether the optimisation adds the latent rotation term (see :func:`uses_rotation_term`)."""
        return uses_rotation_term(self.plan, self.config)


def uses_rotation_term(plan: BlockPlan, config: DragConfig) -> bool:
    """Whether the optimisation of ``plan`` adds the latent rotation term: a region turns in 2D and
    ``config.rotation_x0_weight`` is set."""
    return config.rotation_x0_weight > 0 and bool(plan.rotation_regions)


def trajectory_segments(backend: VideoBackend, plan: BlockPlan, config: DragConfig) -> int:
    """How many segments the optimisation walks ``plan``'s motion in (each ``config.segment_tokens``
    token widths or ``config.segment_degrees`` long at most), each with ``config.iterations`` iterations."""
    token_px = backend.layout.pixel_width / backend.layout.width * backend_patch(backend)[1]
    return plan.segments(config.segment_tokens * token_px, config.segment_degrees, config.walk_from)


def iteration_segments(segments: int, iterations: int, budget: int | None = None) -> list[int]:
    """The segment (1..``segments``) each iteration of a block optimises towards: ``iterations`` per
    segment, or, where that passes ``budget``, ``budget`` iterations spread evenly over the walk (the
    last ones on the full goal)."""
    total = segments * iterations
    if budget is None or total <= budget:
        return [segment for segment in range(1, segments + 1) for _ in range(iterations)]
    return [math.ceil((k + 1) * segments / budget) for k in range(budget)]
