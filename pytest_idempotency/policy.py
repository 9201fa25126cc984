"""The declarative idempotency contract of one variant.

A :class:`Policy` says where the key travels, what a valid key is, which routes honour it, how a
key is scoped, what makes two requests "the same", and what the server answers in every case.
It knows nothing of HTTP servers or pytest.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard, Union, get_args, get_origin, get_type_hints

import regex

from .patterns import PRINTABLE_ASCII, PatternTimeout, bounded_fullmatch, compiled
from .routes import RoutePattern, parse_route

__all__ = [
    "Answer",
    "FingerprintMode",
    "InFlightMode",
    "KeyFormat",
    "MismatchMode",
    "Policy",
    "PolicyError",
    "PolicyTypeError",
    "ReuseMode",
    "ScopePart",
    "BODILESS_STATUSES",
    "FRAMING_HEADERS",
    "check_answer_status",
    "check_header",
    "is_final_status",
]

KeyFormat = Literal["raw", "sf-string"]
FingerprintMode = Literal["none", "raw", "canonical"]
ScopePart = Literal["credential", "method", "path", "endpoint", "route"]
InFlightMode = Literal["reject", "wait", "provisional"]
MismatchMode = Literal["reject", "replay", "revalidate"]
NullKeyMode = Literal["reject", "absent"]
ReuseMode = Literal["replay", "conflict"]

_SCOPE_PARTS = ("credential", "method", "path", "endpoint", "route")


#: Longest ``in_flight_wait`` (chosen: an hour; a duplicate never waits for ever).
MAX_IN_FLIGHT_WAIT = 3600.0
#: Longest finite ``ttl`` (chosen: 1,000 years; the fake clock's dates end in 9000, and
#: ``None`` keeps records for ever).
MAX_TTL = 1000 * 365 * 86400.0


class PolicyError(ValueError):
    """A policy (or an override of one) that cannot work, with the fix in its message."""


class PolicyTypeError(PolicyError, TypeError):
    """A policy field of the wrong type (a ``TypeError`` too), naming the field and the type."""


def _kind_of(hint: Any) -> str:
    """A field's type in words: ``a tuple (or list) of str``, ``True or False``, ..."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_kind_of(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"a tuple (or list), each item {_kind_of(args[0])}"
    if origin is tuple:
        return "a pair (" + ", ".join(_kind_of(a) for a in args) + ")"
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return f"an {hint.__name__}(status, code, message)"
    names = {bool: "True or False", int: "an int (not a bool)", float: "a number", str: "a str"}
    return names.get(hint, {type(None): "None", dict: "a dict"}.get(origin or hint, str(hint)))


def _tupled(value: Any, hint: Any) -> Any:
    """``value`` with lists turned into tuples wherever ``hint`` wants a tuple."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return next((_tupled(value, a) for a in args if get_origin(a) is tuple), value)
    if origin is not tuple or not isinstance(value, (list, tuple)):
        return value
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_tupled(v, args[0]) for v in value)
    return tuple(_tupled(v, a) for v, a in zip(value, args, strict=False))


def _conforms(value: Any, hint: Any) -> bool:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is Literal:
        return isinstance(value, str) and value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(value) == len(args) and all(map(_conforms, value, args))
    if hint in (int, float):
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(
            value, bool
        )
    if hint is Any:
        return True
    return isinstance(value, origin or hint)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """``cls``'s resolved field annotations, computed once per class."""
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = get_type_hints(cls)
    return found


def _check_types(obj: Any, where: str = "") -> None:
    """Every field of the dataclass ``obj`` has its annotated type (lists become tuples);
    else a :class:`PolicyTypeError` naming the field, the type wanted and what came."""
    for name, hint in _hints(type(obj)).items():
        given = getattr(obj, name)
        value = _tupled(given, hint)
        if value is not given:
            object.__setattr__(obj, name, value)
        wanted = _kind_of(hint)
        if isinstance(value, str) and get_origin(hint) is tuple:
            raise PolicyTypeError(
                f"{where}{name} must be {wanted}, not the bare str {value!r:.60}: "
                f"write ({value!r:.60},)"
            )
        if not _conforms(value, hint):
            raise PolicyTypeError(f"{where}{name} must be {wanted} (got {value!r:.60})")
        if dataclasses.is_dataclass(value):
            _check_types(value, f"{where}{name}.")


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


