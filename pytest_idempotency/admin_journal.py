"""The admin API's reading room: ``GET /__admin/journal`` (filtered, paged, encoded exchange by
exchange), ``GET /__admin/side-effects``, ``GET /__admin/timeline`` and ``POST /__admin/verify``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .admin_calls import MAX_WAIT, AdminError, Payload
from .app import ADMIN_TEXT_KEY
from .journal import DECISIONS, Journal
from .jsontext import object_with_list
from .timeline import render_timeline
from .verify import VerifyError
from .verify import verify as verify_journal

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from .admin import Admin
    from .app import App

__all__ = ["ROUTES"]


def _journal(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    journal = app.state.journal
    args = request.args
    if "wait_for" in args:
        raw = args["wait_for"]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise AdminError(
                400, f"wait_for must be a whole number of requests (got {json.dumps(raw)})"
            )
        try:
            timeout = float(args.get("timeout", "5"))
        except ValueError:
            timeout = math.nan
        if not 0.0 <= timeout < math.inf:
            raise AdminError(
                400, f"timeout must be seconds >= 0 (got {json.dumps(args['timeout'])})"
            )
        try:
            journal.wait_for_requests(
                int(raw), timeout=min(timeout, MAX_WAIT), where=admin.url(request)
            )
        except TimeoutError as exc:
            raise AdminError(409, str(exc)) from None
    decision = args.get("decision")
    if decision is not None and decision not in DECISIONS:
        raise AdminError(
            400, f"decision must be one of {', '.join(DECISIONS)} (got {json.dumps(decision)})"
        )
    known = {"wait_for", "timeout", "decision", "method", "path", "key", "after", "limit"}
    unknown = sorted(set(args) - known)
    if unknown:
        raise AdminError(
            400,
            f"unknown filter(s) {', '.join(unknown)}; use method, path, key, decision, "
            "after, limit",
        )
    after, count = _whole(args, "after", 0), _whole(args, "limit", None)
    page = journal.page(after or 0, count)
    exchanges = [
        e
        for e in page
        if (args.get("method") is None or e.method == args["method"].upper())
        and (args.get("path") is None or e.path == args["path"])
        and (args.get("key") is None or e.key == args["key"])
        and (decision is None or e.decision == decision)
    ]
    rest = {
        "problems": [{"category": c, "text": t} for c, t in journal.problems],
        **_retention(journal),
        "next_after": page[-1].seq if page and count is not None and len(page) == count else None,
    }
    with admin.journal_reads:
        return 200, object_with_list("exchanges", (e.as_dict() for e in exchanges), rest)


def _whole(args: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise AdminError(400, f"{name} must be a whole number (got {raw[:40]!r})")
    return int(raw)


def _retention(journal: Journal) -> dict[str, Any]:
    """What the journal keeps and what it dropped (exact counts, whatever the limit)."""
    return {
        "retention": journal.limit,
        "total_exchanges": journal.total_exchanges,
        "dropped_exchanges": journal.dropped_exchanges,
        "total_side_effects": journal.total_side_effects,
        "dropped_side_effects": journal.dropped_side_effects,
        "dropped_problems": journal.dropped_problems,
    }


def _side_effects(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    journal = app.state.journal
    effects = journal.side_effects
    return 200, {
        "side_effects": [s.as_dict() for s in effects],
        "count": journal.total_side_effects,
        **_retention(journal),
    }


def _timeline(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    """The timeline as JSON ``{"timeline": TEXT}``, or as the text itself with
    ``Accept: text/plain`` or ``?format=text``."""
    unknown = sorted(set(request.args) - {"format"})
    if unknown:
        raise AdminError(400, f"unknown parameter(s) {', '.join(unknown)}; use format=text")
    wanted = request.args.get("format")
    if wanted not in (None, "text", "json"):
        raise AdminError(400, f"format must be text or json (got {json.dumps(wanted)})")
    if wanted is None:
        best = request.accept_mimetypes.best_match(["application/json", "text/plain"])
        wanted = "text" if best == "text/plain" else "json"
    timeline = render_timeline(app.state.journal)
    if wanted == "text":
        request.environ[ADMIN_TEXT_KEY] = timeline + "\n"
    return 200, {"timeline": timeline}


def _verify(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    """The teardown checks and the expectations in ``body``: 200 or 409 with the problems."""
    try:
        return verify_journal(app.state.journal, app.state.faults, body)
    except VerifyError as exc:
        raise AdminError(400, str(exc)) from None


Handler = Callable[["Admin", "App", "Request", dict[str, Any]], Payload]

ROUTES: dict[str, dict[str, Handler]] = {
    "journal": {"GET": _journal},
    "side-effects": {"GET": _side_effects},
    "timeline": {"GET": _timeline},
    "verify": {"POST": _verify},
}
