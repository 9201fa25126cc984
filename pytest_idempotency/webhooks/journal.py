"""The delivery journal: every attempt, as the receiver saw it."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["Attempt", "DeliveryJournal"]

#: The journal keeps this many attempts, then counts the ones it dropped.
MAX_ATTEMPTS = 10_000


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
        }


class DeliveryJournal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempts: deque[Attempt] = deque(maxlen=MAX_ATTEMPTS)
        self.dropped = 0
        self._seq = 0

    def record(self, **fields: Any) -> Attempt:
        with self._lock:
            self._seq += 1
            attempt = Attempt(seq=self._seq, **fields)
            if len(self._attempts) == MAX_ATTEMPTS:
                self.dropped += 1  # the append below pushes out the oldest
            self._attempts.append(attempt)
            return attempt

    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    def render(self) -> str:
        """The attempts as a table."""
        rows = [("#", "event", "type", "attempt", "endpoint", "outcome", "fault")]
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