#: Headers the server writes itself from the answer's framing: nobody else may set them.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def is_header_name(name: object) -> bool:
    """Whether ``name`` is an HTTP field name (an RFC 9110 token)."""
    return isinstance(name, str) and _HEADER_NAME.fullmatch(name) is not None


def check_header(where: str, name: str, value: str) -> None:
    """Refuse a header that cannot go out as one line: a name that is not a token, a value with
    CR, LF or another control character, text beyond latin-1, or a framing header the server
    sets itself (a :class:`PolicyError` naming ``where``)."""
    if not is_header_name(name):
        raise PolicyError(
            f"{where}: {name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        )
    if name.lower() in FRAMING_HEADERS:
        raise PolicyError(
            f"{where}: {name} frames the answer and is set by the server; choose another header"
        )
    if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
        raise PolicyError(
            f"{where}: the value of {name} ({value[:40]!r}) must be one line of latin-1 text "
            "without CR, LF or other control characters"
        )


#: Statuses whose answers never carry a body (RFC 9110): no body, no ``Content-Length``.
BODILESS_STATUSES = frozenset({204, 304})


def is_final_status(status: object) -> TypeGuard[int]:
    """Whether ``status`` is a final HTTP status a fake answer may have (200-599)."""
    return isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599


def check_answer_status(where: str, status: object) -> None:
    """An answer with a body needs a final status that may carry one: 200-599 but 204 and
    304 (a :class:`PolicyError` naming ``where``)."""
    if not is_final_status(status) or status in BODILESS_STATUSES:
        raise PolicyError(
            f"{where} must be an HTTP status from 200 to 599 that carries a body (not 204 or "
            f"304); got {status!r}"
        )


def guessed(unknown: Iterable[str], known: Iterable[str], suffix: str = "") -> str:
    """Unknown names, each with the closest known one when there is one (``tll`` -> ``tll
    (did you mean ttl?)``); ``suffix`` follows every name (``=`` for keyword options)."""
    pool = list(known)
    return ", ".join(
        f"{name}{suffix} (did you mean {close[0]}{suffix}?)" if close else f"{name}{suffix}"
        for name in unknown
        for close in [difflib.get_close_matches(name, pool, n=1, cutoff=0.6)]
    )


@dataclass(frozen=True)
class Answer:
    """An answer the idempotency layer gives on its own: status, code and message.

    ``message`` may use ``{key}``; the variant's error shape turns the answer into its own
    envelope (Moda's ``{"error": {...}}``, IETF problem+json, ...).
    """

    status: int
    code: str
    message: str
    type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        status = self.status
        if isinstance(status, bool) or not isinstance(status, int):
            raise PolicyTypeError(
                f"Answer status must be an int HTTP status such as 409, not {status!r:.60}: "
                f"write Answer({_int_status(status)}, {self.code!r:.60}, ...)"
            )
        if not 100 <= status <= 599:
            raise PolicyError(
                f"Answer status must be an HTTP status from 100 to 599 (got {status}); "
                "write e.g. Answer(409, 'idempotency_key_reused', '...')"
            )

    def render_message(self, key: str | None) -> str:
        return self.message.replace("{key}", key if key is not None else "")


def _int_status(status: object) -> str:
    """``status`` as the int the user meant (``"409"`` -> ``409``), or an example."""
    text = str(status).strip() if isinstance(status, (str, float)) else ""
    return text if text.isascii() and text.isdigit() and len(text) == 3 else "409"


@dataclass(frozen=True)
class Policy:
    """One idempotency contract. Every field has a documented default; variants override them.

    Build your own with ``Policy(...)`` or derive one: ``STRIPE.policy.replace(ttl=3600)``.
    """

    #: Header that carries the key (``None``: no header key).
    key_header: str | None = "Idempotency-Key"
    #: JSON (or form) body field that carries the key (``None``: no body key).
    key_field: str | None = None
    #: ``raw`` takes the header as sent; ``sf-string`` wants an RFC 8941 quoted string.
    key_format: KeyFormat = "raw"
    key_min_length: int = 1
    key_max_length: int = 255
    #: Regular expression a whole key must match (default: printable ASCII).
    key_pattern: str = PRINTABLE_ASCII
    #: Routes that honour the key, as ``"METHOD /path"`` patterns; others ignore it.
    keyed_routes: tuple[str, ...] = ("POST *",)
    #: Routes on which a missing key is refused with :attr:`missing_key`.
    key_required_routes: tuple[str, ...] = ()
    #: What a key is unique within, besides itself: ``endpoint`` is the method and the concrete
    #: path (``POST /posts/A/draft``), ``route`` the method and the keyed route's template
    #: (``POST /posts/{id}/draft``).
    scope: tuple[ScopePart, ...] = ("credential",)
    #: What makes a repeat "the same request".
    fingerprint: FingerprintMode = "canonical"
    #: Whether the method and path are part of the fingerprint.
    fingerprint_route: bool = True
    #: ``reject``: answer :attr:`mismatch`; ``replay``: keys are not bound to the body;
    #: ``revalidate``: not bound, but on :attr:`consulted_routes` the handler checks the
    #: endpoint's invariants for the new body before the replay (see ``consult``).
    on_mismatch: MismatchMode = "reject"
    mismatch: Answer = Answer(
        409,
        "idempotency_key_reused",
        "Idempotency key '{key}' was already used with a different request body.",
    )
    #: ``reject``: answer :attr:`in_flight`; ``wait``: block until the original is done, then replay;
    #: ``provisional``: on :attr:`consulted_routes` the handler answers at once with the ids the
    #: original reserved (elsewhere, or when it declines: ``wait``).
    on_in_flight: InFlightMode = "reject"
    in_flight: Answer = Answer(
        409,
        "idempotency_key_in_use",
        "A request with idempotency key '{key}' is still being processed; retry later.",
    )
    #: Routes whose handlers answer the engine's questions about an existing record
    #: (``on_in_flight="provisional"``, ``on_mismatch="revalidate"``), as route patterns.
    consulted_routes: tuple[str, ...] = ()
    #: A JSON ``null`` key field: ``reject`` it as not a string, or treat it as ``absent``.
    null_key: NullKeyMode = "reject"
    #: With ``on_in_flight="wait"``: the longest wait before falling back to :attr:`in_flight`.
    in_flight_wait: float = 30.0
    invalid_key: Answer = Answer(
        400, "invalid_idempotency_key", "The idempotency key is not valid: {key}"
    )
    missing_key: Answer = Answer(
        400, "idempotency_key_missing", "This operation requires an idempotency key."
    )
    #: Which status classes are stored and replayed.
    cache_2xx: bool = True
    cache_4xx: bool = True
    cache_5xx: bool = False
    #: Headers added to every replayed response, e.g. ``(("Idempotent-Replay", "true"),)``.
    replay_headers: tuple[tuple[str, str], ...] = ()
    #: Echo the request's key header on every keyed response (Stripe does).
    echo_key_header: bool = False
    #: Seconds a completed record is kept; ``None`` keeps it for ever.
    ttl: float | None = 86400.0
    #: A record lives only as long as the resource its request created.
    expires_with_resource: bool = False
    gone: Answer = Answer(404, "not_found", "The resource behind idempotency key '{key}' is gone.")
    #: After :attr:`gone`, keep answering it for the key (``True``) or let the key start over.
    gone_is_final: bool = True
    #: Validate the body against the route's schema before the idempotency layer (not stored).
    validate_before_idempotency: bool = False
    #: After an injected 5xx that follows the side effect (``error_after``), the record keeps
    #: the handler's real answer (a retry gets the existing resource) while the wire carries
    #: the 5xx. ``False``: the 5xx is the answer and the cache rules decide.
    error_after_keeps_record: bool = False
    #: Free-form notes for docs and timelines.
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: Per-route longest key, ``(("POST /v2/payments", 45),)``; other routes use
    #: :attr:`key_max_length` (Square: 45 characters on CreatePayment, 192 elsewhere).
    key_route_limits: tuple[tuple[str, int], ...] = ()
    #: ``replay``: a completed key with the same request replays; ``conflict``: any reuse of a
    #: completed key gets :attr:`reuse` (GoCardless ``idempotent_creation_conflict``).
    on_reuse: ReuseMode = "replay"
    reuse: Answer = Answer(
        409,
        "idempotent_creation_conflict",
        "A resource has already been created with idempotency key '{key}'.",
    )

    def __post_init__(self) -> None:
        _check_types(self)  # the Literal options (fingerprint, on_mismatch, ...) too
        if self.key_header is None and self.key_field is None:
            raise PolicyError("a policy needs key_header or key_field (or both)")
        if not 0 <= self.key_min_length <= self.key_max_length:
            raise PolicyError(
                f"key lengths must satisfy 0 <= key_min_length <= key_max_length "
                f"(got {self.key_min_length} and {self.key_max_length})"
            )
        if self.ttl is not None and not 0 <= self.ttl <= MAX_TTL:  # NaN fails it too
            raise PolicyError(
                f"ttl must be a finite number of seconds from 0 to {MAX_TTL:.0f} (1,000 years), "
                f"or None (JSON null) to keep records for ever (got {self.ttl!r})"
            )
        wait = self.in_flight_wait
        if (
            isinstance(wait, bool)
            or not isinstance(wait, (int, float))
            or not 0 <= wait <= MAX_IN_FLIGHT_WAIT
        ):
            raise PolicyError(
                f"in_flight_wait must be seconds from 0 to {MAX_IN_FLIGHT_WAIT:g} (got {wait!r}); "
                "a duplicate waits this long for the original before its in-flight answer"
            )
        for part in self.scope:
            if part not in _SCOPE_PARTS:
                raise PolicyError(f"unknown scope part {part!r}; use any of {_SCOPE_PARTS}")
        try:
            compiled(self.key_pattern)
        except (regex.error, OverflowError, RecursionError, TypeError) as exc:
            raise PolicyError(
                f"key_pattern {str(self.key_pattern)[:80]!r} is not a usable regex ({exc}); "
                r"give a pattern such as '[\x20-\x7e]+'"
            ) from None
        self._check_routes()
        self._check_wire_headers()

    def _check_routes(self) -> None:
        """Every route a policy option names parses, and a route's key limit is usable."""
        for spec, limit in self.key_route_limits:
            if limit < self.key_min_length:
                raise PolicyError(
                    f"key_route_limits: the limit of {spec!r} must be a whole number >= "
                    f"key_min_length ({self.key_min_length}); got {limit!r}"
                )
        for spec in (
            *self.keyed_routes,
            *self.key_required_routes,
            *self.consulted_routes,
            *(spec for spec, _ in self.key_route_limits),
        ):
            try:
                parse_route(spec)
            except ValueError as exc:
                raise PolicyError(str(exc)) from exc

    def _check_wire_headers(self) -> None:
        """Header names and values that reach the wire must be one clean latin-1 line each,
        and every status an answer of the layer's own must be one a response can have."""
        if self.key_header is not None:
            check_header("key_header", self.key_header, "")
        for name, value in self.replay_headers:
            check_header("replay_headers", name, value)
        for field_name in ("mismatch", "in_flight", "invalid_key", "missing_key", "gone", "reuse"):
            answer = getattr(self, field_name)
            check_answer_status(f"{field_name}.status", answer.status)
            for name, value in answer.headers:
                check_header(f"{field_name}.headers", name, value)

    # -- derived -----------------------------------------------------------------------------

    def replace(self, **changes: Any) -> Policy:
        """A copy with some fields changed; unknown names raise a :class:`PolicyError`."""
        known = sorted(f.name for f in dataclasses.fields(self))
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise PolicyError(
                f"unknown policy option(s) {guessed(unknown, known)}; "
                f"known options: {', '.join(known)}"
            )
        return dataclasses.replace(self, **changes)

    @functools.cached_property
    def _keyed_patterns(self) -> tuple[RoutePattern, ...]:
        return tuple(parse_route(spec) for spec in self.keyed_routes)

    @functools.cached_property
    def _required_patterns(self) -> tuple[RoutePattern, ...]:
        return tuple(parse_route(spec) for spec in self.key_required_routes)

    def honours_key(self, method: str, path: str) -> bool:
        """Whether ``method path`` honours the idempotency key."""
        cache = self._honours_cache
        found = cache.get((method, path))
        if found is None:
            found = any(r.match(method, path) is not None for r in self._keyed_patterns)
            if len(cache) < 4096:
                cache[(method, path)] = found
        return found

    @functools.cached_property
    def _honours_cache(self) -> dict[tuple[str, str], bool]:
        """:meth:`honours_key` answers by ``(method, path)``, remembered (bounded)."""
        return {}

    @functools.cached_property
    def _consulted_patterns(self) -> tuple[RoutePattern, ...]:
        return tuple(parse_route(spec) for spec in self.consulted_routes)

    def consults(self, method: str, path: str) -> bool:
        """Whether the handler of ``method path`` answers questions about existing records."""
        return any(r.match(method, path) is not None for r in self._consulted_patterns)

    def route_of(self, method: str, path: str) -> str:
        """The keyed route template that ``method path`` matches (``POST /posts/{id}/draft``),
        or the concrete ``method path`` when none does."""
        for spec, pattern in zip(self.keyed_routes, self._keyed_patterns, strict=True):
            if pattern.match(method, path) is not None:
                return spec
        return f"{method} {path}"

    def requires_key(self, method: str, path: str) -> bool:
        return any(r.match(method, path) is not None for r in self._required_patterns)

    @functools.cached_property
    def _limit_patterns(self) -> tuple[tuple[RoutePattern, int], ...]:
        return tuple((parse_route(spec), limit) for spec, limit in self.key_route_limits)

    def key_max_length_for(self, method: str, path: str) -> int:
        """The longest key ``method path`` accepts (:attr:`key_route_limits` first)."""
        for pattern, limit in self._limit_patterns:
            if pattern.match(method, path) is not None:
                return limit
        return self.key_max_length

    def route_key_problem(self, key: str, method: str, path: str) -> str | None:
        """Why ``key`` is too long for this route under :attr:`key_route_limits`, or ``None``."""
        if not self.key_route_limits:
            return None
        limit = self.key_max_length_for(method, path)
        if len(key) > limit:
            return f"the key is {len(key)} characters long; {method} {path} takes at most {limit}"
        return None

    def caches(self, status: int) -> bool:
        """Whether a response with this status is stored and replayed."""
        if status >= 500:
            return self.cache_5xx
        if status >= 400:
            return self.cache_4xx
        return self.cache_2xx

    def key_problem(self, key: str) -> str | None:
        """Why ``key`` is not a valid key under this policy, or ``None``."""
        if len(key) < self.key_min_length:
            return (
                f"the key is {len(key)} characters long; it must be at least {self.key_min_length}"
            )
        if len(key) > self.key_max_length:
            return (
                f"the key is {len(key)} characters long; it must be at most {self.key_max_length}"
            )
        if not key:
            return None
        try:
            matches = bounded_fullmatch(self.key_pattern, key)
        except PatternTimeout as slow:
            return f"key_pattern cannot check this key: {slow}"
        return None if matches else f"the key has characters outside {self.key_pattern}"

    def describe(self) -> dict[str, Any]:
        """The policy as plain data (for docs, the admin API and timelines)."""
        out = dataclasses.asdict(self)
        out.pop("extra", None)
        return out
