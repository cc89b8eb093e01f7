"""Undo and redo of edits: a bounded history of snapshots of whatever a front end calls its
editable state (the studio: the project's stems and mix, the curve, the onsets lane, the region).

The history never looks inside a snapshot: the owner takes one before an edit (`record`), and
hands the state as it is now to `undo` / `redo`, which give back the state to return to. A new
edit clears what could be redone; the oldest steps are dropped past `depth`.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from foley_core.errors import NothingToUndo

T = TypeVar("T")

DEFAULT_DEPTH = 30


class History(Generic[T]):
    """Undo and redo stacks of snapshots, at most `depth` undo steps."""

    def __init__(self, depth: int = DEFAULT_DEPTH):
        if int(depth) < 1:
            raise ValueError(f"a history needs a depth of at least 1; got {depth}")
        self.depth = int(depth)
        self._undo: deque[T] = deque(maxlen=self.depth)
        self._redo: list[T] = []

    def record(self, before: T) -> None:
        """`before` is the state an edit is about to change: undo returns to it. Whatever
        could be redone is gone (the edit starts a new branch)."""
        self._undo.append(before)
        self._redo.clear()

    def undo(self, current: T) -> T:
        """The state before the last edit; `current` becomes what redo returns to."""
        if not self._undo:
            raise NothingToUndo("Nothing to undo.")
        self._redo.append(current)
        return self._undo.pop()

    def redo(self, current: T) -> T:
        """The state the last undo left; `current` becomes what undo returns to."""
        if not self._redo:
            raise NothingToUndo("Nothing to redo.")
        self._undo.append(current)
        return self._redo.pop()

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __len__(self) -> int:
        """The number of steps undo can take."""
        return len(self._undo)
