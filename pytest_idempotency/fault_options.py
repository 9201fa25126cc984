"""What a fault may be: its kinds and the points where they act, and every option of a scripted
or seeded fault checked where it is taken (a wrong type is a :class:`FaultTypeError`, a wrong
value a :class:`FaultError`, each naming the option)."""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from .clock import LATEST, check_seconds
from .policy import PolicyError, check_answer_status, check_header, is_header_name
from .routes import parse_route

__all__ = [
    "CHAOS_KINDS",
    "BatchFaults",
    "FAULT_KINDS",
    "FAULT_POINTS",
    "MAX_FAULT_WAIT",
    "MAX_FAULTS",
    "POINTS",
    "FaultError",
    "FaultTypeError",
    "KIND_OPTIONS",
    "MATCHERS",
    "chaos_settings",
    "check_count",
    "fault_fields",
]

FAULT_KINDS: tuple[str, ...] = (
    "drop",
    "reset",
    "slow",
    "error_before",
    "error_after",
    "hold",
    "partial_batch",
    "garbage",
    "restart",
    "in_flight",
    "late",
    "clock_jump",
    "latency",
)
#: The named points of a request's life where faults act, in the order they are reached.
POINTS: tuple[str, ...] = (
    "arrival",
    "clock",
    "before_layer",
    "claim",
    "handler",
    "commit",
    "wire",
)
#: Every fault kind -> the point of the request's life where it acts.
FAULT_POINTS: dict[str, str] = {
    "latency": "arrival",
    "clock_jump": "clock",
    "reset": "before_layer",
    "restart": "before_layer",
    "error_before": "before_layer",
    "hold": "claim",
    "in_flight": "claim",
    "partial_batch": "handler",
    "error_after": "commit",
    "drop": "wire",
    "slow": "wire",
    "late": "wire",
    "garbage": "wire",
}
#: Kinds that seeded chaos may pick (hold and slow wait for a release; batch needs targets).
CHAOS_KINDS: tuple[str, ...] = ("drop", "reset", "error_before", "error_after", "garbage")
_ALIASES = {
    "lost_response": "drop",
    "drop_response": "drop",
    "connection_reset": "reset",
    "reset_connection": "reset",
    "slow_response": "slow",
    "error_before_commit": "error_before",
    "error_after_commit": "error_after",
    "hold_in_flight": "hold",
    "late_response": "late",
    "delay": "latency",
}
_DEFAULT_SECONDS = {"in_flight": 10.0, "late": 10.0}
_RETRYABLE_STATUSES = (429, 500, 502, 503, 504)


class FaultError(ValueError):
    """A fault that cannot be scripted as asked; the message names the fix."""


class FaultTypeError(FaultError, TypeError):
    """A fault option of the wrong type (a ``TypeError`` too); the message names the option."""


#: Longest real-time wait a fault asks for (``latency``, ``slow``, ``in_flight``, ``late``):
#: an hour, as the admin API's; for longer, omit ``seconds`` and release the fault.
MAX_FAULT_WAIT = 3600.0
#: Most faults one plan scripts at once (chosen: a test scripts a handful; ids are positions,
#: so past it the next one is refused rather than an old one forgotten).
MAX_FAULTS = 1000
#: What every fault is matched by, whatever its kind.
MATCHERS: tuple[str, ...] = ("method", "path", "key", "attempt", "seq", "times")
#: Every fault kind -> the options of its own that it takes (beside the matchers).
KIND_OPTIONS: dict[str, tuple[str, ...]] = {
    "drop": (),
    "reset": (),
    "hold": (),
    "slow": ("seconds",),
    "error_before": ("status", "retry_after"),
    "error_after": ("status", "retry_after"),
    "partial_batch": ("failures",),
    "garbage": ("style",),
    "restart": ("keep_records",),
    "in_flight": ("seconds",),
    "late": ("seconds",),
    "clock_jump": ("seconds",),
    "latency": ("seconds",),
}
_OPTIONS = frozenset(MATCHERS).union(*KIND_OPTIONS.values())


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _count_from_one(value: Any, name: str) -> int | None:
    if value is not None and not _whole(value):
        raise FaultTypeError(f"{name} counts from 1 (got {value!r:.60}, not a whole number)")
    if value is not None and value < 1:
        raise FaultError(f"{name} counts from 1 (got {value!r})")
    return value


def _times(value: Any) -> int | None:
    if value is not None and (not _whole(value) or value < 1):
        error = FaultError if _whole(value) else FaultTypeError
        raise error(f"times must be a whole number >= 1, or None for ever (got {value!r:.60})")
    return value


