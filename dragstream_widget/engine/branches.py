"""What-if branches: the blocks a drag would produce under other settings, from the same state.

The paper's Figure 2a compares latent statistics per frame for the stream without a drag, with a
drag but no ADSR, and with the full method. :func:`latent_branches` runs such branches from the
session's current state and puts the session back exactly after each, so a live view can show the
comparison next to the stream the person is actually dragging.
"""

from __future__ import annotations

import math

import numpy as np

from ..ops import DragInstruction, Mode
from .config import DragConfig
from .events import EventBus
from .session import StreamSession, latent_statistics

Branch = tuple[DragConfig, DragInstruction | None]  # settings, and the drag (None: no drag)


def animation_blocks(session: StreamSession, instruction: DragInstruction) -> int:
    """Blocks an animation lasts: one trajectory point per latent frame."""
    return math.ceil(instruction.num_targets / session.backend.layout.frames_per_block)


def drag_span(session: StreamSession, instruction: DragInstruction) -> int:
    """Blocks a drag changes: an edit, its block and the next; an animation, its blocks and the next."""
    if instruction.mode == Mode.EDIT:
        return 2
    return animation_blocks(session, instruction) + 1


def latent_branches(
    session: StreamSession, branches: dict[str, Branch], blocks: int
) -> dict[str, dict[str, np.ndarray]]:
    """Per-latent-frame mean, std, min and max of each branch: the last block on screen (an edit
    re-renders it) and ``blocks`` new ones. The session is left exactly as it was, and its event
    listeners see none of it."""
    if blocks < 1:
        raise ValueError(f"blocks must be >= 1, got {blocks}")
    if not session.blocks:
        raise ValueError("branches start from a block on screen: generate one first")
    restore, events = session.fork(), session.events
    session.events = EventBus()
    out = {}
    try:
        for name, (config, instruction) in branches.items():
            session.config = config
            if instruction is not None:
                session.apply(instruction)
            first = session.num_blocks - 1
            for _ in range(blocks):
                session.step()
            stats = [latent_statistics(b.index, b.z0) for b in session.blocks[first:]]
            out[name] = {
                key: np.concatenate([s[key] for s in stats]) for key in ("mean", "std", "min", "max")
            }
            restore()
    finally:
        restore()
        session.events = events
    return out


def adsr_comparison(session: StreamSession, instruction: DragInstruction) -> dict[str, dict[str, np.ndarray]]:
    """Figure 2a's two reference branches for a drag about to be applied: no drag, and the drag without ADSR."""
    config = session.config
    return latent_branches(
        session,
        {"no drag": (config, None), "drag without ADSR": (config.without("adsr"), instruction)},
        drag_span(session, instruction),
    )
