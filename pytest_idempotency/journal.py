"""Every exchange as the server saw it, and every side effect it actually executed."""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from .clock import check_timeout

__all__ = [
    "DECISIONS",
    "MAX_PROBLEM_TEXT",
    "WIRES",
    "Decision",
    "Exchange",
    "Flag",
    "Journal",
    "SideEffect",
    "Wire",
]

Decision = Literal[
    "new",
    "replayed",
    "conflict",
    "in_flight",
    "invalid_key",
    "no_key",
    "not_applicable",
    "rejected",
    "gone",
]
Wire = Literal["response", "dropped", "reset", "late", "garbage", "pending"]
DECISIONS: tuple[str, ...] = (
    "new",
    "replayed",
    "conflict",
    "in_flight",
    "invalid_key",
    "no_key",
    "not_applicable",
    "rejected",
    "gone",
)
WIRES: tuple[str, ...] = ("response", "dropped", "reset", "late", "garbage")


_FLAG_LOCK = threading.Lock()


class Flag:
    """A one-way flag with :class:`threading.Event`'s ``set``/``is_set``/``wait``; the event
    behind ``wait`` is only made when a thread waits (most flags are only ever set)."""

    __slots__ = ("_done", "_event")

    def __init__(self) -> None:
        self._done = False
        self._event: threading.Event | None = None

    def is_set(self) -> bool:
        return self._done

    def set(self) -> None:
        self._done = True
        event = self._event
        if event is not None:
            event.set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._done:
            return True
        with _FLAG_LOCK:
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        if self.is_set():  # set between the first look and the event's creation
            return True
        return event.wait(timeout)


@dataclass(eq=False, slots=True)
class SideEffect:
    """One mutation the fake really performed."""

    seq: int
    exchange_seq: int
    at: float
    kind: str
    resource: str
    resource_id: str | None
    method: str
    path: str
    key: str | None
    tenant: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "exchange_seq": self.exchange_seq,
            "at": self.at,
            "kind": self.kind,
            "resource": self.resource,
            "resource_id": self.resource_id,
            "method": self.method,
            "path": self.path,
            "key": self.key,
            "tenant": self.tenant,
            "detail": self.detail,
        }


@dataclass(eq=False, slots=True)
class Exchange:
    """One request and what the server did with it.

    ``decision`` is ``None`` when a fault struck before the idempotency layer; ``wire`` is what
    actually went out on the socket, which can differ from ``status`` (a dropped response
    still has the status the handler produced).
    """

    seq: int
    at: float
    method: str
    path: str
    tenant: str | None = None
    key: str | None = None
    fingerprint: str | None = None
    attempt: int | None = None
    client_retry_count: str | None = None
    decision: Decision | None = None
    status: int | None = None
    wire: Wire = "pending"
    fault: str | None = None
    committed: bool = False
    replay_of: int | None = None
    body: bytes = b""
    content_type: str = ""
    note: str = ""
    side_effects: list[SideEffect] = field(default_factory=list)
    #: Every request header as sent, in order (repeated names appear repeatedly). Nothing is
    #: redacted: ``Authorization`` is kept as the client sent it.
    headers: tuple[tuple[str, str], ...] = ()
    #: ``(seq, at)`` when this request ran because the record of request ``#seq`` expired
    #: (its TTL passed at fake-clock time ``at``).
    expired: tuple[int, float] | None = None
    #: The fake-clock time the idempotency layer looked the key up at (what the decision and
    #: any expiry were judged against; ``at`` is the arrival), or ``None`` without a lookup.
    decided_at: float | None = None
    #: Set once the server has decided this exchange (decision, status and wire are final).
    finished: Flag = field(default_factory=Flag, repr=False)

    def as_dict(self) -> dict[str, Any]:
        body_text: str | None
        try:
            body_text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            body_text = None
        return {
            "seq": self.seq,
            "at": self.at,
            "method": self.method,
            "path": self.path,
            "tenant": self.tenant,
            "key": self.key,
            "fingerprint": self.fingerprint,
            "attempt": self.attempt,
            "client_retry_count": self.client_retry_count,
            "decision": self.decision,
            "status": self.status,
            "wire": self.wire,
            "fault": self.fault,
            "committed": self.committed,
            "replay_of": self.replay_of,
            "body": body_text,
            "note": self.note,
            "side_effects": [s.seq for s in self.side_effects],
            "headers": [list(pair) for pair in self.headers],
            "expired": None
            if self.expired is None
            else {"seq": self.expired[0], "at": self.expired[1]},
            "decided_at": self.decided_at,
        }

    def header(self, name: str) -> str | None:
        """The first value of request header ``name`` (any case), or ``None``."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of request header ``name`` (any case), in the order sent."""
        wanted = name.lower()
        return [value for header, value in self.headers if header.lower() == wanted]

    def has_header(self, name: str, value: str | None = None) -> bool:
        """Whether header ``name`` was sent (with exactly ``value``, when given)."""
        values = self.header_values(name)
        return bool(values) if value is None else value in values