def _kind(kind: object) -> str:
    if not isinstance(kind, str):
        raise FaultTypeError(
            f"the fault kind must be a str, one of {', '.join(FAULT_KINDS)} (got {kind!r:.60})"
        )
    kind = _ALIASES.get(kind, kind)
    if kind not in FAULT_KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}")
    return kind


def _method(method: object) -> str | None:
    if method is None:
        return None
    if not isinstance(method, str):
        raise FaultTypeError(f"method must be a str such as 'POST', or None (got {method!r:.60})")
    if not is_header_name(method):
        raise FaultError(
            f"method must be an HTTP method such as 'POST' (letters, digits and "
            f"!#$%&'*+-.^_`|~ only; got {method!r:.60})"
        )
    return method.upper()


def _path(path: object) -> str | None:
    if path is not None:
        if not isinstance(path, str):
            raise FaultTypeError(f"fault path must be a str such as '/v1/tasks' (got {path!r:.60})")
        if not (path.startswith("/") or path == "*"):
            raise FaultError(f"fault path must start with '/' (got {path!r})")
        parse_route(f"* {path}")
    return path


def _key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str):
        raise FaultTypeError(f"key must be the idempotency key as a str, or None (got {key!r:.60})")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise FaultError(
            f"key {key[:40]!r} has a control character (CR, LF, ...): no request can carry "
            "it, so the fault could never match; give the key the client sends"
        )
    return key


def _status(kind: str, status: Any) -> int:
    if not _whole(status):
        raise FaultTypeError(f"status must be an HTTP status such as 503 (got {status!r:.60})")
    try:
        check_answer_status("status", status)
    except PolicyError as exc:
        raise FaultError(str(exc)) from None
    if kind == "error_after" and status < 500:
        raise FaultError(
            f"error_after is a server error after the side effect; use a 5xx (got {status})"
        )
    if kind == "error_before" and status < 400:
        raise FaultError(
            f"error_before answers an error instead of running the handler; use a 4xx or 5xx "
            f"status such as 503 (got {status})"
        )
    return status


def _retry_after(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) and not (_whole(value) and value >= 0):
        raise FaultTypeError(
            f"retry_after must be seconds as an int >= 0 or a str such as '2' or an HTTP date "
            f"(got {value!r:.60})"
        )
    text = str(value)
    try:
        check_header("retry_after", "Retry-After", text)
    except PolicyError as exc:
        raise FaultError(str(exc)) from None
    if not _is_retry_after(text):
        raise FaultError(
            "retry_after must be whole seconds from 0 to 315360000 ('2') or an HTTP date "
            f"('Wed, 21 Oct 2026 07:28:00 GMT'), as RFC 9110 has it (got {text[:60]!r})"
        )
    return text


def _is_retry_after(text: str) -> bool:
    """A ``Retry-After`` value (RFC 9110, section 10.2.3): delay-seconds (at most ten years
    here, chosen) or an HTTP date."""
    if text.isascii() and text.isdigit():
        return len(text) < 12 and int(text) <= 315_360_000
    try:
        return email.utils.parsedate_to_datetime(text) is not None
    except (TypeError, ValueError, IndexError):
        return False


def _fault_seconds(kind: str, seconds: Any) -> float | None:
    if seconds is None:
        if kind in ("clock_jump", "latency"):
            raise FaultError(f"a {kind} fault needs seconds=N (how far, in seconds)")
        return None
    # A clock jump moves the fake clock (up to its whole range); the others wait in real time.
    most = LATEST if kind == "clock_jump" else MAX_FAULT_WAIT
    try:
        return check_seconds(seconds, "seconds", maximum=most)
    except TypeError as exc:
        raise FaultTypeError(str(exc)) from None
    except ValueError as exc:
        hint = "" if kind == "clock_jump" else "; for longer, omit it and release the fault"
        raise FaultError(f"{exc}{hint}") from None


def _style(style: Any) -> str:
    if style not in ("truncated", "status_line") or not isinstance(style, str):
        raise FaultError(f"garbage style must be 'truncated' or 'status_line' (got {style!r:.60})")
    return style


def _failures(kind: str, failures: Any) -> dict[str, str]:
    if failures is None:
        failures = {}
    if not isinstance(failures, Mapping):
        raise FaultTypeError(
            "failures must be a mapping {target: 'transient' | 'permanent'} "
            f"(got {failures!r:.60})"
        )
    if kind == "partial_batch" and not failures:
        raise FaultError(
            "partial_batch needs failures={target: 'transient' | 'permanent'}; "
            "use '*' for every target"
        )
    BatchFaults(failures)
    return dict(failures)


