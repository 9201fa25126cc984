"""Idempotency records under a scope tuple: thread-safe, two states, expiry by the clock."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Literal

from .clock import Clock

__all__ = ["Claim", "Record", "Store", "StoreFull", "StoredResponse"]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response exactly as it went out: replays are byte-identical to it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


#: How many expired records the store remembers (for "the record of #1 expired" messages).
_EXPIRED_KEPT = 4096

#: Guards the lazy creation of a record's ``done`` event (most records never get one).
_DONE_LOCK = threading.Lock()


@dataclass(eq=False, slots=True)
class Record:
    """One idempotency record (slotted, and without an event until someone waits on it: a
    store of 100,000 records stays small)."""

    scope: tuple[Hashable, ...]
    key: str
    fingerprint: str | None
    created_at: float
    owner_seq: int
    state: Literal["in_flight", "completed"] = "in_flight"
    response: StoredResponse | None = None
    expires_at: float | None = None
    #: For records that live as long as a resource: returns False once it is gone.
    alive: Callable[[], bool] | None = None
    body: bytes = b""
    content_type: str = ""
    #: The clock's ``backward_moves`` when the record was made (expiry looks at the furthest
    #: the clock has been since then).
    clock_mark: int = 0
    _done: threading.Event | None = field(default=None, repr=False)
    _finished: bool = field(default=False, repr=False)

    @property
    def done(self) -> threading.Event:
        """Set once the record is completed or released; waiters block on it."""
        with _DONE_LOCK:
            if self._done is None:
                self._done = threading.Event()
                if self._finished:
                    self._done.set()
            return self._done

    def finish(self) -> None:
        """Wake every waiter (and any later one) without creating an event nobody waits on."""
        with _DONE_LOCK:
            self._finished = True
            event = self._done
        if event is not None:
            event.set()


@dataclass(slots=True)
class Claim:
    """What :meth:`Store.claim` found: ``new`` (the caller owns the record now),
    ``completed`` or ``in_flight`` (someone else's record)."""

    status: Literal["new", "completed", "in_flight"]
    record: Record
    #: For a ``new`` claim: the record under the same scope whose TTL had passed, if any.
    expired: Record | None = None
    #: The fake-clock time the claim was decided at (what expiry was judged against).
    at: float = 0.0


class StoreFull(Exception):
    """A new key arrived while the store holds ``max_records`` live records: it is refused
    before anything runs (never by forgetting a record, which could run a key twice)."""

    def __init__(self, bound: int, what: str = "records") -> None:
        kept = (
            f"{bound} idempotency records"
            if what == "records"
            else f"{bound} bytes of idempotency records (request and response bodies)"
        )
        option = "--max-records" if what == "records" else "--max-bytes"
        super().__init__(
            f"the fake keeps at most {kept} and all of them are live; reset it between runs "
            f"(POST /__admin/reset) or raise {option}"
        )
        #: The bound that was reached, and which: ``records`` or ``bytes``.
        self.bound = bound
        self.what = what


class Store:
    """All records of one fake server. A single lock makes claim atomic, so N concurrent
    requests with one key produce exactly one ``new`` claim.

    ``max_records`` bounds the records kept and ``max_bytes`` the bytes of their request and
    response bodies (``None``: no bound, the pytest fixture's default): at a bound, a new key
    is refused with :class:`StoreFull` (records whose TTL passed are dropped first); a stored
    record is never forgotten to make room."""

    def __init__(
        self, clock: Clock, max_records: int | None = None, max_bytes: int | None = None
    ) -> None:
        self._clock = clock
        self.max_records = max_records
        self.max_bytes = max_bytes
        #: Bytes of the kept records' request and response bodies.
        self.bytes = 0
        #: New keys refused because the store was full.
        self.refused = 0
        self._lock = threading.Lock()
        self._records: dict[tuple[Hashable, ...], Record] = {}
        self._expiries: list[tuple[float, int, tuple[Hashable, ...]]] = []
        self._tiebreak = 0
        #: Records dropped because their TTL passed, by scope (newest last, bounded), so a
        #: new claim can tell that it replaces an expired record.
        self._expired: dict[tuple[Hashable, ...], Record] = {}

    def __len__(self) -> int:
        return len(self._records)

    def _ttl_passed(self, record: Record, now: float) -> bool:
        """Expiry is deterministic: a completed record has expired once the fake clock has
        reached its ``expires_at`` at any moment since the record was made, whatever traffic
        came between; setting the clock back never revives it."""
        if record.state != "completed" or record.expires_at is None:
            return False
        if now >= record.expires_at:
            return True
        if getattr(self._clock, "backward_moves", 0) <= record.clock_mark:
            return False  # the clock never went back since: "now" is the furthest it has been
        return bool(self._clock.peak_since(record.clock_mark) >= record.expires_at)

    def _sweep(self, now: float, budget: int = 8) -> None:
        """Drop a few records whose TTL passed (amortised; never stalls a request)."""
        heap = self._expiries
        while heap and budget and heap[0][0] <= now:
            _, _, scope = heapq.heappop(heap)
            budget -= 1
            record = self._records.get(scope)
            if record is not None and self._ttl_passed(record, now):
                self._forget(record)
                self._remember_expired(record)

    def _forget(self, record: Record) -> None:
        """Drop a kept record and its bytes (the lock is held)."""
        del self._records[record.scope]
        self.bytes -= _size(record)

    def _reached(self) -> tuple[int, str] | None:
        """The bound the store is at (``(bound, "records" or "bytes")``), if any."""
        if self.max_records is not None and len(self._records) >= self.max_records:
            return self.max_records, "records"
        if self.max_bytes is not None and self.bytes >= self.max_bytes:
            return self.max_bytes, "bytes"
        return None

    def _make_room(self, now: float) -> None:
        """Room for one more record, or :class:`StoreFull` (the lock is held)."""
        if self._reached() is None:
            return
        self._sweep(now, budget=len(self._expiries))
        reached = self._reached()
        if reached is not None:
            self.refused += 1
            raise StoreFull(*reached)

    def _remember_expired(self, record: Record) -> None:
        """Remember who made an expired record and when it expired (not its bodies)."""
        self._expired.pop(record.scope, None)
        self._expired[record.scope] = Record(
            record.scope,
            record.key,
            None,
            record.created_at,
            record.owner_seq,
            record.state,
            expires_at=record.expires_at,
        )
        if len(self._expired) > _EXPIRED_KEPT:
            del self._expired[next(iter(self._expired))]

    def claim(
        self,
        scope: tuple[Hashable, ...],
        key: str,
        fingerprint: str | None,
        owner_seq: int,
        *,
        body: bytes = b"",
        content_type: str = "",
    ) -> Claim:
        """Atomically find the record for ``scope`` or create an in-flight one owned by the caller.

        A record whose TTL passed counts as absent and is replaced by the new claim. A record
        that outlived its resource is still returned: the caller decides (:meth:`is_dead`).
        """
        now = self._clock.now()
        with self._lock:
            self._sweep(now)
            existing = self._records.get(scope)
            if existing is not None and not self._ttl_passed(existing, now):
                return Claim(existing.state, existing, at=now)
            if existing is None:
                self._make_room(now)
            else:
                self.bytes -= _size(existing)
            expired = existing if existing is not None else self._expired.get(scope)
            self._expired.pop(scope, None)
            record = Record(
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                created_at=now,
                owner_seq=owner_seq,
                body=body,
                content_type=content_type,
                clock_mark=getattr(self._clock, "backward_moves", 0),
            )
            self._records[scope] = record
            self.bytes += _size(record)
            return Claim("new", record, expired, now)

    def complete(
        self,
        record: Record,
        response: StoredResponse,
        ttl: float | None,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        """Store the response and wake every waiter; the TTL counts from the first request."""
        with self._lock:
            record.response = response
            record.state = "completed"
            record.alive = alive
            if self._records.get(record.scope) is record:
                self.bytes += len(response.body)
            if ttl is not None:
                record.expires_at = record.created_at + ttl
                self._tiebreak += 1
                heapq.heappush(self._expiries, (record.expires_at, self._tiebreak, record.scope))
        record.finish()

    def release(self, record: Record) -> None:
        """Forget an in-flight claim (the response is not cached); waiters wake and retry."""
        with self._lock:
            if self._records.get(record.scope) is record:
                self._forget(record)
        record.finish()

    def is_dead(self, record: Record) -> bool:
        """Whether a completed record outlived its resource (and so must not be replayed)."""
        return record.state == "completed" and record.alive is not None and not record.alive()

    def drop_in_flight(self) -> list[Record]:
        """Forget every in-flight record (a restart loses them) and return them."""
        with self._lock:
            lost = [r for r in self._records.values() if r.state == "in_flight"]
            for record in lost:
                self._forget(record)
        for record in lost:
            record.finish()
        return lost

    def clear(self) -> None:
        with self._lock:
            waiting = list(self._records.values())
            self._records.clear()
            self.bytes = 0
            self._expiries.clear()
            self._expired.clear()
        for record in waiting:
            record.finish()


def _size(record: Record) -> int:
    """The bytes a record keeps: its request body, its stored response's body, and its scoped
    key (the key, and the credential and path when the policy scopes by them)."""
    response = record.response
    size = len(record.body) if response is None else len(record.body) + len(response.body)
    for part in record.scope:  # a loop, not a generator: this runs on every claim
        if isinstance(part, str):
            size += len(part)
    return size
