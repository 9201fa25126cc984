"""The life of one request, as a short sequence of named stages.

``framing -> route -> credential -> parse -> key -> faults -> arrival -> clock -> before_layer
-> validation -> layer (claim -> handler -> commit) -> wire``. Each stage either lets the request
go on (``None``) or answers it. Faults are matched once, in the ``faults`` stage, and each acts
at its own named point (:data:`~pytest_idempotency.faults.FAULT_POINTS`) through
:data:`~pytest_idempotency.points.FAULT_ACTIONS`; no stage looks at a fault's kind.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from werkzeug.datastructures import Headers

from .engine import EngineRequest, Execution, RequestLost, extract_key
from .faults import POINTS, BatchFaults, Fault, WireAction
from .fingerprint import parse_body, repeated_member
from .incoming import Incoming
from .journal import Exchange
from .points import FAULT_ACTIONS
from .policy import BODILESS_STATUSES, FRAMING_HEADERS, Answer, is_final_status
from .store import Record, StoredResponse, StoreFull
from .stubs import Stub
from .variant import HandlerContext, Reply, Route

if TYPE_CHECKING:
    from .app import App, State

__all__ = [
    "ERROR_HEADER",
    "FAULT_ACTIONS",
    "RAW_HEADERS_KEY",
    "STAGES",
    "Flight",
    "encode_reply",
    "internal_error",
    "run",
]

#: environ key where the server leaves every value of each request header.
RAW_HEADERS_KEY = "pytest_idempotency.raw_headers"
#: Header on answers the fake gives because the *test* did something unexpected.
ERROR_HEADER = "X-Pytest-Idempotency-Error"
#: Integers longer than this many digits are refused before any handler runs (chosen: real
#: JSON APIs refuse numbers past 64 bits; a huge one would otherwise break encoding later).
MAX_INTEGER_DIGITS = 19
_LONG_NUMBER = re.compile(rb"\d{%d,}" % (MAX_INTEGER_DIGITS + 1))

Stage = Callable[["Flight"], "StoredResponse | None"]


def encode_reply(reply: Reply) -> StoredResponse:
    """A handler's reply as it will go out. A status no answer can have is the handler's
    mistake (``ValueError``); framing headers are the server's own and are left out, and a
    ``204`` or ``304`` never carries a body (RFC 9110)."""
    status = reply.status
    if not is_final_status(status):
        raise ValueError(
            f"a reply's status must be an HTTP status from 200 to 599 (got {status!r})"
        )
    bodiless = status in BODILESS_STATUSES
    body = b"" if bodiless else reply.encode()
    typed = body or (reply.body is not None and not bodiless)
    if not reply.headers:  # the common case: the content type alone
        return StoredResponse(
            status, (("Content-Type", reply.content_type),) if typed else (), body
        )
    headers: list[tuple[str, str]] = [("Content-Type", reply.content_type)] if typed else []
    headers.extend(h for h in reply.headers if h[0].lower() not in FRAMING_HEADERS)
    return StoredResponse(status, tuple(headers), body)


#: Longest exception text an internal-error answer (and its journal problem) repeats.
_MAX_INTERNAL_TEXT = 2000


def internal_error(state: State, exchange: Exchange, exc: BaseException) -> StoredResponse:
    """The fake itself broke: journal it and say so, never with a retryable 500."""
    what = f"{type(exc).__name__}: {exc}"
    if len(what) > _MAX_INTERNAL_TEXT:  # an exception can carry a whole body: say it once, short
        what = what[:_MAX_INTERNAL_TEXT] + f"... ({len(what)} characters)"
    state.journal.problem(
        "internal", f"#{exchange.seq} {exchange.method} {exchange.path}: the fake raised {what}"
    )
    exchange.decision = exchange.decision or "rejected"
    return StoredResponse(
        400,
        (("Content-Type", "text/plain; charset=utf-8"), (ERROR_HEADER, "internal-error")),
        f"pytest-idempotency: the fake server raised {what}".encode(),
    )


@dataclass(eq=False, slots=True)
class Flight:
    """One request on its way through the stages: what each stage found so far."""

    app: App
    state: State
    request: Incoming
    exchange: Exchange
    body: bytes
    too_large: bool
    action: WireAction
    request_id: str = ""
    route: Route | None = None
    params: dict[str, str] = field(default_factory=dict)
    data: Any = None
    parse_problem: str | None = None
    keyed: bool = False
    engine_request: EngineRequest | None = None
    #: The faults taken for this request, by point (``None`` until some are).
    faults: dict[str, Fault] | None = None
    batch_faults: BatchFaults | None = None
    generation: int = 0
    parked: bool = False
    validated: bool = False
    #: The body is an upload the route takes as bytes (``Route.raw_media``).
    raw: bool = False
    #: Every value of each header by lower-cased name, when the server gave that index.
    raw_headers: dict[str, list[str]] | None = field(init=False)

    def __post_init__(self) -> None:
        self.raw_headers = self.request.environ.get(RAW_HEADERS_KEY)

    @property
    def environ(self) -> dict[str, Any]:
        return self.request.environ

    @property
    def headers(self) -> Headers:
        return self.request.headers

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` as sent (from the server's own index when it gave
        one, else from the environ). A name sent with ``_`` for ``-`` counts when the dashed
        spelling was not sent, as the environ maps it (so ``Idempotency_Key`` is the key, never
        silently dropped)."""
        raw = self.raw_headers
        if raw is not None:
            lower, underscored = _spellings(name)
            found = raw.get(lower)
            if found is None and underscored:  # spelled with '_' (the app reads it so too)
                found = raw.get(underscored)
            return found or []
        headers = self.request.headers
        return [headers[name]] if name in headers else []

    def render(
        self, answer: Answer, detail: str | None, record: Record | None = None
    ) -> StoredResponse:
        return self.app._render(self.state, answer, detail, self.request_id, record)

    def at(self, point: str) -> StoredResponse | None:
        """Let the fault scripted for ``point`` (if any) act there."""
        faults = self.faults
        if not faults:
            return None
        fault = faults.get(point)
        if fault is None:
            return None
        return FAULT_ACTIONS[fault.kind](self, fault)


