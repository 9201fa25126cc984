"""The idempotency layer: one request through one policy.

It extracts and validates the key, fingerprints the request, claims or looks up the record,
runs the handler at most once per scoped key, stores the response by the cache rules and
answers replays, conflicts, in-flight duplicates and invalid keys. It does not know which
provider it serves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .consult import Consultation, ConsultMode, consulting
from .fingerprint import fingerprint as make_fingerprint
from .policy import Answer, Policy
from .store import Claim, Record, Store, StoredResponse

__all__ = [
    "Engine",
    "EngineRequest",
    "Execution",
    "Outcome",
    "RequestLost",
    "extract_key",
]


class RequestLost(Exception):
    """The server "restarted" while this request was in flight: nothing is committed."""


@dataclass(slots=True)
class EngineRequest:
    method: str
    path: str
    tenant: str | None
    key: str | None
    key_problem: str | None
    body: bytes
    content_type: str
    seq: int
    #: Whether the policy honours the key on this route, when the caller already knows.
    keyed: bool | None = None
    #: ``(data,)``: the body as the caller already parsed it (saves parsing it again).
    parsed: tuple[Any] | None = None
    #: The scoped key, once :meth:`Engine.scope_of` has worked it out.
    scope: tuple[Hashable, ...] | None = None
    #: The fake-clock time the store decided this request's key at (its last claim).
    decided_at: float | None = None


@dataclass(slots=True)
class Execution:
    """What running the handler produced."""

    response: StoredResponse
    alive: Callable[[], bool] | None = None
    #: The record keeps this response whatever the cache rules say (the handler's real answer
    #: behind an injected 5xx, or the fake's error after a side effect); ``response`` is sent.
    keep: StoredResponse | None = None


@dataclass(slots=True)
class Outcome:
    decision: str
    response: StoredResponse
    committed: bool
    fingerprint: str | None = None
    replay_of: int | None = None
    note: str = ""
    #: ``(seq, at)``: this execution happened because the record of request ``#seq`` expired
    #: at fake-clock time ``at``.
    expired: tuple[int, float] | None = None


#: A Structured Field string (RFC 8941, section 3.3.3): printable ASCII in double quotes, where
#: only ``"`` and ``\`` are escaped, each by a backslash.
_SF_STRING = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"')
_SF_ESCAPE = re.compile(r'\\(["\\])')


def extract_key(
    policy: Policy,
    header_values: list[str],
    data: Any,
) -> tuple[str | None, str | None]:
    """``(key, problem)``: the key as the policy reads it, and why it is invalid (or ``None``).

    ``header_values`` are all values of the key header as sent (to catch a repeated header).
    """
    key: str | None = None
    if policy.key_header is not None and header_values:
        if len(header_values) > 1:
            return header_values[0], (
                f"{len(header_values)} {policy.key_header} headers were sent; send exactly one"
            )
        raw = header_values[0]
        if policy.key_format == "sf-string":
            if _SF_STRING.fullmatch(raw) is None:
                return raw, (
                    f"{policy.key_header} must be a Structured Field string (RFC 8941): quoted, "
                    'printable ASCII, with " and \\ escaped as \\" and \\\\: '
                    f'{policy.key_header}: "{raw.strip(chr(34))}"'
                )
            raw = _SF_ESCAPE.sub(r"\1", raw[1:-1])
        key = raw
    field = policy.key_field
    if key is None and field is not None and isinstance(data, dict) and field in data:
        value = data[field]
        if value is None and policy.null_key == "absent":
            return None, None
        if not isinstance(value, str):
            return str(value), f"{field} must be a string (got {type(value).__name__})"
        key = value
    if key is None:
        return None, None
    return key, policy.key_problem(key)


class Engine:
    """Runs requests through a policy against a store."""

    def __init__(self, policy: Policy, store: Store) -> None:
        self.policy = policy
        self.store = store

    def scope_of(self, req: EngineRequest) -> tuple[Hashable, ...]:
        """The key as the policy scopes it (worked out once per request)."""
        if req.scope is not None:
            return req.scope
        scope = self.policy.scope
        if scope == ("credential",):  # the common scope, without the loop
            req.scope = (req.tenant, req.key)
            return req.scope
        parts: list[Hashable] = []
        for part in scope:
            if part == "credential":
                parts.append(req.tenant)
            elif part == "method":
                parts.append(req.method)
            elif part == "path":
                parts.append(req.path)
            elif part == "route":
                parts.append(self.policy.route_of(req.method, req.path))
            else:
                parts.append(f"{req.method} {req.path}")
        parts.append(req.key)
        req.scope = tuple(parts)
        return req.scope

    def process(
        self,
        req: EngineRequest,
        execute: Callable[[], Execution],
        render: Callable[[Answer, str | None], StoredResponse],
        on_claimed: Callable[[Record], None] | None = None,
        render_record: Callable[[Answer, str | None, Record], StoredResponse] | None = None,
    ) -> Outcome:
        """Take ``req`` through the policy. ``execute`` runs the handler (at most once per
        scoped key while its record lives); ``render`` builds the variant's error answers, and
        ``render_record`` (when given) those about a stored record (mismatch, reuse conflict, in
        flight, gone), seeing that record;
        ``on_claimed`` runs after a new claim and before the handler (holds happen there)."""
        policy = self.policy
        keyed = req.keyed if req.keyed is not None else policy.honours_key(req.method, req.path)
        if not keyed:
            return Outcome("not_applicable", execute().response, True)
        key_problem = req.key_problem
        if key_problem is None and req.key is not None:
            key_problem = policy.route_key_problem(req.key, req.method, req.path)
        if key_problem is not None:
            answer = policy.invalid_key
            return Outcome("invalid_key", render(answer, key_problem), False, note=key_problem)
        if req.key is None:
            if policy.requires_key(req.method, req.path):
                return Outcome("no_key", render(policy.missing_key, None), False)
            return Outcome("no_key", execute().response, True)

        def about(answer: Answer, key: str | None, record: Record) -> StoredResponse:
            if render_record is None:
                return render(answer, key)
            return render_record(answer, key, record)

        fp = make_fingerprint(
            policy.fingerprint,
            req.body,
            req.content_type,
            method=req.method,
            path=req.path,
            include_route=policy.fingerprint_route,
            parsed=req.parsed,
        )
        scope = self.scope_of(req)
        waited: Record | None = None  # the in-flight original this duplicate waited for
        while True:
            claim = self._claim(scope, req, fp, waited)
            record = claim.record
            req.decided_at = claim.at
            if claim.status == "new":
                return self._run(record, fp, execute, on_claimed, claim.expired)
            if claim.status == "completed":
                if self.store.is_dead(record):
                    if not policy.gone_is_final:
                        self.store.release(record)
                    return Outcome(
                        "gone", about(policy.gone, req.key, record), False, fp, record.owner_seq
                    )
                if (
                    policy.on_mismatch == "reject"
                    and fp is not None
                    and record.fingerprint is not None
                    and fp != record.fingerprint
                ):
                    return Outcome(
                        "conflict",
                        about(policy.mismatch, req.key, record),
                        False,
                        fp,
                        record.owner_seq,
                        note=f"first used by request #{record.owner_seq}",
                    )
                if policy.on_reuse == "conflict":
                    return Outcome(
                        "conflict",
                        about(policy.reuse, req.key, record),
                        False,
                        fp,
                        record.owner_seq,
                        note=f"key already completed by request #{record.owner_seq} "
                        "(on_reuse='conflict')",
                    )
                assert record.response is not None
                if policy.on_mismatch == "revalidate":
                    refused = self._consult("revalidate", record, req, execute)
                    if refused is not None and refused.status >= 400:
                        return Outcome(
                            "rejected",
                            refused,
                            False,
                            fp,
                            record.owner_seq,
                            note=f"the body breaks an invariant of the endpoint; "
                            f"not a replay of #{record.owner_seq}",
                        )
                return Outcome(
                    "replayed", self._replay(record.response), False, fp, record.owner_seq
                )
            # in flight
            if policy.on_in_flight == "provisional":
                provisional = self._consult("provisional", record, req, execute)
                if provisional is not None:
                    return Outcome(
                        "replayed",
                        provisional,
                        False,
                        fp,
                        record.owner_seq,
                        note=f"answered with the ids of #{record.owner_seq}, still in flight",
                    )
            if policy.on_in_flight in ("wait", "provisional") and record.done.wait(
                policy.in_flight_wait
            ):
                waited = record
                continue
            return Outcome(
                "in_flight",
                about(policy.in_flight, req.key, record),
                False,
                fp,
                record.owner_seq,
                note=f"request #{record.owner_seq} holds the key",
            )

    def _claim(
        self, scope: tuple[Hashable, ...], req: EngineRequest, fp: str | None, waited: Record | None
    ) -> Claim:
        """Look the key up; a duplicate that waited for an in-flight original and saw it commit
        takes that record, decided when it found it in flight: the original's TTL passing
        while it waited (a moved clock) must not run the key a second time."""
        if waited is not None and waited.state == "completed":
            return Claim("completed", waited, at=req.decided_at or 0.0)
        return self.store.claim(
            scope, req.key or "", fp, req.seq, body=req.body, content_type=req.content_type
        )

    def _consult(
        self,
        mode: ConsultMode,
        record: Record,
        req: EngineRequest,
        execute: Callable[[], Execution],
    ) -> StoredResponse | None:
        """Ask the route's handler about ``record`` (see ``consult``); ``None`` when the route
        is not consulted, the handler declines, or the answer is a 5xx (an injected
        ``error_after`` fault: nothing was committed for it to follow)."""
        if not self.policy.consults(req.method, req.path):
            return None
        with consulting(Consultation(mode, record)) as question:
            response = execute().response
        return None if question.declined or response.status >= 500 else response

    def _run(
        self,
        record: Record,
        fp: str | None,
        execute: Callable[[], Execution],
        on_claimed: Callable[[Record], None] | None,
        expired: Record | None = None,
    ) -> Outcome:
        try:
            if on_claimed is not None:
                on_claimed(record)
            result = execute()
        except BaseException:
            self.store.release(record)
            raise
        response = result.response
        kept = result.keep
        if kept is not None or self.policy.caches(response.status):
            ttl = self.policy.ttl
            alive = result.alive if self.policy.expires_with_resource else None
            self.store.complete(record, kept or response, ttl, alive)
            note = (
                "" if kept is None or kept is response else "the record keeps the handler's answer"
            )
        else:
            self.store.release(record)
            note = f"{response.status} is not cached: a retry runs the handler again"
        gone: tuple[int, float] | None = None
        if expired is not None and expired.expires_at is not None:
            gone = (expired.owner_seq, expired.expires_at)
            note = note or f"the record of #{expired.owner_seq} expired: the key ran again"
        return Outcome("new", response, True, fp, note=note, expired=gone)

    def _replay(self, original: StoredResponse) -> StoredResponse:
        extra = self.policy.replay_headers
        if not extra:
            return original
        names = {name.lower() for name, _ in extra}
        headers = tuple(h for h in original.headers if h[0].lower() not in names) + extra
        return StoredResponse(original.status, headers, original.body)