#: Longest text of one problem kept in the journal (a huge value is cut, never copied whole).
MAX_PROBLEM_TEXT = 2000
#: What a bounded journal keeps in all, bytes: request bodies, paths and headers (the oldest
#: exchanges go first).
MAX_KEPT_BODY_BYTES = 64 * 1024 * 1024


def _kept_bytes(exchange: Exchange) -> int:
    """What a kept exchange holds, in bytes: its body, its path and its headers (every name
    and value, summed without a Python-level loop)."""
    return (
        len(exchange.body)
        + len(exchange.path)
        + sum(map(len, itertools.chain.from_iterable(exchange.headers)))
    )


class Journal:
    """The ordered record of one test's traffic. Thread-safe; tests read it without sleeping
    via :meth:`wait_for`.

    ``limit=None`` (the pytest fixture) keeps everything. With a ``limit`` (the standalone
    server keeps 10,000) only the newest ``limit`` exchanges and side effects are kept;
    :attr:`dropped_exchanges` and :attr:`dropped_side_effects` count what went, and the
    totals stay exact. Assertions and the timeline read the kept window only.
    """

    def __init__(self, now: Callable[[], float] | None = None, limit: int | None = None) -> None:
        self._now = now or time.time
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        #: Threads inside :meth:`wait_for`: changes wake them only when there are some.
        self._waiters = 0
        self._exchanges: deque[Exchange] = deque()
        #: What each kept exchange holds (``_kept_bytes``), in step with ``_exchanges``: worked
        #: out once, when the exchange is opened (only while the journal is bounded).
        self._kept: deque[int] = deque()
        self._side_effects: deque[SideEffect] = deque()
        self._attempts: OrderedDict[tuple[Any, ...], int] = OrderedDict()
        self._total_exchanges = 0
        self._total_side_effects = 0
        self._body_bytes = 0
        self._limit: int | None = None
        #: ``(category, text)`` of what the test did not expect: ``unexpected`` (no route),
        #: ``schema`` (a body broke the variant's schema), ``internal`` (the fake raised).
        self.problems: list[tuple[str, str]] = []
        self.dropped_problems = 0
        self.limit = limit

    # -- retention ---------------------------------------------------------------------------

    @property
    def limit(self) -> int | None:
        """How many exchanges (and side effects) are kept; ``None``: all."""
        return self._limit

    @limit.setter
    def limit(self, value: int | None) -> None:
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(
                f"the journal limit must be a whole number >= 1 or None (got {value!r})"
            )
        with self._lock:
            self._limit = value
            self._trim()

    def _trim(self) -> None:
        limit = self._limit
        if limit is None:
            return
        exchanges, kept = self._exchanges, self._kept
        if len(kept) != len(exchanges):  # bounded just now: size what it keeps already
            kept.clear()
            kept.extend(map(_kept_bytes, exchanges))
            self._body_bytes = sum(kept)
        while len(exchanges) > limit or (self._body_bytes > MAX_KEPT_BODY_BYTES and exchanges):
            exchanges.popleft()
            self._body_bytes -= kept.popleft()
        while len(self._side_effects) > limit:
            self._side_effects.popleft()
        attempts = self._attempts
        while len(attempts) > 4 * limit:
            attempts.popitem(last=False)
        if len(self.problems) > limit:
            cut = len(self.problems) - limit
            del self.problems[:cut]
            self.dropped_problems += cut

    @property
    def total_exchanges(self) -> int:
        """Every exchange since the journal began, kept or dropped."""
        return self._total_exchanges

    @property
    def dropped_exchanges(self) -> int:
        with self._lock:
            return self._total_exchanges - len(self._exchanges)

    @property
    def total_side_effects(self) -> int:
        """Every side effect since the journal began, kept or dropped."""
        return self._total_side_effects

    @property
    def dropped_side_effects(self) -> int:
        with self._lock:
            return self._total_side_effects - len(self._side_effects)

    # -- writing (the app) -------------------------------------------------------------------

    def open(
        self,
        method: str,
        path: str,
        body: bytes,
        content_type: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Exchange:
        with self._lock:
            self._total_exchanges += 1
            exchange = Exchange(
                seq=self._total_exchanges,
                at=self._now(),
                method=method,
                path=path,
                body=body,
                content_type=content_type,
                headers=tuple(headers),
            )
            exchanges = self._exchanges
            exchanges.append(exchange)
            if self._limit is not None:
                size = _kept_bytes(exchange)
                self._kept.append(size)
                self._body_bytes += size
                if self._body_bytes > MAX_KEPT_BODY_BYTES:
                    self._trim()
                elif len(exchanges) > self._limit:  # the common case once full: one out
                    exchanges.popleft()
                    self._body_bytes -= self._kept.popleft()
            self._wake()
            return exchange

    def next_attempt(self, scope: tuple[Any, ...]) -> int:
        """Count one more attempt of a (scoped) key and return its number, from 1. A bounded
        journal remembers the ``4 * limit`` most recently used keys."""
        with self._lock:
            attempts = self._attempts
            count = attempts.get(scope, 0) + 1
            attempts[scope] = count
            attempts.move_to_end(scope)
            if self._limit is not None and len(attempts) > 4 * self._limit:
                attempts.popitem(last=False)
            return count

    def record_side_effect(
        self,
        exchange: Exchange,
        kind: str,
        resource: str,
        resource_id: str | None,
        detail: dict[str, Any] | None = None,
    ) -> SideEffect:
        with self._lock:
            self._total_side_effects += 1
            effect = SideEffect(
                seq=self._total_side_effects,
                exchange_seq=exchange.seq,
                at=self._now(),
                kind=kind,
                resource=resource,
                resource_id=resource_id,
                method=exchange.method,
                path=exchange.path,
                key=exchange.key,
                tenant=exchange.tenant,
                detail=dict(detail or {}),
            )
            side_effects = self._side_effects
            side_effects.append(effect)
            exchange.side_effects.append(effect)
            if self._limit is not None and len(side_effects) > self._limit:
                side_effects.popleft()
            self._wake()
            return effect

    def _wake(self) -> None:
        """Wake the threads in :meth:`wait_for` (the lock is held); nothing when none waits."""
        if self._waiters:
            self._cond.notify_all()

    def touch(self) -> None:
        """Wake waiters after an exchange changed (decision, wire, ...)."""
        if self._waiters:
            with self._lock:
                self._cond.notify_all()

    def problem(self, category: str, text: str) -> None:
        """Record something the test did not expect (checked at teardown)."""
        if len(text) > MAX_PROBLEM_TEXT:
            text = f"{text[:MAX_PROBLEM_TEXT]}... ({len(text) - MAX_PROBLEM_TEXT} more characters)"
        with self._lock:
            self.problems.append((category, text))
            if self._limit is not None and len(self.problems) > self._limit:
                self._trim()
            self._wake()

    def page(self, after: int = 0, count: int | None = None) -> list[Exchange]:
        """Kept exchanges with ``seq > after``, oldest first, at most ``count`` of them."""
        with self._lock:
            exchanges = self._exchanges
            first = exchanges[0].seq if exchanges else 1
            skip = max(0, after - first + 1)
            stop = None if count is None else skip + count
            return list(itertools.islice(exchanges, skip, stop))

    # -- reading (tests) ---------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        """A snapshot, in arrival order."""
        with self._lock:
            return list(self._exchanges)

    @property
    def side_effects(self) -> list[SideEffect]:
        with self._lock:
            return list(self._side_effects)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self.exchanges)

    def __len__(self) -> int:
        with self._lock:
            return len(self._exchanges)

    def __getitem__(self, index: int) -> Exchange:
        with self._lock:
            return self._exchanges[index]

    def filter(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        key: str | None = None,
        decision: str | None = None,
        tenant: str | None = None,
        header: str | tuple[str, str] | None = None,
    ) -> list[Exchange]:
        """Exchanges whose fields equal every given value. ``header="X-Foo"`` keeps requests
        that sent the header; ``header=("X-Foo", "bar")`` those that sent it with that value
        (names in any case, values exactly)."""
        name, value = (header, None) if isinstance(header, str) or header is None else header
        return [
            e
            for e in self.exchanges
            if (method is None or e.method == method.upper())
            and (path is None or e.path == path)
            and (key is None or e.key == key)
            and (decision is None or e.decision == decision)
            and (tenant is None or e.tenant == tenant)
            and (name is None or e.has_header(name, value))
        ]

    def wait_for(
        self,
        predicate: Callable[[Journal], bool],
        timeout: float = 5.0,
        what: str = "the condition",
        where: str = "the fake server's URL",
    ) -> None:
        """Block until ``predicate(journal)`` holds (re-checked on every change), or raise
        ``TimeoutError`` naming ``what`` after ``timeout`` seconds of real time; its hint asks
        whether the client is pointed at ``where`` (the caller's word for the fake's URL).
        A timeout that is not a finite number >= 0 is refused (``TypeError``/``ValueError``)."""
        if not callable(predicate):
            raise TypeError(f"wait_for(predicate) takes a callable, not {predicate!r:.60}")
        timeout = check_timeout(timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            self._waiters += 1
            try:
                while not predicate(self):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(
                            f"waited {timeout} s for {what}; the server saw "
                            f"{len(self._exchanges)} request(s). Is the client pointed at {where}?"
                        )
                    self._cond.wait(min(remaining, 0.25))
            finally:
                self._waiters -= 1

    def wait_for_requests(
        self, count: int, timeout: float = 5.0, where: str = "the fake server's URL"
    ) -> None:
        """Block until the server has received ``count`` requests in this test."""
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"wait_for_requests(count) takes a whole number, not {count!r:.60}")
        self.wait_for(
            lambda j: j._total_exchanges >= count, timeout, f"{count} request(s)", where=where
        )
