"""Events that happen later on the fake clock (Moda's ``task.completed`` 30 s after creation).

At most ``limit`` wait at once (nobody moving the clock of a long-running server must not grow
it): past it the oldest is forgotten and counted in :attr:`LaterEvents.dropped`. Fired ones
are forgotten at once.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LaterEvents", "Scheduled"]


@dataclass
class Scheduled:
    """An event that happens later on the fake clock (a task completing)."""

    fire_at: float
    event_type: str
    obj: dict[str, Any]
    changes: Mapping[str, Any] | None
    context: dict[str, Any]
    seq: int = 0
    fired: bool = field(default=False, repr=False)


class LaterEvents:
    """Waiting events, oldest first, with a heap by time. The caller holds the hub's lock."""

    def __init__(self, limit: int) -> None:
        self._waiting: dict[int, Scheduled] = {}
        self._heap: list[tuple[float, int, Scheduled]] = []
        self._seq = itertools.count(1)
        self._limit = limit
        #: Events forgotten unfired because more than ``limit`` waited at once.
        self.dropped = 0

    def add(self, scheduled: Scheduled) -> None:
        scheduled.seq = next(self._seq)
        self._waiting[scheduled.seq] = scheduled
        heapq.heappush(self._heap, (scheduled.fire_at, scheduled.seq, scheduled))
        while len(self._waiting) > self._limit:
            oldest = self._waiting.pop(next(iter(self._waiting)))
            oldest.fired = True
            self.dropped += 1

    def first_due(self, now: float) -> Scheduled | None:
        """The waiting event that happens earliest, if it happens by ``now``."""
        heap = self._heap
        while heap and heap[0][2].fired:
            heapq.heappop(heap)
        return heap[0][2] if heap and heap[0][0] <= now else None

    def take(self, scheduled: Scheduled) -> None:
        """``scheduled`` happens now: forget it."""
        scheduled.fired = True
        self._waiting.pop(scheduled.seq, None)

    def waiting(self) -> list[Scheduled]:
        return list(self._waiting.values())

    def __len__(self) -> int:
        return len(self._waiting)