@functools.lru_cache(maxsize=256)  # a handful of names: the key header, the retry-count ones
def _spellings(name: str) -> tuple[str, str | None]:
    """A header name's lower-cased spelling and its ``_`` spelling (``None`` without a ``-``)."""
    lower = name.lower()
    return lower, lower.replace("-", "_") if "-" in lower else None


# -- stages ------------------------------------------------------------------------------------


def _framing(f: Flight) -> StoredResponse | None:
    if not f.too_large:
        return None
    variant = f.state.variant
    f.exchange.decision = "rejected"
    f.exchange.note = f"body over {variant.max_body_bytes} bytes"
    return f.render(variant.too_large, f"over {variant.max_body_bytes} bytes")


def _route(f: Flight) -> StoredResponse | None:
    variant, exchange = f.state.variant, f.exchange
    route, params, path_known = variant.find_route(exchange.method, exchange.path)
    if route is not None:
        f.route, f.params = route, params
        return None
    if not path_known:
        routes = ", ".join(r.spec for r in variant.routes)
        answer = variant.not_found
        detail = f"no route of variant {variant.name!r} matches; its routes: {routes}"
    else:
        allowed = ", ".join(r.spec for r in variant.routes if r.pattern.matches_path(exchange.path))
        answer = variant.method_not_allowed
        detail = f"{exchange.method} is not allowed on this path; routes here: {allowed}"
    return f.app._unexpected(f.state, exchange, answer, detail, f.request_id)


def _credential(f: Flight) -> StoredResponse | None:
    variant, route = f.state.variant, f.route
    if route is not None and route.authenticate is not None:
        tenant = route.authenticate(f.headers, f.request.args)
    else:
        tenant = variant.authenticate(f.headers)
    f.exchange.tenant = tenant
    if tenant is not None:
        return None
    f.exchange.decision = "rejected"
    f.exchange.note = "missing or malformed credential"
    refusal = route.unauthorized if route is not None else None
    return f.render(refusal or variant.unauthorized, None)


def _parse(f: Flight) -> StoredResponse | None:
    route = f.route
    if route is not None and route.takes_raw(f.exchange.content_type):
        f.raw = True  # an upload the route takes as bytes: nothing to parse or check
        return None
    try:
        f.data = parse_body(f.body, f.exchange.content_type)
    except ValueError as exc:
        f.data, f.parse_problem = None, str(exc)
    return None


def _key(f: Flight) -> StoredResponse | None:
    state, exchange = f.state, f.exchange
    policy = state.variant.policy
    method, path = exchange.method, exchange.path
    header_values: list[str] = []
    if policy.key_header is not None:
        header_values = f.header_values(policy.key_header)
    f.keyed = policy.honours_key(method, path)
    key, problem = extract_key(policy, header_values, f.data) if f.keyed else (None, None)
    exchange.key = key
    field = policy.key_field
    if field is not None and f.keyed and type(f.data) is dict and field in f.data:
        repeated = repeated_member(f.body, field)
        if repeated is not None:
            return _repeated_key(f, field, repeated)
    exchange.client_retry_count = _retry_count(f)
    f.engine_request = EngineRequest(
        method,
        path,
        exchange.tenant,
        key,
        problem,
        f.body,
        exchange.content_type,
        exchange.seq,
        keyed=f.keyed,
        parsed=None if f.parse_problem is not None or f.raw else (f.data,),
    )
    if key is not None:
        exchange.attempt = state.journal.next_attempt(state.engine.scope_of(f.engine_request))
    state.journal.touch()  # a parked original with this key may be waiting for it
    return None


