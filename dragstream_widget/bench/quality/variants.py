"""The named variants the bench compares: DragStream, its ablations, the released-code options and
the two baselines. Each is a configuration built from the model's base configuration (for the toy
model, ``TOY_DRAG_CONFIG``) plus, for the baselines, a rewrite of the instruction's regions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ...engine.config import DragConfig, released_code_config
from ...ops import DragInstruction
from . import baselines


def _same(instruction: DragInstruction) -> DragInstruction:
    return instruction


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    make_config: Callable[[DragConfig], DragConfig]
    rewrite: Callable[[DragInstruction], DragInstruction] = _same

    def config(self, base: DragConfig) -> DragConfig:
        return self.make_config(base)


def released_like(base: DragConfig) -> DragConfig:
    """The released code's options, at the base configuration's step T' and with its step size and
    iteration count scaled as the base scales the paper's (lr 4e-2 -> 2e-2, 4 -> 5 iterations); the
    base's edit settings, where it has them, are kept and scaled the same way."""
    paper, released = DragConfig(), released_code_config()
    lr_scale = released.learning_rate / paper.learning_rate

    def scaled_iterations(iterations: int) -> int:
        return max(1, round(iterations * released.iterations / paper.iterations))

    return replace(
        released,
        optimize_step=base.optimize_step,
        learning_rate=base.learning_rate * lr_scale,
        iterations=scaled_iterations(base.iterations),
        feature_layers=base.feature_layers,
        edit_optimize_step=base.edit_optimize_step,
        edit_iterations=None if base.edit_iterations is None else scaled_iterations(base.edit_iterations),
        edit_learning_rate=None if base.edit_learning_rate is None else base.edit_learning_rate * lr_scale,
        edit_max_segments=base.edit_max_segments,
    )


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("full", "DragStream: ADSR + SFS + CSS", lambda b: b),
        Variant("no_adsr", "without ADSR", lambda b: b.without("adsr")),
        Variant("no_sfs", "without SFS", lambda b: b.without("sfs")),
        Variant("no_css", "without CSS", lambda b: b.without("css")),
        Variant(
            "css_on_gradient", "CSS on the gradient (the paper's)", lambda b: replace(b, css_on="gradient")
        ),
        Variant("no_sfso", "without SFSO (SFS + CSS)", lambda b: b.without("sfso")),
        Variant("no_adsr_sfso", "without ADSR and SFSO", lambda b: b.without("adsr", "sfso")),
        Variant("released", "released-code options", released_like),
        Variant(
            "dragvideo",
            "DragVideo-style baseline",
            baselines.dragvideo_config,
            baselines.dragvideo_instruction,
        ),
        Variant("sg_i2v", "SG-I2V-style baseline", baselines.sg_i2v_config, baselines.sg_i2v_instruction),
    )
}


def pick_variants(names: list[str] | None) -> list[Variant]:
    """The variants named (all when None), in the order given."""
    if not names:
        return list(VARIANTS.values())
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    return [VARIANTS[n] for n in names]
