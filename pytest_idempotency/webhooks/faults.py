"""Delivery faults: what at-least-once really looks like at a receiver.

Each fault matches deliveries by event type (a glob such as ``"task.*"``) and/or event id and
fires on the first ``times`` jobs it matches (a job is one event bound for one endpoint).
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["DELIVERY_FAULT_KINDS", "DeliveryFault", "DeliveryFaultPlan"]

Kind = Literal["duplicate", "concurrent", "out_of_order", "delay", "lost_ack", "burst"]
#: Every delivery fault kind, with what it does.
DELIVERY_FAULT_KINDS: dict[str, str] = {
    "duplicate": "the delivery is followed at once by `copies` identical deliveries",
    "concurrent": "`copies` + 1 identical deliveries enter the receiver at the same time",
    "out_of_order": "the delivery is held until a later event for the endpoint went out",
    "delay": "the first attempt is `seconds` later on the fake clock",
    "lost_ack": "the receiver's 2xx is lost: the event is retried on the schedule",
    "burst": "`copies` + 1 identical deliveries in a row",
}
CHAOS_DELIVERY_KINDS = ("duplicate", "concurrent", "out_of_order", "lost_ack", "delay")


class DeliveryFaultError(ValueError):
    """A delivery fault that cannot be built; the message names the fix."""


@dataclass
class DeliveryFault:
    kind: str
    event_type: str | None = None
    event_id: str | None = None
    times: int = 1
    copies: int = 1
    seconds: float = 0.0
    fired: int = 0
    chaos: bool = False

    def matches(self, event_type: str, event_id: str) -> bool:
        if self.fired >= self.times:
            return False
        if self.event_id is not None and self.event_id != event_id:
            return False
        return self.event_type is None or fnmatch.fnmatchcase(event_type, self.event_type)

    def describe(self) -> str:
        what = [self.kind]
        if self.event_type is not None:
            what.append(f"event_type={self.event_type!r}")
        if self.event_id is not None:
            what.append(f"event_id={self.event_id!r}")
        if self.kind in ("duplicate", "concurrent", "burst"):
            what.append(f"copies={self.copies}")
        if self.kind == "delay":
            what.append(f"seconds={self.seconds:g}")
        what.append(f"times={self.times}")
        return " ".join(what)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "times": self.times,
            "copies": self.copies,
            "seconds": self.seconds,
            "fired": self.fired,
            "description": self.describe(),
        }


#: Most extra copies one delivery fault sends (chosen: a real provider repeats a delivery a
#: handful of times; each concurrent copy is a thread, so the bound keeps a fault from
#: exhausting the server's threads and memory).
MAX_COPIES = 100
#: Most delivery faults scripted at once: past it the spent ones (fired ``times`` times) are
#: forgotten and counted, and if none is spent the next is refused (chosen: a test scripts a
#: handful; the bound keeps a long-running server's plan, and each delivery's scan, small).
MAX_FAULTS = 1_000
#: Longest ``delay`` a fault names, seconds (ten years, as a retry schedule's waits).
MAX_FAULT_SECONDS = 10 * 365 * 86400


def _count(value: object, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DeliveryFaultError(f"{name} must be a whole number >= {minimum} (got {value!r})")
    if maximum is not None and value > maximum:
        raise DeliveryFaultError(f"{name} must be at most {maximum} (got {value!r})")
    return value


@dataclass
class DeliveryFaultPlan:
    """``idempotent_api.webhooks.faults``: scripted delivery faults and seeded chaos."""

    seed: int = 0
    scripted: list[DeliveryFault] = field(default_factory=list)
    _rate: float = 0.0
    _kinds: tuple[str, ...] = CHAOS_DELIVERY_KINDS
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Spent faults forgotten to make room past :data:`MAX_FAULTS`.
    dropped: int = 0
    #: Why this plan takes nothing any more (its hub was replaced; set by :meth:`close`).
    _closed: str | None = None

    def close(self, reason: str) -> None:
        """Its hub was replaced: from now on every call raises ``RuntimeError`` with
        ``reason`` (what happened and what to use instead)."""
        self._closed = reason

    def _live(self, what: str) -> None:
        if self._closed is not None:
            raise RuntimeError(f"idempotent_api.webhooks.faults.{what}: {self._closed}")

    def add(
        self,
        kind: str,
        *,
        event_type: str | None = None,
        event_id: str | None = None,
        times: int = 1,
        copies: int = 1,
        seconds: float = 0.0,
    ) -> DeliveryFault:
        """Script a fault by kind name (see :data:`DELIVERY_FAULT_KINDS`)."""
        self._live("add()")
        if kind not in DELIVERY_FAULT_KINDS:
            raise DeliveryFaultError(
                f"unknown delivery fault {kind!r}; the kinds are {', '.join(DELIVERY_FAULT_KINDS)}"
            )
        for name, value in (("event_type", event_type), ("event_id", event_id)):
            if value is not None and not isinstance(value, str):
                raise DeliveryFaultError(f"{name} must be a string (got {value!r})")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not 0 <= seconds <= MAX_FAULT_SECONDS
        ):
            raise DeliveryFaultError(
                f"seconds must be a number from 0 to {MAX_FAULT_SECONDS} (got {seconds!r})"
            )
        fault = DeliveryFault(
            kind,
            event_type,
            event_id,
            _count(times, "times", 1),
            _count(copies, "copies", 1, MAX_COPIES),
            float(seconds),
        )
        with self._lock:
            self._make_room()
            self.scripted.append(fault)
        return fault

    def _make_room(self) -> None:
        if len(self.scripted) < MAX_FAULTS:
            return
        live = [f for f in self.scripted if f.fired < f.times]
        if len(live) >= MAX_FAULTS:
            raise DeliveryFaultError(
                f"at most {MAX_FAULTS} delivery faults wait to fire at once; clear them first "
                "(webhooks.faults.clear(), DELETE /__admin/webhooks/faults)"
            )
        self.dropped += len(self.scripted) - len(live)
        self.scripted[:] = live

    def duplicate(self, copies: int = 1, **match: object) -> DeliveryFault:
        """Deliver again, in sequence, right after the delivery."""
        self._live("duplicate()")
        return self.add("duplicate", copies=copies, **match)  # type: ignore[arg-type]

    def concurrent(self, copies: int = 1, **match: object) -> DeliveryFault:
        """Two (or ``copies`` + 1) identical deliveries racing at the receiver."""
        self._live("concurrent()")
        return self.add("concurrent", copies=copies, **match)  # type: ignore[arg-type]

    def out_of_order(self, **match: object) -> DeliveryFault:
        """Hold the delivery until a later event for the same endpoint went out."""
        self._live("out_of_order()")
        return self.add("out_of_order", **match)  # type: ignore[arg-type]

    def delay(self, seconds: float, **match: object) -> DeliveryFault:
        """Make the first attempt ``seconds`` later on the fake clock."""
        self._live("delay()")
        return self.add("delay", seconds=seconds, **match)  # type: ignore[arg-type]

    def lost_ack(self, **match: object) -> DeliveryFault:
        """The receiver answers 2xx, the provider never hears it and redelivers on schedule."""
        self._live("lost_ack()")
        return self.add("lost_ack", **match)  # type: ignore[arg-type]

    def burst(self, n: int, **match: object) -> DeliveryFault:
        """``n`` identical deliveries in a row (``n`` >= 2)."""
        self._live("burst()")
        return self.add("burst", copies=_count(n, "n", 2, MAX_COPIES + 1) - 1, **match)  # type: ignore[arg-type]

    def chaos(
        self, rate: float = 0.3, *, seed: int | None = None, kinds: Iterable[str] | None = None
    ) -> int:
        """Seeded random faults on a ``rate`` of deliveries; returns the seed used."""
        self._live("chaos()")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise DeliveryFaultError(f"rate must be a number from 0 to 1 (got {rate!r})")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise DeliveryFaultError(f"seed must be a whole number (got {seed!r})")
        if kinds is not None and (
            isinstance(kinds, str) or not isinstance(kinds, (list, tuple, set, frozenset))
        ):
            raise DeliveryFaultError(f"kinds must be a list of kind names (got {kinds!r})")
        chosen = tuple(kinds) if kinds is not None else CHAOS_DELIVERY_KINDS
        bad = [k for k in chosen if not isinstance(k, str) or k not in CHAOS_DELIVERY_KINDS]
        if bad or not chosen:
            raise DeliveryFaultError(
                f"chaos kinds must be among {', '.join(CHAOS_DELIVERY_KINDS)} (got {list(chosen)})"
            )
        used = self.seed if seed is None else seed
        with self._lock:
            self._rate, self._kinds, self._rng = float(rate), chosen, random.Random(used)
        return used

    def match(self, event_type: str, event_id: str) -> DeliveryFault | None:
        """The fault for a new job (and count it as fired), scripted first, then chaos."""
        with self._lock:
            for fault in self.scripted:
                if fault.matches(event_type, event_id):
                    fault.fired += 1
                    return fault
            if self._rate and self._rng.random() < self._rate:
                kind = self._rng.choice(self._kinds)
                seconds = 60.0 if kind == "delay" else 0.0
                return DeliveryFault(kind, times=1, seconds=seconds, fired=1, chaos=True)
        return None

    def unfired(self) -> list[DeliveryFault]:
        self._live("unfired()")
        with self._lock:
            return [f for f in self.scripted if f.fired == 0]

    def clear(self) -> None:
        self._live("clear()")
        with self._lock:
            self.scripted.clear()
            self._rate = 0.0
