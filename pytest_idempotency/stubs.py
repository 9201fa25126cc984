"""Stubbed answers: one route of a built-in variant answers what the test says, for chosen calls.

A stub replaces the route's *handler*, not the idempotency layer: its answer is stored and
replayed by the variant's cache rules like any handler's, and it records no side effect unless
``side_effect=`` names one. ``nth`` counts the calls that reach the handler stage on that route
(replays, conflicts and refused bodies do not), from when the stub is added.
"""

from __future__ import annotations

import json as _json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .policy import (
    BODILESS_STATUSES,
    FRAMING_HEADERS,
    PolicyError,
    check_header,
    is_final_status,
)
from .routes import RoutePattern, parse_route

if TYPE_CHECKING:
    from .variant import Variant

__all__ = ["MAX_STUBS", "Stub", "StubError", "StubPlan", "check_route"]

#: Most stubs one test sets at once (chosen: a test sets a handful; past it, refused).
MAX_STUBS = 1000


class StubError(ValueError):
    """A stub that cannot be set as asked; the message names the fix."""


@dataclass(eq=False)
class Stub:
    """One stubbed answer of one route."""

    route: str
    pattern: RoutePattern = field(repr=False)
    status: int = 200
    json: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    nth: int = 1
    times: int | None = None
    side_effect: str | None = None
    #: Calls of its route that reached the handler stage since it was added.
    calls: int = 0
    #: Calls it answered.
    fired: int = 0

    def _takes(self, call: int) -> bool:
        return call >= self.nth and (self.times is None or call < self.nth + self.times)

    def body(self) -> bytes:
        return b"" if self.json is None else _json.dumps(self.json).encode()

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "status": self.status,
            "json": self.json,
            "headers": dict(self.headers),
            "nth": self.nth,
            "times": self.times,
            "side_effect": self.side_effect,
            "calls": self.calls,
            "fired": self.fired,
        }


class StubPlan:
    """The stubs of one test, in the order they were added (the first that takes a call
    answers it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stubs: list[Stub] = []

    def add(
        self,
        route: str,
        *,
        status: int = 200,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        nth: int = 1,
        times: int | None = None,
        side_effect: str | None = None,
    ) -> Stub:
        _bodiless(_status(status), json)
        stub = Stub(
            route=route,
            pattern=_pattern(route),
            status=_status(status),
            json=_jsonable(json),
            headers=_headers(headers or {}),
            nth=_count(nth, "nth"),
            times=None if times is None else _count(times, "times"),
            side_effect=_kind(side_effect),
        )
        with self._lock:
            if len(self._stubs) >= MAX_STUBS:
                raise StubError(
                    f"{MAX_STUBS} stubs are set already, the most one test holds; clear them "
                    "first (DELETE /__admin/stubs, or a reset)"
                )
            self._stubs.append(stub)
        return stub

    def answer(self, method: str, path: str) -> Stub | None:
        """Count one handler call of ``method path`` and return the stub that takes it."""
        chosen: Stub | None = None
        if not self._stubs:  # the common case: no stubs, no lock
            return None
        with self._lock:
            for stub in self._stubs:
                if stub.pattern.match(method, path) is None:
                    continue
                stub.calls += 1
                if chosen is None and stub._takes(stub.calls):
                    chosen = stub
                    stub.fired += 1
        return chosen

    @property
    def stubs(self) -> list[Stub]:
        with self._lock:
            return list(self._stubs)

    def clear(self) -> None:
        with self._lock:
            self._stubs.clear()


def check_route(variant: Variant, route: str) -> None:
    """Refuse a stub for a route the variant does not have (it could never answer)."""
    _pattern(route)
    method, _, path = route.strip().partition(" ")
    path = path.strip()
    if any(r.spec == f"{method.upper()} {path}" for r in variant.routes):
        return
    found, _, _ = variant.find_route(method.upper(), path)
    if found is None:
        routes = ", ".join(r.spec for r in variant.routes)
        raise StubError(
            f"variant {variant.name!r} has no route {route!r}, so a stub there never answers; "
            f"its routes: {routes} (a new route needs a custom variant: docs/custom.md)"
        )


def _pattern(route: Any) -> RoutePattern:
    if not isinstance(route, str) or " " not in route.strip():
        raise StubError(f'name the route as "METHOD /path", e.g. "POST /v1/tasks" (got {route!r})')
    try:
        return parse_route(route.strip())
    except ValueError as exc:
        raise StubError(f'{exc}; name the route as "METHOD /path", e.g. "POST /v1/tasks"') from None


def _status(status: Any) -> int:
    if not is_final_status(status):
        raise StubError(f"status must be an HTTP status from 200 to 599 (got {status!r})")
    return status


def _bodiless(status: int, json: Any) -> None:
    """204 and 304 answers never carry a body (RFC 9110): a stub of one cannot have ``json``."""
    if status in BODILESS_STATUSES and json is not None:
        raise StubError(f"a {status} answer has no body; leave out json (or choose another status)")


def _jsonable(value: Any) -> Any:
    try:
        _json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StubError(f"json must be JSON-encodable ({exc})") from None
    return value


def _headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    if not isinstance(headers, Mapping):
        raise StubError(
            f'headers must be a mapping such as {{"X-Request-Id": "r1"}} (got {headers!r})'
        )
    out: list[tuple[str, str]] = []
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise StubError(f"header names and values must be strings (got {name!r}: {value!r})")
        if name.lower() in FRAMING_HEADERS:
            raise StubError(f"{name} is set by the server; leave it out of a stub's headers")
        if not (name + value).isascii() or not _fits_the_wire(name, value):
            raise StubError(
                f"header {name!r}: {value!r} cannot go on the wire; use a token name (letters, "
                "digits and !#$%&'*+-.^_`|~) and a printable ASCII value"
            )
        out.append((name, value))
    return tuple(out)


def _fits_the_wire(name: str, value: str) -> bool:
    try:
        check_header("headers", name, value)
    except PolicyError:
        return False
    return True


def _count(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise StubError(f"{name} counts from 1 (got {value!r})")
    return value


def _kind(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise StubError(f'side_effect names a kind such as "task.created" (got {value!r})')
    return value
