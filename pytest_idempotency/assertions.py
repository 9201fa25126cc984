"""Assertions over the journal. Each failure is an ``AssertionError`` that ends with the
timeline of what the server saw."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping

from .fingerprint import canonical_params, parse_body
from .journal import DECISIONS, Exchange, Journal, SideEffect
from .timeline import expiry_text, render_timeline

__all__ = [
    "assert_all_keyed",
    "assert_exactly_once",
    "assert_fresh",
    "assert_never_saw",
    "assert_replayed",
    "assert_same_key_on_retries",
    "assert_saw",
    "assert_saw_header",
    "assert_side_effect_counts",
    "assert_side_effects",
]


def _texts(**given: object) -> None:
    """A ``TypeError`` naming the first filter of ``given`` that is neither a str nor None."""
    for name, value in given.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name}= filters by a str (or None for any), not {value!r:.60}")


def _count(value: object, name: str, least: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number (int), not {value!r:.60}")
    if value < least:
        raise ValueError(f"{name} must be >= {least} (got {value})")


def _decision(value: object, name: str = "decision") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {', '.join(DECISIONS)} (got {value!r:.60})")
    if value not in DECISIONS:
        raise ValueError(f"unknown {name} {value!r:.60}; the decisions are {', '.join(DECISIONS)}")
    return value


def _fail(journal: Journal, message: str) -> None:
    __tracebackhide__ = True
    raise AssertionError(f"{message}\n\nWhat the fake server saw:\n{render_timeline(journal)}")


def _effects(
    journal: Journal,
    key: str | None,
    path: str | None,
    resource: str | None,
    kind: str | None,
) -> list[SideEffect]:
    _texts(key=key, path=path, resource=resource, kind=kind)
    return [
        s
        for s in journal.side_effects
        if (key is None or s.key == key)
        and (path is None or s.path == path)
        and (resource is None or s.resource == resource)
        and (kind is None or s.kind == kind)
    ]


def _where(key: str | None, path: str | None, resource: str | None, kind: str | None) -> str:
    parts = [
        f"key={key!r}" if key is not None else "",
        f"path={path!r}" if path is not None else "",
        f"resource={resource!r}" if resource is not None else "",
        f"kind={kind!r}" if kind is not None else "",
    ]
    text = ", ".join(p for p in parts if p)
    return f" ({text})" if text else ""


def assert_side_effects(
    journal: Journal,
    count: int,
    *,
    key: str | None = None,
    path: str | None = None,
    resource: str | None = None,
    kind: str | None = None,
) -> None:
    """Exactly ``count`` side effects happened (optionally only those matching the filters)."""
    __tracebackhide__ = True
    _count(count, "count")
    found = _effects(journal, key, path, resource, kind)
    if len(found) != count:
        listed = _lines(
            f"\n  - {s.kind} {s.resource_id or ''} by request #{s.exchange_seq} (key {s.key!r})"
            for s in found
        )
        _fail(
            journal,
            f"expected {count} side effect(s){_where(key, path, resource, kind)}, "
            f"the server executed {len(found)}:{listed or ' none'}",
        )


#: Most entries a failure message lists (the timeline below it shows the traffic anyway).
_MOST_LISTED = 20


def _listed(parts: Iterable[str], joint: str, more: str) -> str:
    """The first :data:`_MOST_LISTED` parts joined by ``joint``, then ``more`` saying how many
    more there were."""
    rest_of = iter(parts)
    kept = list(itertools.islice(rest_of, _MOST_LISTED + 1))
    if len(kept) <= _MOST_LISTED:
        return joint.join(kept)
    rest = sum(1 for _ in rest_of) + 1
    return joint.join(kept[:_MOST_LISTED]) + more.format(rest)


def _lines(lines: Iterable[str]) -> str:
    return _listed(lines, "", "\n  ... and {} more")


def _items(items: Iterable[str]) -> str:
    return _listed(items, ", ", ", ... and {} more")


def assert_exactly_once(
    journal: Journal,
    *,
    key: str | None = None,
    path: str | None = None,
    resource: str | None = None,
    kind: str | None = None,
) -> None:
    """The retries caused exactly one side effect (for a key, a path, or the whole test)."""
    __tracebackhide__ = True
    found = _effects(journal, key, path, resource, kind)
    if len(found) == 1:
        return
    if not found:
        _fail(
            journal,
            f"expected exactly one side effect{_where(key, path, resource, kind)}, "
            "the server executed none",
        )
    keys = sorted({str(s.key) for s in found})
    hint = ""
    if len(keys) > 1:
        hint = (
            f"\nThey came under {len(keys)} different keys ({_items(k[:80] for k in keys)}): "
            "does the client mint a new idempotency key per retry?"
        )
    elif keys == ["None"]:
        hint = "\nThe requests carried no idempotency key."
    else:
        hint = _expiry_hint(journal, found) or (
            "\nThey share one key: the variant re-ran the handler (an uncached 5xx, an expired "
            "TTL, another endpoint or tenant in the key's scope)."
        )
    listed = _lines(
        f"\n  - {s.kind} {s.resource_id or ''} by request #{s.exchange_seq} (key {s.key!r})"
        for s in found
    )
    _fail(
        journal,
        f"expected exactly one side effect{_where(key, path, resource, kind)}, "
        f"the server executed {len(found)}:{listed}{hint}",
    )


def _expiry_hint(journal: Journal, found: list[SideEffect]) -> str:
    """Why a key ran again when the reason is an expired record, or ``""``."""
    exchanges = journal.exchanges
    if not exchanges:
        return ""
    origin = exchanges[0].at
    seqs = {s.exchange_seq for s in found}
    reasons = [
        f"\n{text}, so request #{e.seq} ran the handler again under the same key"
        for e in exchanges
        if e.seq in seqs and (text := expiry_text(e, origin)) is not None
    ]
    if not reasons:
        return ""
    return "".join(reasons) + (
        " (the key outlived the variant's TTL; the client did reuse its key). Retry sooner, "
        "or raise the TTL: @pytest.mark.idempotency(ttl=...)."
    )


def assert_side_effect_counts(journal: Journal, expected: Mapping[str, int]) -> None:
    """Side effects per resource equal ``expected`` (``{"task": 1, "upload": 2}``): a resource
    left out of ``expected`` must have none (a duplicate of a resource the test did not name is
    exactly what this is for)."""
    __tracebackhide__ = True
    if not isinstance(expected, Mapping):
        raise TypeError(
            f"expected must be a mapping of resource to count such as {{'task': 1}}, "
            f"not {expected!r:.60}"
        )
    for name, count in expected.items():
        _texts(resource=name)
        _count(count, f"expected[{name!r}]")
    actual: dict[str, int] = defaultdict(int)
    for effect in journal.side_effects:
        actual[effect.resource] += 1
    wrong = {
        name: (expected.get(name, 0), actual.get(name, 0))
        for name in {*expected, *actual}
        if actual.get(name, 0) != expected.get(name, 0)
    }
    if wrong:
        lines = "".join(f"\n  - {n}: expected {e}, got {a}" for n, (e, a) in sorted(wrong.items()))
        _fail(journal, f"side effects per resource differ:{lines}")


def _operation(exchange: Exchange) -> str:
    try:
        params = parse_body(exchange.body, exchange.content_type)
    except ValueError:
        params = exchange.body.decode("utf-8", "replace")
    return f"{exchange.method} {exchange.path} {canonical_params(params)}"


def assert_same_key_on_retries(
    journal: Journal, *, method: str | None = None, path: str | None = None
) -> None:
    """Every retry of an operation (same method, path and parameters) reused one key, and no
    two different operations shared a key. Requests the idempotency layer ignored
    (``not_applicable``) and ones rejected before it are not counted."""
    __tracebackhide__ = True
    _texts(method=method, path=path)
    keys_by_op: dict[str, list[Exchange]] = defaultdict(list)
    ops_by_key: dict[tuple[str | None, str], set[str]] = defaultdict(set)
    for exchange in journal.exchanges:
        if exchange.decision in ("not_applicable", "rejected"):
            continue
        if method is not None and exchange.method != method.upper():
            continue
        if path is not None and exchange.path != path:
            continue
        op = _operation(exchange)
        keys_by_op[op].append(exchange)
        if exchange.key is not None:
            ops_by_key[(exchange.tenant, exchange.key)].add(op)
    problems: list[str] = []
    for op, exchanges in keys_by_op.items():
        keys = []
        for e in exchanges:
            if e.key not in keys:
                keys.append(e.key)
        if len(keys) > 1:
            seqs = ", ".join(f"#{e.seq} key={e.key!r}" for e in exchanges)
            problems.append(
                f"one operation ({op[:80]}) was sent {len(exchanges)} times under "
                f"{len(keys)} keys: {seqs}; a retry must resend the key of the first attempt"
            )
    for (_, key), ops in ops_by_key.items():
        if len(ops) > 1:
            problems.append(
                f"key {key!r} was used for {len(ops)} different operations; each logical "
                "operation needs its own key"
            )
    if problems:
        _fail(journal, "keys were not used one per operation:\n  - " + "\n  - ".join(problems))


def assert_all_keyed(journal: Journal) -> None:
    """Every request to a route that honours the key carried one."""
    __tracebackhide__ = True
    missing = [e for e in journal.exchanges if e.decision == "no_key"]
    if missing:
        listed = _items(f"#{e.seq} {e.method} {e.path}" for e in missing)
        _fail(
            journal,
            f"{len(missing)} mutating request(s) carried no idempotency key: {listed}; "
            "a retry of such a request can execute twice",
        )


def _pick(journal: Journal, key: str | None, seq: int | None) -> Exchange:
    __tracebackhide__ = True
    _texts(key=key)
    if seq is not None:
        _count(seq, "seq", least=1)
    if seq is not None:
        for exchange in journal.exchanges:
            if exchange.seq == seq:
                return exchange
        _fail(journal, f"there is no request #{seq}")
    candidates = [e for e in journal.exchanges if key is None or e.key == key]
    if not candidates:
        _fail(
            journal, f"no request{'' if key is None else f' with key {key!r}'} reached the server"
        )
    return candidates[-1]


def assert_replayed(journal: Journal, *, key: str | None = None, seq: int | None = None) -> None:
    """The last request (with ``key``, or number ``seq``) was answered from the record."""
    __tracebackhide__ = True
    exchange = _pick(journal, key, seq)
    if exchange.decision != "replayed":
        _fail(journal, f"request #{exchange.seq} was {exchange.decision!s}, not replayed")


def assert_fresh(journal: Journal, *, key: str | None = None, seq: int | None = None) -> None:
    """The last request (with ``key``, or number ``seq``) ran the handler."""
    __tracebackhide__ = True
    exchange = _pick(journal, key, seq)
    if not exchange.committed:
        _fail(
            journal,
            f"request #{exchange.seq} was {exchange.decision!s}, not a fresh execution",
        )


def assert_saw(
    journal: Journal, decision: str, *, key: str | None = None, count: int | None = None
) -> None:
    """At least one (or exactly ``count``) exchange had ``decision`` (``conflict``,
    ``in_flight``, ``replayed``, ...)."""
    __tracebackhide__ = True
    _decision(decision)
    _texts(key=key)
    if count is not None:
        _count(count, "count")
    found = [
        e for e in journal.exchanges if e.decision == decision and (key is None or e.key == key)
    ]
    if count is None and not found:
        _fail(journal, f"expected a {decision} answer, the server gave none")
    if count is not None and len(found) != count:
        _fail(journal, f"expected {count} {decision} answer(s), the server gave {len(found)}")


def assert_never_saw(journal: Journal, decisions: str | Iterable[str]) -> None:
    """No exchange had any of ``decisions``."""
    __tracebackhide__ = True
    if not isinstance(decisions, (str, Iterable)):
        raise TypeError(f"decisions must be a str or a list of strs, not {decisions!r:.60}")
    given = [decisions] if isinstance(decisions, str) else list(decisions)
    wanted = {_decision(decision, "decisions") for decision in given}
    found = [e for e in journal.exchanges if e.decision in wanted]
    if found:
        listed = _items(f"#{e.seq} {e.decision}" for e in found)
        _fail(
            journal, f"expected no {' / '.join(sorted(wanted))} answer, the server gave: {listed}"
        )


def assert_saw_header(
    journal: Journal,
    name: str,
    value: str | None = None,
    *,
    key: str | None = None,
    seq: int | None = None,
    every: bool = False,
) -> None:
    """The last request (with ``key``, or number ``seq``) sent header ``name`` (with exactly
    ``value``, when given); with ``every=True``, every request (with ``key``) did."""
    __tracebackhide__ = True
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"name must be a header name as a str, such as 'User-Agent' (got {name!r:.60})"
        )
    _texts(value=value, key=key)
    if not isinstance(every, bool):
        raise TypeError(f"every must be True or False, not {every!r:.60}")
    if every:
        checked = [e for e in journal.exchanges if key is None or e.key == key]
        if not checked:
            _fail(journal, f"no request{'' if key is None else f' with key {key!r}'} arrived")
    else:
        checked = [_pick(journal, key, seq)]
    wanted = name if value is None else f"{name}: {value}"
    missing = [e for e in checked if not e.has_header(name, value)]
    if missing:
        listed = _lines(
            f"\n  - #{e.seq} {e.method} {e.path} sent {name}: "
            + (", ".join(repr(v) for v in e.header_values(name)) or "(no such header)")
            for e in missing
        )
        _fail(journal, f"expected the request(s) to send {wanted}:{listed}")
