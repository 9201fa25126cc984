"""The verdict of one run, from the journal and the operation's outcome, and its attribution.

``duplicate``: more than one side effect of the operation (for a batch, more than one per
target); ``lost``: the operation returned but its side effect does not exist; ``ambiguous``:
the side effect was committed but the operation raised; ``hang``: the operation did not finish
within the run's bound; ``safe``: everything else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..journal import Exchange, SideEffect
from ..policy import Policy
from .menu import CRASH, PlannedFault

__all__ = ["QUOTES", "VERDICTS", "Attribution", "Reference", "effect_groups", "judge"]

VERDICTS: tuple[str, ...] = ("safe", "duplicate", "lost", "ambiguous", "hang")

#: The documented rules a provider's hazard follows, quoted from its page, by variant name.
QUOTES: dict[str, dict[str, str]] = {
    "phantom": {
        "5xx": "5xx (server error) No — we assume the issue may have resolved and you should be "
        "able to retry",
        "ttl": "TTL: 24 hours. After that, the same key is re-runnable.",
    },
    "stripe": {
        "5xx_saved": "Retries with the same key return the saved response, including 500 errors",
    },
    "moda": {
        "5xx": "(the page is silent: the fake's chosen rule, see docs/variants/moda.md)",
        "not_keyed": "Other writes (POST /v1/brand-kits, POST /v1/uploads) are not idempotent "
        "— retrying may create duplicates.",
        "ttl": "Moda retains idempotency records long enough to cover sensible retry windows — "
        "don't rely on a specific duration.",
    },
    "letmepost": {
        "ttl": "Beyond 24h the same key is treated as fresh, so don't rely on long-lived dedup",
        "new_key": "Two different keys, same body, will publish two posts.",
    },
    "whet": {
        "new_key": "Reuse it across every retry of the same attempt.",
    },
}
_TARGET_FIELDS = ("accountId", "account_id", "target", "target_id")


@dataclass(frozen=True)
class Attribution:
    """Who a verdict is on: ``client``, ``provider`` (its documented rule) or ``hazard``
    (the provider forgot the key: records lost in a restart, TTL ran out); ``rule`` quotes
    the documented rule or says what the client did."""

    party: str
    rule: str

    def __str__(self) -> str:
        return f"{self.party}: {self.rule}"


def _group(effect: SideEffect) -> tuple[str, Any]:
    target = next((effect.detail[f] for f in _TARGET_FIELDS if f in effect.detail), None)
    return effect.kind, target


def effect_groups(effects: Iterable[SideEffect]) -> Counter[tuple[str, Any]]:
    """Side effects counted by (kind, batch target)."""
    return Counter(_group(effect) for effect in effects)


def _bodies(
    effects: Iterable[SideEffect], exchanges: Iterable[Exchange]
) -> Counter[tuple[str, Any, str | None]]:
    """Side effects counted by (kind, batch target, fingerprint of the request that made it)."""
    prints = {e.seq: e.fingerprint for e in exchanges}
    return Counter((*_group(e), prints.get(e.exchange_seq)) for e in effects)


@dataclass(frozen=True)
class Reference:
    """What the no-fault run did: its side effects by (kind, target), and by the body that
    made them (one request executed twice is a duplicate even when another of its kind is
    missing, so the two cannot cancel out in a count by kind)."""

    groups: Counter[tuple[str, Any]]
    bodies: Counter[tuple[str, Any, str | None]]

    @classmethod
    def of(cls, effects: Sequence[SideEffect], exchanges: Sequence[Exchange]) -> Reference:
        return cls(effect_groups(effects), _bodies(effects, exchanges))


def _doubled(
    effects: Sequence[SideEffect], exchanges: Sequence[Exchange], reference: Reference
) -> list[tuple[str, Any]]:
    counts = effect_groups(effects)
    doubled = [g for g, n in counts.items() if n > max(1, reference.groups.get(g, 0))]
    for body, n in _bodies(effects, exchanges).items():
        kind, target, fingerprint = body
        over = n > max(1, reference.bodies.get(body, 0))
        if fingerprint is not None and over and (kind, target) not in doubled:
            doubled.append((kind, target))
    return doubled


def judge(
    outcome: str,
    effects: Sequence[SideEffect],
    exchanges: Sequence[Exchange],
    reference: Reference,
) -> tuple[str, list[tuple[str, Any]]]:
    """The verdict and the (kind, target) groups it is about."""
    if outcome == "hung":
        return "hang", []
    doubled = _doubled(effects, exchanges, reference)
    if doubled:
        return "duplicate", doubled
    if outcome == "returned":
        counts = effect_groups(effects)
        missing = [g for g, n in reference.groups.items() if counts.get(g, 0) < n]
        return ("lost", missing) if missing else ("safe", [])
    return ("ambiguous", list(effect_groups(effects))) if effects else ("safe", [])


def attribute(
    verdict: str,
    groups: Sequence[tuple[str, Any]],
    effects: Sequence[SideEffect],
    exchanges: Sequence[Exchange],
    faults: Sequence[PlannedFault],
    policy: Policy,
    variant: str,
    run_timeout: float = 5.0,
) -> Attribution | None:
    """Who the verdict is on, quoting the variant's rule when it follows from one."""
    if verdict == "safe":
        return None
    if verdict == "hang":
        return Attribution(
            "client",
            f"the operation did not finish within run_timeout={run_timeout:g} s: give its "
            "calls a timeout (or raise run_timeout if it is only slow)",
        )
    if verdict == "lost":
        return Attribution(
            "client",
            "the operation returned normally but its side effect does not exist "
            "(an error swallowed, or no retry after a lost response)",
        )
    if verdict == "ambiguous":
        saved = _saved_5xx(exchanges, policy, variant)
        if saved is not None:
            return saved
        return Attribution(
            "client",
            "the side effect was committed but the operation raised: the caller believes it failed",
        )
    doubled = [e for e in effects if _group(e) in set(groups)]
    return _duplicate(doubled, exchanges, faults, policy, variant)


