"""Every exchange as the server saw it, and every side effect it actually executed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DECISIONS", "WIRES", "Decision", "Exchange", "Journal", "SideEffect", "Wire"]

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


@dataclass(eq=False)
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


@dataclass(eq=False)
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
    #: Set once the server has decided this exchange (decision, status and wire are final).
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

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
        }


class Journal:
    """The ordered record of one test's traffic. Thread-safe; tests read it without sleeping
    via :meth:`wait_for`."""

    def __init__(self, now: Callable[[], float] | None = None) -> None:
        self._now = now or time.time
        self._cond = threading.Condition()
        self._exchanges: list[Exchange] = []
        self._side_effects: list[SideEffect] = []
        self._attempts: dict[tuple[Any, ...], int] = {}
        #: ``(category, text)`` of what the test did not expect: ``unexpected`` (no route),
        #: ``schema`` (a body broke the variant's schema), ``internal`` (the fake raised).
        self.problems: list[tuple[str, str]] = []

    # -- writing (the app) -------------------------------------------------------------------

    def open(self, method: str, path: str, body: bytes, content_type: str) -> Exchange:
        with self._cond:
            exchange = Exchange(
                seq=len(self._exchanges) + 1,
                at=self._now(),
                method=method,
                path=path,
                body=body,
                content_type=content_type,
            )
            self._exchanges.append(exchange)
            self._cond.notify_all()
            return exchange

    def next_attempt(self, scope: tuple[Any, ...]) -> int:
        """Count one more attempt of a (scoped) key and return its number, from 1."""
        with self._cond:
            count = self._attempts.get(scope, 0) + 1
            self._attempts[scope] = count
            return count

    def record_side_effect(
        self,
        exchange: Exchange,
        kind: str,
        resource: str,
        resource_id: str | None,
        detail: dict[str, Any] | None = None,
    ) -> SideEffect:
        with self._cond:
            effect = SideEffect(
                seq=len(self._side_effects) + 1,
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
            self._side_effects.append(effect)
            exchange.side_effects.append(effect)
            self._cond.notify_all()
            return effect

    def touch(self) -> None:
        """Wake waiters after an exchange changed (decision, wire, ...)."""
        with self._cond:
            self._cond.notify_all()

    def problem(self, category: str, text: str) -> None:
        """Record something the test did not expect (checked at teardown)."""
        with self._cond:
            self.problems.append((category, text))
            self._cond.notify_all()

    # -- reading (tests) ---------------------------------------------------------------------

    @property
    def exchanges(self) -> list[Exchange]:
        """A snapshot, in arrival order."""
        with self._cond:
            return list(self._exchanges)

    @property
    def side_effects(self) -> list[SideEffect]:
        with self._cond:
            return list(self._side_effects)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self.exchanges)

    def __len__(self) -> int:
        with self._cond:
            return len(self._exchanges)

    def __getitem__(self, index: int) -> Exchange:
        with self._cond:
            return self._exchanges[index]

    def filter(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        key: str | None = None,
        decision: str | None = None,
        tenant: str | None = None,
    ) -> list[Exchange]:
        """Exchanges whose fields equal every given value."""
        return [
            e
            for e in self.exchanges
            if (method is None or e.method == method.upper())
            and (path is None or e.path == path)
            and (key is None or e.key == key)
            and (decision is None or e.decision == decision)
            and (tenant is None or e.tenant == tenant)
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
        whether the client is pointed at ``where`` (the caller's word for the fake's URL)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout} s for {what}; the server saw {len(self._exchanges)} "
                        f"request(s). Is the client pointed at {where}?"
                    )
                self._cond.wait(min(remaining, 0.25))

    def wait_for_requests(
        self, count: int, timeout: float = 5.0, where: str = "the fake server's URL"
    ) -> None:
        """Block until the server has received ``count`` requests in this test."""
        self.wait_for(
            lambda j: len(j._exchanges) >= count, timeout, f"{count} request(s)", where=where
        )
