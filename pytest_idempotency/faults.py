"""Scripted and seeded faults, matched per request and applied at named points of its life.

Every kind acts at one named point (:data:`FAULT_POINTS`), in the order of :data:`POINTS`:
``arrival`` (a real-time delay), ``clock`` (the fake clock jumps), ``before_layer`` (reset, error
before commit, restart: nothing is committed), ``claim`` (the key is claimed, the request is
parked), ``handler`` (targets of a batch fail inside the handler), ``commit`` (a 5xx after the
side effect) and ``wire`` (the committed response is lost, late or garbled). One request may
meet several faults, at most one per point.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .clock import check_timeout
from .fault_options import (
    CHAOS_KINDS,
    FAULT_KINDS,
    FAULT_POINTS,
    KIND_OPTIONS,
    MAX_FAULT_WAIT,
    MAX_FAULTS,
    POINTS,
    BatchFaults,
    FaultError,
    FaultTypeError,
    chaos_settings,
    check_count,
    fault_fields,
)
from .routes import parse_route

if TYPE_CHECKING:
    from .journal import Exchange

__all__ = [
    "CHAOS_KINDS",
    "FAULT_KINDS",
    "FAULT_POINTS",
    "POINTS",
    "BatchFaults",
    "Fault",
    "FaultError",
    "FaultPlan",
    "FaultTypeError",
    "MAX_FAULT_WAIT",
    "MAX_FAULTS",
    "WireAction",
]


@dataclass(eq=False)
class WireAction:
    """What the socket layer does with a response the app produced."""

    kind: Literal["response", "drop", "reset", "late", "garbage"] = "response"
    delay: float | None = None
    #: A late response is discarded when the client closes the connection first (the wait is
    #: bounded by ``delay``); otherwise it is sent once ``delay`` or ``release`` says so.
    until_peer_closes: bool = False
    release: threading.Event | None = None
    style: str = "truncated"
    lost: bool = False
    close: bool = False
    #: The journal row of a late response, corrected when a restart loses it.
    exchange: Exchange | None = field(default=None, repr=False)
    _sent: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lose(self) -> None:
        """A restart loses this late response, unless the socket layer already sent it."""
        with self._lock:
            if self._sent:
                return
            self.lost = True
            if self.exchange is not None:
                self.exchange.wire = "reset"
                note = "response lost in a server restart"
                self.exchange.note = f"{self.exchange.note}; {note}" if self.exchange.note else note

    def settle(self) -> bool:
        """Called by the socket layer before it sends a late response: ``True`` when a restart
        lost it (send an RST instead); after this, a restart no longer loses it."""
        with self._lock:
            self._sent = True
            return self.lost


@dataclass(eq=False)
class Fault:
    """One scripted fault. ``times=None`` fires for ever."""

    kind: str
    method: str | None = None
    path: str | None = None
    key: str | None = None
    attempt: int | None = None
    times: int | None = 1
    seq: int | None = None
    status: int = 500
    retry_after: str | None = None
    seconds: float | None = None
    style: str = "truncated"
    failures: dict[str, str] = field(default_factory=dict)
    keep_records: bool = True
    fired: int = 0
    released: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Set when the fault's test has ended (its plan was ended): waits on it stop.
    ended: threading.Event = field(default_factory=threading.Event, repr=False)
    _held: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0), repr=False)
    held_count: int = 0

    @property
    def joins(self) -> bool:
        """Whether this fault joins others on one request whatever its place in the script:
        it is scoped by a matcher, or it fires for ever."""
        return self.times is None or any(
            m is not None for m in (self.method, self.path, self.key, self.attempt, self.seq)
        )

    @property
    def point(self) -> str:
        """The named point of the request's life where this fault acts."""
        return FAULT_POINTS[self.kind]

    def matches(
        self, method: str, path: str, key: str | None, attempt: int | None, seq: int | None = None
    ) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.seq is not None and self.seq != seq:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.path is not None and not parse_route(f"* {self.path}").matches_path(path):
            return False
        if self.key is not None and self.key != key:
            return False
        return self.attempt is None or self.attempt == attempt

    # -- hold and slow handles ----------------------------------------------------------------

    def release(self) -> None:
        """Let held (or slow-until-released) requests go on."""
        self.released.set()

    def wait_until_held(self, timeout: float = 5.0, count: int = 1) -> None:
        """Block until ``count`` requests are parked by this fault (no sleeping in tests). A
        wait still going when its test ends stops then, with ``TimeoutError``."""
        timeout = check_timeout(timeout)
        for _ in range(check_count(count)):
            deadline = time.monotonic() + timeout
            while not self._held.acquire(timeout=max(0.0, min(0.05, deadline - time.monotonic()))):
                if self.ended.is_set():
                    raise self._ended_error()
                if time.monotonic() >= deadline:
                    raise self._not_held(timeout)

    async def wait_until_held_async(self, timeout: float = 5.0, count: int = 1) -> None:
        """``await fault.wait_until_held_async()``: :meth:`wait_until_held` without blocking
        the event loop. It waits on the loop itself (no worker thread), so cancelling it
        (``asyncio.wait_for``, a task's ``cancel()``) stops it at once."""
        timeout = check_timeout(timeout)
        loop = asyncio.get_running_loop()
        for _ in range(check_count(count)):
            deadline = loop.time() + timeout
            while not self._held.acquire(blocking=False):
                if self.ended.is_set():
                    raise self._ended_error()
                if loop.time() >= deadline:
                    raise self._not_held(timeout)
                await asyncio.sleep(0.005)

    def _not_held(self, timeout: float) -> TimeoutError:
        passed = self.fired - self.held_count
        why = (
            f"it matched {passed} request(s) that ran no handler (a replay, a conflict "
            "or an in-flight answer), and a hold only parks a request that runs the "
            "handler; match the first attempt (key=..., attempt=1)"
            if passed > 0
            else "did the client send a matching request?"
        )
        return TimeoutError(f"no request was held by {self.describe()} within {timeout} s; {why}")

    def _ended_error(self) -> TimeoutError:
        return TimeoutError(f"{self.describe()}: its test ended while a wait on it was going on")

    def _note_held(self) -> None:
        self.held_count += 1
        self._held.release()

    def describe(self) -> str:
        where = " ".join(
            part
            for part in (
                self.method or "",
                self.path or "",
                f"key={self.key}" if self.key else "",
                f"attempt={self.attempt}" if self.attempt else "",
                f"seq={self.seq}" if self.seq else "",
            )
            if part
        )
        count = "for ever" if self.times is None else f"times={self.times}"
        return f"{self.kind}({where or 'any request'}, {count}, fired {self.fired})"

    def as_dict(self) -> dict[str, Any]:
        """The fault as JSON: its matchers and count, plus only the options its kind uses
        (a kind this method does not know shows them all)."""
        options: dict[str, Any] = {
            "status": self.status,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "style": self.style,
            "failures": dict(self.failures),
            "keep_records": self.keep_records,
        }
        used = KIND_OPTIONS.get(self.kind, tuple(options))
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "key": self.key,
            "attempt": self.attempt,
            "seq": self.seq,
            "times": self.times,
            "fired": self.fired,
            **{name: options[name] for name in used},
        }


