"""The idempotency layer: one request through one policy.

It extracts and validates the key, fingerprints the request, claims or looks up the record,
runs the handler at most once per scoped key, stores the response by the cache rules and
answers replays, conflicts, in-flight duplicates and invalid keys. It does not know which
provider it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .fingerprint import fingerprint as make_fingerprint
from .policy import Answer, Policy
from .store import Record, Store, StoredResponse

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


@dataclass(frozen=True)
class EngineRequest:
    method: str
    path: str
    tenant: str | None
    key: str | None
    key_problem: str | None
    body: bytes
    content_type: str
    seq: int


@dataclass(frozen=True)
class Execution:
    """What running the handler produced."""

    response: StoredResponse
    alive: Callable[[], bool] | None = None
    #: The record keeps this response whatever the cache rules say (the handler's real answer
    #: behind an injected 5xx, or the fake's error after a side effect); ``response`` is sent.
    keep: StoredResponse | None = None


@dataclass(frozen=True)
class Outcome:
    decision: str
    response: StoredResponse
    committed: bool
    fingerprint: str | None = None
    replay_of: int | None = None
    note: str = ""


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
            if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
                return raw, (
                    f"{policy.key_header} must be a Structured Field string, quoted: "
                    f'{policy.key_header}: "{raw}"'
                )
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        key = raw
    field = policy.key_field
    if key is None and field is not None and isinstance(data, dict) and field in data:
        value = data[field]
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
        parts: list[Hashable] = []
        for part in self.policy.scope:
            if part == "credential":
                parts.append(req.tenant)
            elif part == "method":
                parts.append(req.method)
            elif part == "path":
                parts.append(req.path)
            else:
                parts.append(f"{req.method} {req.path}")
        parts.append(req.key)
        return tuple(parts)

    def process(
        self,
        req: EngineRequest,
        execute: Callable[[], Execution],
        render: Callable[[Answer, str | None], StoredResponse],
        on_claimed: Callable[[Record], None] | None = None,
    ) -> Outcome:
        """Take ``req`` through the policy. ``execute`` runs the handler (at most once per
        scoped key while its record lives); ``render`` builds the variant's error answers;
        ``on_claimed`` runs after a new claim and before the handler (holds happen there)."""
        policy = self.policy
        if not policy.honours_key(req.method, req.path):
            return Outcome("not_applicable", execute().response, True)
        if req.key_problem is not None:
            answer = policy.invalid_key
            message_key = req.key_problem
            return Outcome("invalid_key", render(answer, message_key), False, note=req.key_problem)
        if req.key is None:
            if policy.requires_key(req.method, req.path):
                return Outcome("no_key", render(policy.missing_key, None), False)
            return Outcome("no_key", execute().response, True)

        fp = make_fingerprint(
            policy.fingerprint,
            req.body,
            req.content_type,
            method=req.method,
            path=req.path,
            include_route=policy.fingerprint_route,
        )
        scope = self.scope_of(req)
        while True:
            claim = self.store.claim(
                scope, req.key, fp, req.seq, body=req.body, content_type=req.content_type
            )
            record = claim.record
            if claim.status == "new":
                return self._run(record, fp, execute, on_claimed)
            if claim.status == "completed":
                if self.store.is_dead(record):
                    if not policy.gone_is_final:
                        self.store.release(record)
                    return Outcome(
                        "gone", render(policy.gone, req.key), False, fp, record.owner_seq
                    )
                if (
                    policy.on_mismatch == "reject"
                    and fp is not None
                    and record.fingerprint is not None
                    and fp != record.fingerprint
                ):
                    return Outcome(
                        "conflict",
                        render(policy.mismatch, req.key),
                        False,
                        fp,
                        record.owner_seq,
                        note=f"first used by request #{record.owner_seq}",
                    )
                assert record.response is not None
                return Outcome(
                    "replayed", self._replay(record.response), False, fp, record.owner_seq
                )
            # in flight
            if policy.on_in_flight == "wait" and record.done.wait(policy.in_flight_wait):
                continue
            return Outcome(
                "in_flight",
                render(policy.in_flight, req.key),
                False,
                fp,
                record.owner_seq,
                note=f"request #{record.owner_seq} holds the key",
            )

    def _run(
        self,
        record: Record,
        fp: str | None,
        execute: Callable[[], Execution],
        on_claimed: Callable[[Record], None] | None,
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
        return Outcome("new", response, True, fp, note=note)

    def _replay(self, original: StoredResponse) -> StoredResponse:
        extra = self.policy.replay_headers
        if not extra:
            return original
        names = {name.lower() for name, _ in extra}
        headers = tuple(h for h in original.headers if h[0].lower() not in names) + extra
        return StoredResponse(original.status, headers, original.body)
