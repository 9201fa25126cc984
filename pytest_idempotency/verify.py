"""The verify call of the admin API: the fixture's teardown checks and the journal assertions,
over HTTP, so a suite in another language need not count side effects itself.

``POST /__admin/verify`` with ``{}`` runs the teardown checks; expectations add assertions:
``{"exactly_once": true}``, ``{"exactly_once": {"key": "k-1"}}``, ``{"side_effects": 2}``,
``{"same_key_on_retries": true}``, ``{"all_keyed": true}``; ``{"disable": [CHECK, ...]}`` turns
teardown checks off by the same names as the pytest marker's options.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import assertions as _a
from .api import CHECKS, teardown_problems
from .faults import FaultPlan
from .journal import Journal
from .timeline import render_timeline

__all__ = ["EXPECTATIONS", "VerifyError", "verify"]

_FILTERS = ("key", "path", "resource", "kind")
_HEADING = "\n\nWhat the fake server saw:\n"


class VerifyError(ValueError):
    """A verify call that cannot be understood; the message names the fix."""


def _filters(name: str, spec: Any, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    allowed = (*extra, *_FILTERS)
    if not isinstance(spec, dict):
        raise VerifyError(
            f'"{name}" takes true or an object with {", ".join(allowed)} (got {json.dumps(spec)})'
        )
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise VerifyError(
            f'unknown field(s) {", ".join(unknown)} in "{name}"; use {", ".join(allowed)}'
        )
    for field in _FILTERS:
        value = spec.get(field)
        if value is not None and not isinstance(value, str):
            raise VerifyError(f'"{name}.{field}" must be a string (got {json.dumps(value)})')
    return {field: spec[field] for field in _FILTERS if spec.get(field) is not None}


def _flag(name: str, spec: Any) -> bool:
    if not isinstance(spec, bool):
        raise VerifyError(f'"{name}" takes true or false (got {json.dumps(spec)})')
    return spec


def _exactly_once(journal: Journal, spec: Any) -> None:
    if spec is False:
        return
    filters = {} if spec is True else _filters("exactly_once", spec)
    _a.assert_exactly_once(journal, **filters)


def _side_effects(journal: Journal, spec: Any) -> None:
    if isinstance(spec, dict):
        count, filters = spec.get("count"), _filters("side_effects", spec, ("count",))
    else:
        count, filters = spec, {}
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise VerifyError(
            '"side_effects" takes a count >= 0 or {"count": N, "path": ...} '
            f"(got {json.dumps(spec)})"
        )
    _a.assert_side_effects(journal, count, **filters)


def _same_key_on_retries(journal: Journal, spec: Any) -> None:
    if _flag("same_key_on_retries", spec):
        _a.assert_same_key_on_retries(journal)


def _all_keyed(journal: Journal, spec: Any) -> None:
    if _flag("all_keyed", spec):
        _a.assert_all_keyed(journal)


#: Expectation name -> its check (raises ``AssertionError`` when the journal disagrees).
EXPECTATIONS: dict[str, Callable[[Journal, Any], None]] = {
    "exactly_once": _exactly_once,
    "side_effects": _side_effects,
    "same_key_on_retries": _same_key_on_retries,
    "all_keyed": _all_keyed,
}


def _disabled(spec: Any) -> list[str]:
    if not isinstance(spec, list) or not all(isinstance(name, str) for name in spec):
        raise VerifyError(
            f'"disable" takes a list of check names such as ["assert_all_faults_fired"] '
            f"(got {json.dumps(spec)})"
        )
    unknown = [name for name in spec if name not in CHECKS]
    if unknown:
        raise VerifyError(
            f'unknown check(s) {", ".join(unknown)} in "disable"; '
            f"the checks are {', '.join(CHECKS)}"
        )
    return list(spec)


def verify(journal: Journal, faults: FaultPlan, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``(status, payload)``: 200 ``{"ok": true, ...}`` when every check passes, else 409 with
    each problem (``check`` and ``text``), how to opt out of the teardown checks that failed,
    and the timeline. Read-only: nothing is released or reset."""
    unknown = sorted(set(body) - {*EXPECTATIONS, "disable"})
    if unknown:
        raise VerifyError(
            f"unknown field(s) {', '.join(unknown)}; verify takes "
            f'{", ".join(EXPECTATIONS)} and disable, e.g. {{"exactly_once": true}}'
        )
    disabled = _disabled(body.get("disable", []))
    found = teardown_problems(journal, faults, disabled)
    problems = [{"check": check, "text": text} for check, text in found]
    for name, check in EXPECTATIONS.items():
        if name not in body:
            continue
        try:
            check(journal, body[name])
        except AssertionError as exc:
            problems.append({"check": name, "text": str(exc).split(_HEADING, 1)[0]})
    payload: dict[str, Any] = {
        "ok": not problems,
        "problems": problems,
        "requests": len(journal.exchanges),
        "side_effects": len(journal.side_effects),
    }
    if not problems:
        return 200, payload
    if found:
        payload["opt_out"] = {"disable": sorted({check for check, _ in found})}
    payload["timeline"] = render_timeline(journal)
    return 409, payload