def _after(point: str, taken: Mapping[str, Fault]) -> bool:
    return all(POINTS.index(point) > POINTS.index(p) for p in taken)


@dataclass
class _Chaos:
    seed: int
    rate: float
    kinds: tuple[str, ...]
    statuses: tuple[int, ...]


class FaultPlan:
    """The faults of one test: queued scripted faults that fire in order, plus optional chaos.

    Every method takes the same matchers: ``method``, ``path`` (a route pattern such as
    ``"/v1/tasks"`` or ``"/v1/posts/*"``), ``key``, ``attempt`` (the n-th time the server sees
    that key, from 1), ``seq`` (the n-th request the server receives since the last reset, from
    1: the journal's exchange number) and ``times`` (1 by default, ``None`` for ever).
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._chaos: _Chaos | None = None
        self.default_seed = seed
        self._pending: list[WireAction] = []

    # -- scripting ---------------------------------------------------------------------------

    def add(self, kind: str, **spec: Any) -> Fault:
        """Queue a fault of ``kind`` (one of :data:`FAULT_KINDS`). Every option is checked
        here: a wrong type is a :class:`FaultTypeError`, a wrong value a :class:`FaultError`,
        each naming the option."""
        fault = Fault(**fault_fields(kind, spec))
        with self._lock:
            if len(self._faults) >= MAX_FAULTS:
                raise FaultError(
                    f"{MAX_FAULTS} faults are scripted already, the most one plan holds; clear "
                    "them first (faults.clear(), or DELETE /__admin/faults)"
                )
            self._faults.append(fault)
        return fault

    def drop_response(self, **match: Any) -> Fault:
        """The server commits, then closes the connection without a response."""
        return self.add("drop", **match)

    def reset_connection(self, **match: Any) -> Fault:
        """TCP RST before the idempotency layer: nothing is committed."""
        return self.add("reset", **match)

    def slow_response(self, seconds: float | None = None, **match: Any) -> Fault:
        """After commit, hold the response ``seconds`` of real time (or until ``release()``)."""
        return self.add("slow", seconds=seconds, **match)

    def error_before_commit(
        self, status: int = 503, *, retry_after: str | int | None = None, **match: Any
    ) -> Fault:
        """Answer ``status`` (with optional ``Retry-After``) instead of running the handler."""
        return self.add("error_before", status=status, retry_after=retry_after, **match)

    def error_after_commit(self, status: int = 500, **match: Any) -> Fault:
        """Run the handler (side effect happens), then answer a 5xx; the variant's cache rules
        decide what a retry gets."""
        return self.add("error_after", status=status, **match)

    def hold(self, **match: Any) -> Fault:
        """Claim the key, then park the request until ``fault.release()``."""
        return self.add("hold", **match)

    def partial_batch(self, failures: Mapping[str, str], **match: Any) -> Fault:
        """Fail some targets of a batch: ``{"acct_b": "transient"}``."""
        return self.add("partial_batch", failures=failures, **match)

    def garbage(self, style: str = "truncated", **match: Any) -> Fault:
        """After commit, send a malformed response (``truncated`` body or bad ``status_line``)."""
        return self.add("garbage", style=style, **match)

    def restart(self, keep_records: bool = True, **match: Any) -> Fault:
        """When a matching request arrives the server restarts: in-flight requests are lost,
        completed records survive (``keep_records=True``) or vanish; the request is reset."""
        return self.add("restart", keep_records=keep_records, **match)

    def in_flight(self, seconds: float = 10.0, **match: Any) -> Fault:
        """Claim the key, then park the request before the handler until another request with
        the same key has been answered (or the client closed this connection, or ``seconds``
        of real time passed); then it goes on, so a retry meets the original still running."""
        return self.add("in_flight", seconds=seconds, **match)

    def late_response(self, seconds: float = 10.0, **match: Any) -> Fault:
        """After commit, hold the response until the client closes the connection (then it is
        discarded: the reply came after the client gave up) or ``seconds`` pass (then sent)."""
        return self.add("late", seconds=seconds, **match)

    def clock_jump(self, seconds: float, **match: Any) -> Fault:
        """Before the idempotency layer, advance the fake clock by ``seconds`` (a key's TTL can
        run out just before an attempt)."""
        return self.add("clock_jump", seconds=seconds, **match)

    def latency(self, seconds: float, **match: Any) -> Fault:
        """Delay every matching request by ``seconds`` of real time on arrival (``times=None``
        by default: every request); the request then goes on normally."""
        return self.add("latency", seconds=seconds, **match)

    def chaos(
        self,
        rate: float = 0.2,
        kinds: Iterable[str] = CHAOS_KINDS,
        *,
        seed: int | None = None,
        statuses: Iterable[int] = (500, 502, 503),
    ) -> int:
        """Inject faults of ``kinds`` into a ``rate`` share of requests no scripted fault
        matched. Deterministic per (seed, request number); returns the seed in use."""
        rate, chosen, seed, codes = chaos_settings(rate, kinds, seed, statuses)
        used = self.default_seed if seed is None else seed
        self._chaos = _Chaos(seed=used, rate=rate, kinds=chosen, statuses=codes)
        return used

    # -- matching (the app) ------------------------------------------------------------------

    def match(
        self, method: str, path: str, key: str | None, attempt: int | None, seq: int
    ) -> list[Fault]:
        """Every fault for this request, at most one per point, each consuming one firing.

        In script order, a matching fault is taken when its point is free and it is the first,
        or it is scoped (any matcher) or runs for ever (``times=None``), or it acts at a later
        point than every fault taken so far. So one-shot faults without matchers still queue
        (``drop_response()`` then ``reset_connection()`` hit two requests), while
        ``partial_batch(...)`` then ``drop_response()``, or two faults pinned with ``seq=N``,
        act on one request. Chaos picks one only when no scripted fault matched."""
        if not self._faults and self._chaos is None:
            return []  # nothing scripted (read without the lock: a list and a name)
        found: dict[str, Fault] = {}
        with self._lock:
            for fault in self._faults:
                if fault.point in found or not fault.matches(method, path, key, attempt, seq):
                    continue
                if found and not (fault.joins or _after(fault.point, found)):
                    continue
                fault.fired += 1
                found[fault.point] = fault
            chaos = self._chaos
        if found or chaos is None:
            return sorted(found.values(), key=lambda f: POINTS.index(f.point))
        rng = random.Random(f"{chaos.seed}:{seq}")
        if rng.random() >= chaos.rate:
            return []
        kind = rng.choice(chaos.kinds)
        status = rng.choice(chaos.statuses)
        if kind == "error_after" and status < 500:
            status = 500
        return [Fault(kind=kind, times=None, status=status, fired=1)]

    def withdraw(self, fault: Fault) -> bool:
        """Take ``fault`` out of the script if it never fired (a helper's own fault that was
        not needed); whether it was taken out."""
        with self._lock:
            kept = [f for f in self._faults if f is not fault]
            if fault.fired or len(kept) == len(self._faults):
                return False
            self._faults[:] = kept
        fault.release()
        return True

    def give_back(self, faults: Iterable[Fault]) -> None:
        """Un-consume faults taken for a request that ended before their point."""
        with self._lock:
            for fault in faults:
                fault.fired = max(0, fault.fired - 1)

    def track(self, action: WireAction, exchange: Exchange | None = None) -> None:
        """Remember a late response (and its journal row) until it is released or lost."""
        if exchange is not None:
            action.exchange = exchange
        with self._lock:
            self._pending.append(action)

    # -- reading and teardown ----------------------------------------------------------------

    @property
    def scripted(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def unfired(self) -> list[Fault]:
        """Scripted faults that never fired."""
        with self._lock:
            return [f for f in self._faults if f.fired == 0]

    def release_all(self, lost: bool = False) -> None:
        """Release every held and slow request (teardown does this, so no test hangs)."""
        with self._lock:
            faults = list(self._faults)
            pending = list(self._pending)
            self._pending.clear()
        for action in pending:
            if lost:
                action.lose()
            if action.release is not None:
                action.release.set()
        for fault in faults:
            fault.release()

    def end(self, lost: bool = False) -> None:
        """The plan's test (or server) has ended: release everything (``lost`` as in
        :meth:`release_all`), and stop every wait on its faults."""
        self.release_all(lost)
        with self._lock:
            faults = list(self._faults)
        for fault in faults:
            fault.ended.set()

    def clear(self) -> None:
        self.release_all()
        with self._lock:
            self._faults.clear()
            self._chaos = None