def _sequence(value: Any, name: str, example: str) -> tuple[Any, ...]:
    """``value`` as a tuple; a bare str or a non-iterable is a :class:`FaultTypeError`."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise FaultTypeError(
            f"chaos {name} must be a list or tuple such as {example} (got {value!r:.60})"
        )
    return tuple(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise FaultTypeError(f"{name} must be True or False (got {value!r:.60})")
    return value


class BatchFaults:
    """Per-target failures for one batch request."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        for target, how in failures.items():
            if not isinstance(target, str):
                raise FaultTypeError(
                    f"partial_batch targets are strs such as 'acct_b' or '*' (got {target!r:.60})"
                )
            if how not in ("transient", "permanent"):
                raise FaultError(
                    f"partial_batch failure for {target!r} must be 'transient' or 'permanent', "
                    f"not {how!r}"
                )
        self.failures = dict(failures)

    def failure_for(self, target: str) -> str | None:
        return self.failures.get(target, self.failures.get("*"))


def _check_options(kind: str, spec: Mapping[str, Any]) -> None:
    """Refuse an option no fault has, or one another kind takes but ``kind`` would ignore."""
    own = KIND_OPTIONS[kind]
    takes = f"the {kind} fault takes {', '.join((*MATCHERS, *own))}"
    unknown = sorted(str(name) for name in spec if name not in _OPTIONS)
    if unknown:
        raise FaultError(f"unknown option(s) {', '.join(unknown)} for a {kind} fault; {takes}")
    ignored = sorted(name for name in spec if name not in MATCHERS and name not in own)
    if ignored:
        users = sorted({k for k, options in KIND_OPTIONS.items() if ignored[0] in options})
        raise FaultError(
            f"{', '.join(ignored)} would be ignored by the {kind} fault ({ignored[0]} is for "
            f"{', '.join(users)}); {takes}"
        )


def fault_fields(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a fault of ``kind`` scripted with ``spec``, every option checked."""
    kind = _kind(kind)
    _check_options(kind, spec)
    return {
        "kind": kind,
        "method": _method(spec.get("method")),
        "path": _path(spec.get("path")),
        "key": _key(spec.get("key")),
        "attempt": _count_from_one(spec.get("attempt"), "attempt"),
        "times": _times(spec.get("times", None if kind == "latency" else 1)),
        "seq": _count_from_one(spec.get("seq"), "seq"),
        "status": _status(kind, spec.get("status", 503 if kind == "error_before" else 500)),
        "retry_after": _retry_after(spec.get("retry_after")),
        "seconds": _fault_seconds(kind, spec.get("seconds", _DEFAULT_SECONDS.get(kind))),
        "style": _style(spec.get("style", "truncated")),
        "failures": _failures(kind, spec.get("failures")),
        "keep_records": _flag(spec.get("keep_records", True), "keep_records"),
    }


def chaos_settings(
    rate: Any, kinds: Any, seed: Any, statuses: Any
) -> tuple[float, tuple[str, ...], int | None, tuple[int, ...]]:
    """Seeded chaos's ``rate``, ``kinds``, ``seed`` and ``statuses``, checked."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise FaultTypeError(f"chaos rate is a number between 0 and 1 (got {rate!r:.60})")
    if not 0.0 <= rate <= 1.0:
        raise FaultError(f"chaos rate is a share between 0 and 1 (got {rate})")
    if seed is not None and not _whole(seed):
        raise FaultTypeError(f"chaos seed must be a whole number or None (got {seed!r:.60})")
    kinds, statuses = (
        _sequence(kinds, "kinds", "('drop',)"),
        _sequence(statuses, "statuses", "(503,)"),
    )
    chosen = tuple(_ALIASES.get(k, k) if isinstance(k, str) else repr(k) for k in kinds)
    bad = [k for k in chosen if k not in CHAOS_KINDS]
    if bad or not chosen:
        raise FaultError(
            f"chaos kinds must be among {', '.join(CHAOS_KINDS)} (got {', '.join(bad) or 'none'})"
        )
    codes = tuple(statuses)
    if not codes or any(c not in _RETRYABLE_STATUSES for c in codes):
        raise FaultError(f"chaos statuses must be among {_RETRYABLE_STATUSES}")
    return float(rate), chosen, seed, codes


def check_count(count: Any) -> int:
    """``wait_until_held``'s ``count``: a whole number >= 1."""
    if not _whole(count) or count < 1:
        error = FaultError if _whole(count) else FaultTypeError
        raise error(f"wait_until_held(count) takes a whole number >= 1 (got {count!r:.60})")
    return count
