"""The delivery journal: every attempt, as the receiver saw it."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["MAX_ATTEMPTS", "MAX_KEPT_BYTES", "Attempt", "DeliveryJournal", "Kept"]

#: The journal keeps this many attempts (and the hub as many events and jobs), then counts
#: the ones it dropped.
MAX_ATTEMPTS = 10_000
#: ... and at most this many bytes of them (as the request journal keeps its bodies).
MAX_KEPT_BYTES = 64 * 1024 * 1024

T = TypeVar("T")


class Kept(Generic[T]):
    """The newest items: at most ``limit`` of them and ``max_bytes`` of their ``size``; older
    ones are dropped, oldest first, and counted in :attr:`dropped`. The caller holds a lock."""

    def __init__(
        self,
        limit: int,
        size: Callable[[T], int] = lambda item: 0,
        max_bytes: int = MAX_KEPT_BYTES,
    ) -> None:
        self._items: deque[tuple[T, int]] = deque()
        self._limit, self._size, self._max_bytes = limit, size, max_bytes
        self.bytes = 0
        self.dropped = 0

    def append(self, item: T) -> None:
        size = self._size(item)
        self._items.append((item, size))
        self.bytes += size
        items = self._items
        while len(items) > self._limit or (self.bytes > self._max_bytes and len(items) > 1):
            self.bytes -= items.popleft()[1]
            self.dropped += 1

    def __iter__(self) -> Iterator[T]:
        return (item for item, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt (or copy) of one event to one endpoint."""

    seq: int
    event_id: str
    event_type: str
    endpoint: str
    attempt: int
    at: float
    outcome: str
    status: int | None
    answer: str
    fault: str | None = None
    copy: int = 0
    #: The whole request reached the receiver, so it may have acted on it: every ``ok``,
    #: ``status`` and ``lost_ack``; a ``timeout`` or ``error`` after the request was sent in
    #: full (to a URL) or handed to the receiver's code (in process); never ``refused``.
    #: ``assert_processed_once`` and ``assert_delivered(times=)`` count these.
    reached: bool = False

    @property
    def acknowledged(self) -> bool:
        """The receiver answered 2xx (and the provider heard it)."""
        return self.outcome == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "endpoint": self.endpoint,
            "attempt": self.attempt,
            "at": self.at,
            "outcome": self.outcome,
            "status": self.status,
            "answer": self.answer,
            "fault": self.fault,
            "copy": self.copy,
            "reached": self.reached,
        }


def _attempt_size(attempt: Attempt) -> int:
    return 64 + len(attempt.answer) + len(attempt.endpoint) + len(attempt.event_id)


class DeliveryJournal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: Kept[Attempt] = Kept(MAX_ATTEMPTS, _attempt_size)
        self._seq = 0

    @property
    def dropped(self) -> int:
        """Attempts no longer kept (past :data:`MAX_ATTEMPTS` or :data:`MAX_KEPT_BYTES`)."""
        return self._attempts.dropped

    def record(self, **fields: Any) -> Attempt:
        with self._lock:
            self._seq += 1
            attempt = Attempt(seq=self._seq, **fields)
            self._attempts.append(attempt)
            return attempt

    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def render(self) -> str:
        """The attempts as a table."""
        rows = [("#", "event", "type", "attempt", "endpoint", "outcome", "reached", "fault")]
        for a in self.attempts:
            has_status = a.status is not None and a.outcome in ("ok", "status")
            shown = str(a.status) if has_status else a.outcome
            rows.append(
                (
                    str(a.seq),
                    a.event_id,
                    a.event_type,
                    f"{a.attempt}" + (f" copy {a.copy}" if a.copy else ""),
                    a.endpoint,
                    shown,
                    "yes" if a.reached else "no",
                    a.fault or "",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows
        ]
        if self.dropped:
            lines.append(f"({self.dropped} older attempts dropped)")
        return "\n".join(lines) if len(rows) > 1 else "(no deliveries)"
