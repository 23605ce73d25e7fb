"""Every knob of DragStream in one explicit config; defaults are the paper's.

Where the released code differs from the paper, the difference is a named option, and
:func:`released_code_config` sets all of them at once, so the ablation bench can compare both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from .frequency import PAPER_CUTOFFS
from .rectify import STAT_MODES

# The fields that give edits settings of their own (see DragConfig.for_edits).
EDIT_SETTINGS = ("edit_optimize_step", "edit_iterations", "edit_learning_rate", "edit_max_segments")


@dataclass(frozen=True)
class DragConfig:
    # Latent region optimisation (Eq. 2-3)
    optimize_step: int = 1  # sampler step index T' (t=750 of [1000, 750, 500, 250]: T'=3 of T=4)
    iterations: int = 4  # per trajectory segment (released: 5)
    learning_rate: float = 4e-2  # AdamW (released: 2e-2)
    feature_layers: tuple[int, ...] | None = None  # None: the backend's (12-15 of 30 on Wan)
    reconstruction_loss: Literal["l1", "mse"] = "l1"  # released: "mse"
    constraint: Literal["features", "x0"] = "features"  # released: "x0" (MSE on the x0 prediction)
    constraint_weight: float = 1.0
    edit_frames: Literal["all", "last"] = "all"  # edit: supervise every frame of the block, or the last only
    reset_optimizer_each_iteration: bool = False  # released: True
    gradient_clip: float | None = None  # released: 1.0
    segment_tokens: float = 1.0  # trajectory segment length in token widths (16 px on Wan at 832x480)
    segment_degrees: float = 8.0
    # Not in the paper: where an animation's block walks its segments from. "reference": from the frame
    # the drag was drawn on, every block again; "previous_block": from the previous block's last
    # trajectory point, where that block already moved the object, so a block walks only its own stretch.
    walk_from: Literal["reference", "previous_block"] = "reference"
    # Not in the paper: at most this many iterations per animated block (None: ``iterations`` per
    # segment). A longer walk then shares them: each iteration takes the next goal of an even walk over
    # the segments. Edits, with one target and nothing after them to follow, walk every segment.
    animation_max_iterations: int | None = None
    # ADSR (Eq. 4)
    adsr: bool = True
    adsr_frames: int = 6  # L_n, previous frames whose statistics the latent is restored to
    adsr_reference: Literal["neighbours", "own"] = "neighbours"  # released: "own" pre-optimisation latent
    adsr_stats: Literal["global", "frame_channel"] = "global"  # released: "frame_channel"
    # ADSR only where the optimised step is at least this noisy (0: always). Near the clean end the
    # latent is mostly content, and restoring the neighbours' statistics moves the content itself.
    adsr_min_sigma: float = 0.0
    # SFS (Eq. 5-8)
    sfs: bool = True
    cutoffs: tuple[float, ...] = PAPER_CUTOFFS
    sfs_scope: Literal["context", "window"] = "context"  # released: "window"
    # CSS (Eq. 9-10)
    css: bool = True
    css_alpha: float = 1.0  # sigma = bbox size / 2 * alpha (released: 3.75, i.e. 1.875 x bbox size)
    # Where the map acts: on the gradient, as the paper has it, or on AdamW's step. Adam divides each
    # element's gradient by its own running magnitude, which undoes a fixed scale per element, so on the
    # gradient the map only silences elements whose scaled gradient falls below Adam's epsilon.
    css_on: Literal["gradient", "step"] = "gradient"
    # Released-code extra: renormalise every x0 prediction to the previous two blocks' clean latents
    x0_rectify: bool = False
    # Baseline options (SG-I2V-style): weight L_rec by a Gaussian over each target box rather than the
    # plain mask, and after optimising keep only the low frequencies of the change to z (the high
    # frequencies are those of the latent before optimisation); None keeps the whole change.
    reconstruction_weight: Literal["mask", "gaussian"] = "mask"
    latent_lowpass: float | None = None
    # Not in the paper: for 2D rotations, add to L_rec this weight times the same loss in latent space,
    # the x0 prediction inside Y_i against the reference block's x0 prediction warped by Pi, and to
    # L_cst this weight times the x0 prediction's change outside the regions. Where an object spans
    # only a few tokens, warping token features cannot say "turn"; the latent grid can.
    rotation_x0_weight: float = 0.0
    # The weight of that latent L_cst alone (None: rotation_x0_weight). Lower lands turns closer to
    # their angle and keeps less of the rest of the frame.
    rotation_x0_constraint_weight: float | None = None
    # Edits of the frame on screen only (None: the shared value above). An edit has a single target and
    # nothing after it to follow, so it may optimise later, with fewer iterations and larger steps,
    # than an animation (see :meth:`for_edits`). ``edit_max_segments`` limits them to edits of at most
    # that many trajectory segments: a longer move must also clear the place the object leaves, which
    # needs the freedom of a noisier step (None: every edit).
    edit_optimize_step: int | None = None
    edit_iterations: int | None = None
    edit_learning_rate: float | None = None
    edit_max_segments: int | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.iterations >= 1, f"iterations must be >= 1, got {self.iterations}"),
            (self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}"),
            (
                self.reconstruction_loss in ("l1", "mse"),
                f"unknown reconstruction_loss {self.reconstruction_loss!r}",
            ),
            (self.constraint in ("features", "x0"), f"unknown constraint {self.constraint!r}"),
            (self.edit_frames in ("all", "last"), f"unknown edit_frames {self.edit_frames!r}"),
            (self.adsr_frames >= 1, f"adsr_frames must be >= 1, got {self.adsr_frames}"),
            (self.adsr_reference in ("neighbours", "own"), f"unknown adsr_reference {self.adsr_reference!r}"),
            (self.adsr_stats in STAT_MODES, f"unknown adsr_stats {self.adsr_stats!r}"),
            (
                0.0 <= self.adsr_min_sigma <= 1.0,
                f"adsr_min_sigma must lie in [0, 1], got {self.adsr_min_sigma}",
            ),
            (self.sfs_scope in ("context", "window"), f"unknown sfs_scope {self.sfs_scope!r}"),
            (len(self.cutoffs) > 0 and all(c > 0 for c in self.cutoffs), f"bad cutoffs {self.cutoffs}"),
            (self.css_alpha > 0, f"css_alpha must be positive, got {self.css_alpha}"),
            (self.css_on in ("gradient", "step"), f"unknown css_on {self.css_on!r}"),
            (self.segment_tokens > 0 and self.segment_degrees > 0, "segment lengths must be positive"),
            (self.walk_from in ("reference", "previous_block"), f"unknown walk_from {self.walk_from!r}"),
            (
                self.animation_max_iterations is None or self.animation_max_iterations >= 1,
                f"animation_max_iterations must be None or >= 1, got {self.animation_max_iterations}",
            ),
            (self.optimize_step >= 0, f"optimize_step must be >= 0, got {self.optimize_step}"),
            (
                self.edit_max_segments is None or self.edit_max_segments >= 1,
                f"edit_max_segments must be None or >= 1, got {self.edit_max_segments}",
            ),
            (
                self.reconstruction_weight in ("mask", "gaussian"),
                f"unknown reconstruction_weight {self.reconstruction_weight!r}",
            ),
            (
                self.latent_lowpass is None or 0 < self.latent_lowpass < 1,
                f"latent_lowpass must be None or a cutoff in (0, 1), got {self.latent_lowpass}",
            ),
            (
                self.rotation_x0_weight >= 0,
                f"rotation_x0_weight must be >= 0, got {self.rotation_x0_weight}",
            ),
            (
                self.rotation_x0_constraint_weight is None or self.rotation_x0_constraint_weight >= 0,
                f"rotation_x0_constraint_weight must be None or >= 0, got {self.rotation_x0_constraint_weight}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.has_edit_settings():
            self.for_edits()  # checks the edit settings the same way

    @property
    def rotation_x0_constraint(self) -> float:
        """The weight of the rotation term's L_cst on the x0 prediction."""
        if self.rotation_x0_constraint_weight is None:
            return self.rotation_x0_weight
        return self.rotation_x0_constraint_weight

    def has_edit_settings(self) -> bool:
        """Whether an edit runs with settings of its own (any ``edit_*`` value set)."""
        return any(
            v is not None for v in (self.edit_optimize_step, self.edit_iterations, self.edit_learning_rate)
        )

    def for_edits(self, segments: int = 1) -> DragConfig:
        """The settings an edit of ``segments`` trajectory segments runs with: the ``edit_*`` values, where
        set and the edit is no longer than ``edit_max_segments``, in place of the shared ones, and no
        ``animation_max_iterations``."""
        if not self.has_edit_settings():
            return (
                self
                if self.animation_max_iterations is None
                else replace(self, animation_max_iterations=None)
            )
        chosen = {}
        if self.edit_max_segments is None or segments <= self.edit_max_segments:
            chosen = {
                "optimize_step": self.edit_optimize_step,
                "iterations": self.edit_iterations,
                "learning_rate": self.edit_learning_rate,
            }
        return replace(
            self,
            **{k: v for k, v in chosen.items() if v is not None},
            **dict.fromkeys((*EDIT_SETTINGS, "animation_max_iterations")),
        )

    def without(self, *components: str) -> DragConfig:
        """A copy with components switched off: any of "adsr", "sfs", "css", "sfso" (= sfs + css)."""
        flags: dict[str, bool] = {}
        for name in components:
            if name == "sfso":
                flags.update(sfs=False, css=False)
            elif name in ("adsr", "sfs", "css"):
                flags[name] = False
            else:
                raise ValueError(f"unknown component {name!r}; choose from adsr, sfs, css, sfso")
        return replace(self, **flags)


def released_code_config() -> DragConfig:
    """The settings of the authors' released implementation where they differ from the paper."""
    return DragConfig(
        iterations=5,
        learning_rate=2e-2,
        reconstruction_loss="mse",
        constraint="x0",
        edit_frames="last",
        reset_optimizer_each_iteration=True,
        gradient_clip=1.0,
        adsr_reference="own",
        adsr_stats="frame_channel",
        sfs_scope="window",
        css_alpha=3.75,
        x0_rectify=True,
    )
