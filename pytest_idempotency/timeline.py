"""The journal as a readable table, and field diffs of bodies sent under one key."""

from __future__ import annotations

import json
import math
from typing import Any

from .fingerprint import parse_body
from .journal import Exchange, Journal

__all__ = ["body_diff", "expiry_text", "render_timeline", "short_offset"]

_COLUMNS = ("#", "clock", "request", "key", "body", "decision", "status", "wire", "effects")


def _offset(seconds: float) -> str:
    if not math.isfinite(seconds):
        return f"{seconds:+}s"  # a clock that cannot be read never breaks the table
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.3f}s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{int(hours)}h{int(minutes):02d}m{secs:04.1f}s"


def short_offset(seconds: float) -> str:
    """A fake-clock offset for prose: ``+24h00m``, ``+1h30m05.5s``, ``+12.000s``."""
    if abs(seconds) < 60 or not math.isfinite(seconds):
        return _offset(seconds)
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    tail = "" if round(secs, 1) == 0 else f"{secs:04.1f}s"
    return f"{sign}{int(hours)}h{int(minutes):02d}m{tail}"


def expiry_text(exchange: Exchange, origin: float) -> str | None:
    """``the record of #1 expired at +24h00m`` when ``exchange`` ran because of an expiry."""
    if exchange.expired is None:
        return None
    seq, at = exchange.expired
    text = f"the record of #{seq} expired at {short_offset(at - origin)}"
    decided = exchange.decided_at
    if decided is not None and exchange.at < at:  # arrived before, decided after the expiry
        text += (
            f"; #{exchange.seq} arrived at {short_offset(exchange.at - origin)} and was "
            f"decided at {short_offset(decided - origin)}"
        )
    return text


def _short(text: str | None, width: int) -> str:
    if text is None:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "~"


def _row(exchange: Exchange, start: float) -> tuple[str, ...]:
    effects = ",".join(f"{s.kind}" for s in exchange.side_effects) or "-"
    decision = exchange.decision or f"({exchange.fault or 'none'})"
    if exchange.replay_of is not None and exchange.decision in (
        "replayed",
        "conflict",
        "in_flight",
    ):
        decision += f" of #{exchange.replay_of}"
    if exchange.expired is not None:
        decision += f" (#{exchange.expired[0]} expired)"
    wire: str = exchange.wire
    if exchange.fault and exchange.fault not in wire:
        wire = f"{wire} [{exchange.fault}]"
    return (
        str(exchange.seq),
        _offset(exchange.at - start),
        _short(f"{exchange.method} {exchange.path}", 34),
        _short(exchange.key, 26),
        exchange.fingerprint[:8] if exchange.fingerprint else "-",
        decision,
        str(exchange.status) if exchange.status is not None else "-",
        wire,
        _short(effects, 30),
    )


def render_timeline(journal: Journal, *, start: float | None = None, limit: int = 200) -> str:
    """The exchanges as a table: sequence, time on the fake clock (from the first request),
    request, key, body fingerprint, decision, status, what went out on the wire, side effects.
    Conflicts are followed by a field diff against the body first sent with that key."""
    exchanges = journal.exchanges
    if not exchanges:
        return "(the fake server received no request in this test, or since its last reset)"
    origin = exchanges[0].at if start is None else start
    shown = exchanges[-limit:]
    rows = [_COLUMNS, *(_row(e, origin) for e in shown)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(exchanges) > limit:
        lines.insert(0, f"(first {len(exchanges) - limit} exchanges not shown)")
    dropped = journal.dropped_exchanges
    if dropped:
        lines.insert(
            0,
            f"({dropped} earlier exchanges and {journal.dropped_side_effects} side effects were "
            f"dropped by the journal's retention limit of {journal.limit}; counts are exact)",
        )
    by_seq = {e.seq: e for e in exchanges}
    for exchange in shown:
        if exchange.decision == "conflict" and exchange.replay_of in by_seq:
            first = by_seq[exchange.replay_of]
            diff = body_diff(first, exchange)
            lines.append("")
            lines.append(
                f"#{exchange.seq} reused key {exchange.key!r} of #{first.seq} with another body:"
            )
            lines.extend(f"    {line}" for line in diff)
    expiries = [(e, expiry_text(e, origin)) for e in shown if e.expired is not None]
    if expiries:
        lines.append("")
        lines.extend(f"#{e.seq} ran the handler again: {text}" for e, text in expiries)
    lines.append("")
    lines.append(
        f"{journal.total_exchanges} request(s), {journal.total_side_effects} side effect(s)"
    )
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            out.update(_flatten(item, f"{prefix}.{name}" if prefix else str(name)))
        return out or {prefix or "(body)": {}}
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out or {prefix or "(body)": []}
    return {prefix or "(body)": value}


def _parsed(exchange: Exchange) -> Any:
    try:
        return parse_body(exchange.body, exchange.content_type)
    except ValueError:
        return exchange.body.decode("utf-8", "replace")


#: How much of one value, and how many fields, a body diff shows.
_LONGEST_SHOWN = 200
_MOST_FIELDS = 20


def _shown(value: object) -> str:
    """``value`` as JSON, cut past :data:`_LONGEST_SHOWN` characters (saying how long it was)."""
    text = json.dumps(value)
    if len(text) <= _LONGEST_SHOWN:
        return text
    return f"{text[:_LONGEST_SHOWN]}... ({len(text):,} characters)"


def body_diff(first: Exchange, second: Exchange) -> list[str]:
    """Field-by-field differences between two request bodies: ``field: old -> new``."""
    old, new = _flatten(_parsed(first)), _flatten(_parsed(second))
    lines = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            lines.append(f"- {name[:80]}: {_shown(old[name])} (only in #{first.seq})")
        elif name not in old:
            lines.append(f"+ {name[:80]}: {_shown(new[name])} (only in #{second.seq})")
        elif old[name] != new[name]:
            lines.append(f"~ {name[:80]}: {_shown(old[name])} -> {_shown(new[name])}")
        if len(lines) > _MOST_FIELDS:
            lines[-1] = f"... and more fields differ (of {len(set(old) | set(new))})"
            break
    if not lines:
        lines.append("(same parameters; the bytes differ, e.g. key order or spacing)")
    return lines
