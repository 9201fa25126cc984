"""A controllable clock: real time by default, moved by tests without sleeping."""

from __future__ import annotations

import datetime as _dt
import threading
import time
from collections.abc import Callable

__all__ = ["Clock"]


def _seconds(value: float | _dt.timedelta) -> float:
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"clock.advance() takes seconds (int or float) or a datetime.timedelta, not {value!r}"
        )
    return float(value)


class Clock:
    """The fake server's notion of "now".

    It follows real time, shifted by an offset that :meth:`advance` and :meth:`set` change.
    Every TTL decision in the fake reads :meth:`now`; nothing else reads ``time.time()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        #: Where "now" stood each time :meth:`set` moved the clock back (see :meth:`peak_since`).
        self._peaks: list[float] = []
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        """Seconds since the epoch on the fake clock."""
        return time.time() + self._offset

    def now_datetime(self) -> _dt.datetime:
        """The fake clock's "now" as an aware UTC datetime."""
        return _dt.datetime.fromtimestamp(self.now(), tz=_dt.timezone.utc)

    @property
    def offset(self) -> float:
        """How far (seconds) the fake clock runs ahead of real time."""
        return self._offset

    def advance(
        self,
        seconds: float | _dt.timedelta = 0.0,
        *,
        minutes: float = 0.0,
        hours: float = 0.0,
        days: float = 0.0,
    ) -> float:
        """Jump forward (never sleeps) and return the new "now".

        ``clock.advance(hours=24)``, ``clock.advance(86400)`` and
        ``clock.advance(timedelta(days=1))`` are the same jump.
        """
        delta = _seconds(seconds) + 60.0 * minutes + 3600.0 * hours + 86400.0 * days
        if delta < 0:
            raise ValueError(
                f"clock.advance() moves forward only (got {delta} s); use clock.set() to go back"
            )
        with self._lock:
            self._offset += delta
        self._notify()
        return self.now()

    def set(self, when: float | _dt.datetime) -> float:
        """Put the fake clock at an absolute time (epoch seconds or an aware datetime)."""
        if isinstance(when, _dt.datetime):
            if when.tzinfo is None:
                raise ValueError(
                    "clock.set() needs an aware datetime, e.g. datetime(2026, 1, 1, tzinfo=timezone.utc)"
                )
            target = when.timestamp()
        else:
            target = _seconds(when)
        with self._lock:
            before = self.now()
            self._offset = target - time.time()
            if target < before:
                self._peaks.append(before)
        self._notify()
        return self.now()

    @property
    def backward_moves(self) -> int:
        """How many times :meth:`set` moved the clock back (a mark for :meth:`peak_since`)."""
        return len(self._peaks)

    def peak_since(self, mark: int) -> float:
        """The furthest "now" the clock has shown since ``backward_moves`` was ``mark``: TTLs
        that passed stay passed when the clock is set back."""
        peaks = self._peaks
        now = self.now()
        return now if mark >= len(peaks) else max(now, *peaks[mark:])

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = 0.0
            self._peaks.clear()

    def isoformat(self) -> str:
        """ "Now" as ISO-8601 UTC, e.g. ``2026-11-23T09:00:00.000000+00:00``."""
        return self.now_datetime().isoformat()

    def __repr__(self) -> str:
        return f"<Clock now={self.isoformat()} offset={self._offset:+.3f}s>"

    def on_advance(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call ``listener(now)`` after every :meth:`advance` or :meth:`set` (in the caller's
        thread, outside the clock's lock); return a function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        now = self.now()
        for listener in listeners:
            listener(now)