def _repeated_key(f: Flight, field: str, values: list[Any]) -> StoredResponse:
    """A body that names the key field twice is ambiguous (a proxy or a logger that reads the
    first member sees another key than a parser that keeps the last): refused before the key
    is looked up, in the variant's envelope for a bad body."""
    shown = ", then ".join(repr(v)[:60] for v in values[:3])
    problem = f"{field} is given {len(values)} times in the body ({shown}); send it exactly once"
    exchange = f.exchange
    exchange.decision = "rejected"
    exchange.note = problem
    f.state.journal.problem(
        "schema", f"#{exchange.seq} {exchange.method} {exchange.path}: {problem}"
    )
    return f.render(f.state.variant.validation, problem)


def _retry_count(f: Flight) -> str | None:
    """The retry count a client says it is on (Stainless SDKs and others send one)."""
    for name in ("X-Stainless-Retry-Count", "X-Retry-Count"):
        sent = ",".join(f.header_values(name))
        if sent:
            return sent
    return None


def _faults(f: Flight) -> StoredResponse | None:
    e = f.exchange
    found = f.state.faults.match(e.method, e.path, e.key, e.attempt, e.seq)
    if found:
        f.faults = {fault.point: fault for fault in found}
        e.fault = "+".join(fault.kind for fault in found)
    return None


def _point(name: str) -> Stage:
    def stage(f: Flight) -> StoredResponse | None:
        return f.at(name)

    stage.__name__ = f"_{name}"
    return stage


def _validation(f: Flight) -> StoredResponse | None:
    """Refuse a body that breaks the route's schema (here, or inside the layer when the
    policy checks the key first)."""
    if f.validated:
        return None
    if not f.keyed or f.state.variant.policy.validate_before_idempotency:
        return _validate(f)
    return None


def _validate(f: Flight) -> StoredResponse | None:
    f.validated = True
    assert f.route is not None
    if f.raw:
        return None
    problem = f.parse_problem or f.app._schema_problem(f.route, f.data) or _number_problem(f)
    if problem is None:
        return None
    variant, exchange = f.state.variant, f.exchange
    f.state.journal.problem(
        "schema",
        f"#{exchange.seq} {exchange.method} {exchange.path}: the body breaks the schema of "
        f"{variant.name!r}: {problem}",
    )
    exchange.note = problem
    exchange.decision = "rejected"
    return f.render(variant.validation, problem)


def _number_problem(f: Flight) -> str | None:
    """An integer no handler can take (far past 64 bits) is refused before any side effect."""
    if not _LONG_NUMBER.search(f.body):
        return None
    where = _long_integer(f.data, "")
    if where is None:
        return None
    return (
        f"{where or '(body)'}: integers have at most {MAX_INTEGER_DIGITS} digits; "
        "send a smaller number"
    )


