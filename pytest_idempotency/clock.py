"""A controllable clock: real time by default, moved by tests without sleeping."""

from __future__ import annotations

import datetime as _dt
import math
import threading
import time
from collections.abc import Callable

__all__ = ["EARLIEST", "LATEST", "Clock", "check_seconds", "check_timeout"]

#: The fake clock stays within 1970-01-01 and 9000-01-01 (chosen: ``datetime`` stops at 9999,
#: and the clock goes on running after it is set, so a millennium is left for it).
EARLIEST = 0.0
LATEST = _dt.datetime(9000, 1, 1, tzinfo=_dt.timezone.utc).timestamp()


def check_seconds(
    value: object, name: str, *, minimum: float = 0.0, maximum: float = math.inf
) -> float:
    """``value`` as float seconds: a ``TypeError`` naming ``name`` unless it is an int or a
    float (a bool is neither), a ``ValueError`` unless it is finite and within the bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds (int or float), not {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int past float's range
        number = math.inf
    if not (math.isfinite(number) and minimum <= number <= maximum):
        bounds = [f">= {minimum:g}" if minimum > -math.inf else ""]
        bounds.append(f"<= {maximum:g}" if maximum < math.inf else "")
        within = " and ".join(b for b in bounds if b)
        raise ValueError(
            f"{name} must be a finite number{' ' + within if within else ''} (got {value!r:.40})"
        )
    return number


def check_timeout(value: object, name: str = "timeout") -> float:
    """A timeout in real seconds: finite, >= 0 and at most ``threading.TIMEOUT_MAX`` (a
    ``TypeError`` or ``ValueError`` naming ``name``; NaN would wait for ever)."""
    return check_seconds(value, name, maximum=threading.TIMEOUT_MAX)


def _seconds(value: object, name: str) -> float:
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} takes seconds (int or float) or a datetime.timedelta, not {value!r}"
        )
    return check_seconds(value, name, minimum=-math.inf)


def _in_range(when: float, name: str) -> float:
    if not EARLIEST <= when <= LATEST:
        raise ValueError(
            f"{name} puts the fake clock at {when:g} s since the epoch; it stays within "
            f"{EARLIEST:g} and {LATEST:g} (years 1970-8999)"
        )
    return when


_UNITS = {"minutes": 60.0, "hours": 3600.0, "days": 86400.0}


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
        delta = _seconds(seconds, "clock.advance(seconds)")
        for unit, count in (("minutes", minutes), ("hours", hours), ("days", days)):
            delta += _UNITS[unit] * check_seconds(
                count, f"clock.advance({unit})", minimum=-math.inf
            )
        if delta < 0:
            raise ValueError(
                f"clock.advance() moves forward only (got {delta} s); use clock.set() to go back"
            )
        _in_range(self.now() + delta, f"clock.advance({delta:g} s)")
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
        elif isinstance(when, bool) or not isinstance(when, (int, float)):
            raise TypeError(
                f"clock.set(when) takes epoch seconds (int or float) or an aware datetime, "
                f"not {when!r}"
            )
        else:
            target = check_seconds(when, "clock.set(when)", minimum=-math.inf)
        _in_range(target, f"clock.set({target:g})")
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
