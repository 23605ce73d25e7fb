"""Undo and redo by action, over a bounded number of full snapshots.

Each entry of the history is one action (a plain block, an edit, an animation with every block it
drives, a reset or a prompt change) with the session's whole state before it. Undo puts that state
back and keeps what it took away for redo; a new action forgets what redo could have brought back.
At most ``depth`` plain blocks and ``depth`` other actions are remembered (the oldest go first), so
a drag stays undoable however many plain blocks stream after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..models.kv_cache import CacheState

PLAIN = "block"  # a block generated without a drag: not a person's action


@dataclass(frozen=True)
class SessionState:
    """Everything an action can change: committed blocks, cache, decoder, running animation, prompt."""

    blocks: tuple
    cache: CacheState
    decoder: object
    animation: object
    prompt: str
    seed: int
    prompt_embeds: torch.Tensor


@dataclass(frozen=True)
class Entry:
    action: str
    before: SessionState


@dataclass(frozen=True)
class Undone:
    """What an undo took away: the state it left, and the entries it popped (oldest first)."""

    after: SessionState
    entries: tuple[Entry, ...]


class History:
    def __init__(self, depth: int):
        if depth < 1:
            raise ValueError(f"undo_depth must be >= 1, got {depth}")
        self.depth = depth
        self._done: list[Entry] = []
        self._undone: list[Undone] = []
        self._cleared: list[Undone] = []  # the redo stack a pending action dropped (see cancel)

    def __len__(self) -> int:
        """Actions remembered for undo."""
        return len(self._done)

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    def push(self, action: str, before: SessionState) -> None:
        """Remember the state before a new action; redo forgets what it held."""
        self._done.append(Entry(action, before))
        self._cleared, self._undone = self._undone, []
        self._trim()

    def cancel(self) -> SessionState:
        """Forget the last pushed action, which failed, and give back its state and the redo stack."""
        entry = self._done.pop()
        self._undone, self._cleared = self._cleared, []
        return entry.before

    def fold(self) -> None:
        """Forget the last pushed action as an entry of its own: it belongs to the one before (a block an
        animation drives). Redo stays forgotten, as after any action."""
        self._done.pop()
        self._cleared = []

    def undo(self, now: SessionState, by_person: bool) -> tuple[str, SessionState]:
        """The state to restore and the action undone. ``by_person``: undo plain blocks back to and
        including the last action that is not a plain block (a person's drag, reset or prompt change)."""
        if not self._done:
            raise IndexError("nothing to undo")
        if by_person and all(e.action == PLAIN for e in self._done):
            raise IndexError("nothing to undo: no drag, reset or prompt change is remembered")
        popped = [self._done.pop()]
        while by_person and popped[-1].action == PLAIN:
            popped.append(self._done.pop())
        self._undone.append(Undone(now, tuple(reversed(popped))))
        del self._undone[: -self.depth]
        return popped[-1].action, popped[-1].before

    def redo(self) -> tuple[str, SessionState]:
        """The state an undo left behind, and the first action it undid; its entries come back."""
        if not self._undone:
            raise IndexError("nothing to redo")
        undone = self._undone.pop()
        self._done.extend(undone.entries)
        return undone.entries[0].action, undone.after

    def remap(self, change: Callable[[SessionState], SessionState]) -> None:
        """Apply ``change`` to every remembered state (to drop what old blocks no longer need)."""
        self._done = [replace(e, before=change(e.before)) for e in self._done]
        self._undone = [
            Undone(change(u.after), tuple(replace(e, before=change(e.before)) for e in u.entries))
            for u in self._undone
        ]

    def copy(self) -> History:
        other = History(self.depth)
        other._done, other._undone = list(self._done), list(self._undone)
        return other

    def _trim(self) -> None:
        """At most ``depth`` plain blocks and ``depth`` other actions, the oldest dropped first."""
        for plain in (True, False):
            kind = [i for i, e in enumerate(self._done) if (e.action == PLAIN) == plain]
            drop = set(kind[: max(len(kind) - self.depth, 0)])
            if drop:
                self._done = [e for i, e in enumerate(self._done) if i not in drop]