def _saved_5xx(exchanges: Sequence[Exchange], policy: Policy, variant: str) -> Attribution | None:
    """The operation raised after a retry met the stored 5xx replayed: the variant keeps that
    answer for the key, so no retry with it could have succeeded (whatever the last attempt
    then met)."""
    if not any(e.decision == "replayed" and (e.status or 0) >= 500 for e in exchanges):
        return None
    rule = QUOTES.get(variant, {}).get("5xx_saved", "cache_5xx=True: a stored 5xx is replayed")
    return Attribution(
        "provider", f"the variant stores the 5xx and replays it to every retry: {rule!r}"
    )


def _duplicate(
    doubled: Sequence[SideEffect],
    exchanges: Sequence[Exchange],
    faults: Sequence[PlannedFault],
    policy: Policy,
    variant: str,
) -> Attribution:
    quotes = QUOTES.get(variant, {})
    keys = {e.key for e in doubled}
    first = doubled[0]
    if None in keys:
        if not policy.honours_key(first.method, first.path):
            rule = quotes.get(
                "not_keyed", f"{first.method} {first.path} does not honour idempotency keys"
            )
            return Attribution(
                "client", f"the client retried a write that is not idempotent: {rule!r}"
            )
        return Attribution("client", "the requests carried no idempotency key")
    if len(keys) > 1:
        crashed = any(f.name == CRASH for f in faults)
        what = (
            "the restarted invocation minted a new key: derive it from the logical operation"
            if crashed
            else "a retry carried a new idempotency key"
        )
        hint = quotes.get("new_key")
        return Attribution("client", what + (f" ({hint!r})" if hint else ""))
    return _same_key(doubled, exchanges, faults, policy, quotes)


def _same_key(
    doubled: Sequence[SideEffect],
    exchanges: Sequence[Exchange],
    faults: Sequence[PlannedFault],
    policy: Policy,
    quotes: dict[str, str],
) -> Attribution:
    by_seq = {e.seq: e for e in exchanges}
    sources = [by_seq[s.exchange_seq] for s in doubled if s.exchange_seq in by_seq]
    uncached = [
        e
        for e in sources
        if e.status is not None and e.status >= 500 and not policy.caches(e.status)
    ]
    names = {f.name for f in faults}
    if uncached:
        rule = quotes.get("5xx", "cache_5xx=False: a 5xx is not stored, so a retry runs again")
        return Attribution("provider", f"the variant does not store a 5xx: {rule!r}")
    if "restart_records_lost" in names:
        return Attribution("hazard", "the server restarted and lost its idempotency records")
    if "ttl_expired" in names:
        rule = quotes.get("ttl", f"records are kept {policy.ttl} s")
        return Attribution("hazard", f"the key's TTL ran out before the retry: {rule!r}")
    return Attribution("provider", "the same key executed more than once")