def _long_integer(value: Any, where: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return where if len(str(abs(value))) > MAX_INTEGER_DIGITS else None
    items: Any = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for name, item in items:
        found = _long_integer(item, f"{where}/{name}" if where else str(name))
        if found is not None:
            return found
    return None


def _layer(f: Flight) -> StoredResponse | None:
    """Claim, handler and commit, through the idempotency layer."""
    state, exchange = f.state, f.exchange
    assert f.engine_request is not None
    f.generation = state.generation
    try:
        outcome = state.engine.process(
            f.engine_request,
            lambda: _handler(f),
            f.render,
            lambda record: _claim(f, record),
            render_record=f.render,
        )
    except StoreFull:  # refused before the claim: faults for later points never acted
        _give_back_after(f, "before_layer")
        raise
    exchange.decision = outcome.decision  # type: ignore[assignment]
    exchange.fingerprint = outcome.fingerprint
    exchange.committed = outcome.committed
    exchange.replay_of = outcome.replay_of
    exchange.expired = outcome.expired
    exchange.decided_at = f.engine_request.decided_at
    if outcome.note and not exchange.note:
        exchange.note = outcome.note
    return _wire(f, outcome.response)


def _claim(f: Flight, record: Record | None = None) -> None:
    """The key is claimed (or, unkeyed, the handler is next): the ``claim`` point. A restart
    while the request was parked here loses it."""
    if f.parked:
        return
    f.parked = True
    f.at("claim")
    if f.state.generation != f.generation or f.app.state is not f.state:
        raise RequestLost()  # a restart, or a reset (its state is gone), while parked here


def _handler(f: Flight) -> Execution:
    _claim(f)
    if not f.validated:
        invalid = _validate(f)
        if invalid is not None:
            return Execution(invalid)
    f.at("handler")
    ctx = _context(f)
    assert f.route is not None
    stub = f.state.stubs.answer(ctx.method, ctx.path)
    try:
        response = encode_reply(f.route.handler(ctx) if stub is None else _stubbed(ctx, stub))
    except Exception as exc:
        if not f.exchange.side_effects:
            raise
        failed = internal_error(f.state, f.exchange, exc)
        f.exchange.note = "the handler failed after its side effect; the record keeps this answer"
        return Execution(failed, keep=failed)
    alive: Callable[[], bool] | None = None
    if ctx.bound_resource is not None:
        kind, rid = ctx.bound_resource
        resources, tenant = f.state.resources, ctx.tenant

        def alive() -> bool:
            return resources.exists(tenant, kind, rid)

    return _commit(f, Execution(response, alive))


def _stubbed(ctx: HandlerContext, stub: Stub) -> Reply:
    """A stub's answer in place of the handler's (a side effect only when it names one)."""
    ctx.exchange.note = f"stubbed answer ({stub.route}, call {stub.calls})"
    if stub.side_effect is not None:
        rid = stub.json.get("id") if isinstance(stub.json, dict) else None
        resource = stub.side_effect.partition(".")[0]
        ctx.side_effect(stub.side_effect, resource, None if rid is None else str(rid))
    content_type = "application/json"
    headers = []
    for name, value in stub.headers:
        if name.lower() == "content-type":
            content_type = value
        else:
            headers.append((name, value))
    return Reply(stub.status, stub.json, tuple(headers), content_type)


def _context(f: Flight) -> HandlerContext:
    state, exchange = f.state, f.exchange
    assert f.engine_request is not None
    return HandlerContext(
        method=exchange.method,
        path=exchange.path,
        params=f.params,
        headers=f.headers,
        query=f.request.args,
        body=f.body,
        content_type=exchange.content_type,
        data=f.data,
        tenant=exchange.tenant,
        key=f.engine_request.key,
        resources=state.resources,
        clock=state.clock,
        exchange=exchange,
        journal=state.journal,
        variant=state.variant,
        batch_faults=f.batch_faults,
        request_id=f.request_id,
    )


def _commit(f: Flight, execution: Execution) -> Execution:
    """The ``commit`` point: a fault here replaces the answer after the side effect."""
    replaced = f.at("commit")
    if replaced is None:
        return execution
    policy, real = f.state.variant.policy, execution.response
    keep = real if policy.error_after_keeps_record and policy.caches(real.status) else None
    return Execution(replaced, execution.alive, keep=keep)


def _wire(f: Flight, response: StoredResponse) -> StoredResponse:
    """The ``wire`` point: what the socket layer does with the committed answer."""
    f.at("wire")
    return response


STAGES: tuple[tuple[str, Stage], ...] = (
    ("framing", _framing),
    ("route", _route),
    ("credential", _credential),
    ("parse", _parse),
    ("key", _key),
    ("faults", _faults),
    ("arrival", _point("arrival")),
    ("clock", _point("clock")),
    ("before_layer", _point("before_layer")),
    ("validation", _validation),
    ("layer", _layer),
)


def run(f: Flight) -> StoredResponse:
    """Take the request through every stage until one answers it."""
    f.request_id = f"req_{f.exchange.seq:06d}"
    for name, stage in STAGES:
        response = stage(f)
        if response is not None:
            _give_back_after(f, name)
            return response
    raise AssertionError("the layer stage always answers")  # pragma: no cover


def _give_back_after(f: Flight, stage: str) -> None:
    """Faults taken for points this request never reached did not act: give them back. A
    request refused by validation reached ``before_layer`` and no later point."""
    stage = "before_layer" if stage == "validation" else stage
    if not f.faults or stage not in POINTS:
        return
    reached = POINTS.index(stage)
    faults = f.faults
    unused = [faults.pop(p) for p in list(faults) if POINTS.index(p) > reached]
    if unused:
        f.state.faults.give_back(unused)
        f.exchange.fault = "+".join(fault.kind for fault in faults.values()) or None
