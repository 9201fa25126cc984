"""The WSGI app: socket -> app -> (faults, idempotency layer, provider handler) -> journal.

One :class:`App` serves one variant at a time; :meth:`App.reset` swaps in fresh state (store,
journal, resources, faults, clock offset) in microseconds, so one server serves a whole session.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import jsonschema
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request

from .clock import Clock
from .engine import Engine, EngineRequest, Execution, RequestLost, extract_key
from .faults import BatchFaults, Fault, FaultPlan, WireAction
from .fingerprint import parse_body
from .journal import Exchange, Journal
from .policy import Answer
from .store import Record, Store, StoredResponse
from .variant import HandlerContext, Reply, Resources, Route, Variant

__all__ = ["ERROR_HEADER", "WIRE_KEY", "App", "State"]

#: environ key where the app leaves the socket-level action for the server.
WIRE_KEY = "pytest_idempotency.wire"
#: environ key where an admin call leaves a plain-text answer (sent instead of its JSON).
ADMIN_TEXT_KEY = "pytest_idempotency.admin_text"
#: environ key where the server leaves every value of each request header.
RAW_HEADERS_KEY = "pytest_idempotency.raw_headers"
#: Header on answers the fake gives because the *test* did something unexpected.
ERROR_HEADER = "X-Pytest-Idempotency-Error"

StartResponse = Callable[..., Any]


@dataclass(eq=False)
class State:
    """Everything one test sees; replaced whole on reset."""

    variant: Variant
    clock: Clock
    seed: int = 0
    store: Store = field(init=False)
    journal: Journal = field(init=False)
    resources: Resources = field(init=False)
    faults: FaultPlan = field(init=False)
    engine: Engine = field(init=False)
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.store = Store(self.clock)
        self.journal = Journal(self.clock.now)
        self.resources = Resources()
        self.faults = FaultPlan(self.seed)
        self.engine = Engine(self.variant.policy, self.store)
        if self.variant.seed is not None:
            self.variant.seed(self.resources)


def _encode(reply: Reply) -> StoredResponse:
    body = reply.encode()
    headers: list[tuple[str, str]] = []
    if body or reply.body is not None:
        headers.append(("Content-Type", reply.content_type))
    headers.extend(reply.headers)
    return StoredResponse(reply.status, tuple(headers), body)


class App:
    """The fake API as a WSGI application."""

    def __init__(
        self,
        variant: Variant,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        admin: Callable[[App, Request], tuple[int, Any]] | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.seed = seed
        self.state = State(variant, self.clock, seed)
        self.admin = admin
        self._validators: dict[int, tuple[Any, Any]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def variant(self) -> Variant:
        return self.state.variant

    def reset(self, variant: Variant | None = None, seed: int | None = None) -> State:
        """Fresh records, journal, resources, faults and clock; optionally another variant."""
        old = self.state
        old.faults.release_all(lost=False)
        old.store.clear()
        self.clock.reset()
        if seed is not None:
            self.seed = seed
        self.state = State(variant or old.variant, self.clock, self.seed)
        return self.state

    def restart(self, keep_records: bool = True) -> list[Record]:
        """Simulate a server restart: every in-flight request is lost (its connection is
        reset, nothing it did is committed), completed records survive or vanish."""
        state = self.state
        with state.lock:
            state.generation += 1
        lost = state.store.drop_in_flight()
        state.faults.release_all(lost=True)
        if not keep_records:
            state.store.clear()
        return lost

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if self.admin is not None and request.path.startswith("/__admin/"):
            status, payload = self.admin(self, request)
            text = environ.pop(ADMIN_TEXT_KEY, None)  # an admin call that answers plain text
            body = json.dumps(payload).encode() if text is None else str(text).encode()
            content_type = "application/json" if text is None else "text/plain; charset=utf-8"
            start_response(
                f"{status} {_reason(status)}",
                [("Content-Type", content_type), ("Content-Length", str(len(body)))],
            )
            return [body]
        state = self.state
        response, action = self._serve(state, request, environ)
        environ[WIRE_KEY] = action
        headers = list(response.headers)
        headers.append(("Content-Length", str(len(response.body))))
        start_response(f"{response.status} {_reason(response.status)}", headers)
        return [response.body]

    def _serve(
        self, state: State, request: Request, environ: dict[str, Any]
    ) -> tuple[StoredResponse, WireAction]:
        variant = state.variant
        method = request.method.upper()
        path = request.path
        content_type = request.headers.get("Content-Type", "")
        raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
        if raw_length and not raw_length.isdigit():
            return self._bad_framing(state, request, raw_length)
        length = request.content_length
        too_large = length is not None and length > variant.max_body_bytes
        if too_large and length is not None and length <= _DRAIN_LIMIT:
            _drain(request)
        body = b"" if too_large else request.get_data(cache=True)
        if not too_large and len(body) > variant.max_body_bytes:
            too_large = True
        exchange = state.journal.open(method, path, body, content_type)
        action = WireAction()
        try:
            response = self._handle(state, request, environ, exchange, body, too_large, action)
        except RequestLost:
            exchange.wire = "reset"
            exchange.note = "lost in a server restart"
            action.kind = "reset"
            response = StoredResponse(500, (), b"")
        except Exception as exc:  # the fake itself broke: say so, never a retryable 500
            state.journal.problem(
                "internal",
                f"#{exchange.seq} {method} {path}: the fake raised {type(exc).__name__}: {exc}",
            )
            exchange.decision = exchange.decision or "rejected"
            message = f"pytest-idempotency: the fake server raised {type(exc).__name__}: {exc}"
            response = StoredResponse(
                400,
                (("Content-Type", "text/plain; charset=utf-8"), (ERROR_HEADER, "internal-error")),
                message.encode(),
            )
        if too_large:
            action.close = True
        policy = state.variant.policy
        if policy.echo_key_header:
            response = self._echo_key(policy.key_header, request, response)
        exchange.status = None if action.kind == "reset" else response.status
        if exchange.wire == "pending":
            exchange.wire = {  # type: ignore[assignment]
                "response": "response",
                "drop": "dropped",
                "reset": "reset",
                "late": "late",
                "garbage": "garbage",
            }[action.kind]
        exchange.finished.set()
        state.journal.touch()
        if action.kind == "late":
            state.faults.track(action, exchange)
        return response, action

    def _bad_framing(
        self, state: State, request: Request, raw_length: str
    ) -> tuple[StoredResponse, WireAction]:
        """A ``Content-Length`` that is not a whole number: the body cannot be framed, so the
        request is refused and the connection closed (its bytes must not be read as a next
        request)."""
        exchange = state.journal.open(request.method.upper(), request.path, b"", "")
        exchange.decision = "rejected"
        exchange.note = f"Content-Length {raw_length[:40]!r} is not a whole number"
        answer = Answer(
            400,
            "invalid_content_length",
            "Content-Length must be a whole number of bytes (got {key}); let the HTTP client set it.",
        )
        response = self._render(state, answer, repr(raw_length[:40]), f"req_{exchange.seq:06d}")
        exchange.status = response.status
        exchange.wire = "response"
        exchange.finished.set()
        state.journal.touch()
        return response, WireAction(close=True)

    @staticmethod
    def _echo_key(header: str | None, request: Request, response: StoredResponse) -> StoredResponse:
        """Echo the request's key header on the response (Stripe does, on every response)."""
        if header is None or header not in request.headers:
            return response
        if any(name.lower() == header.lower() for name, _ in response.headers):
            return response
        return StoredResponse(
            response.status, (*response.headers, (header, request.headers[header])), response.body
        )

    def _render(
        self, state: State, answer: Answer, detail: str | None, request_id: str
    ) -> StoredResponse:
        reply = state.variant.error_shape(
            answer.status,
            answer.code,
            answer.render_message(detail),
            type=answer.type,
            request_id=request_id,
        )
        encoded = _encode(reply)
        if answer.headers:
            encoded = StoredResponse(encoded.status, encoded.headers + answer.headers, encoded.body)
        return encoded

    def _unexpected(
        self, state: State, exchange: Exchange, answer: Answer, detail: str, request_id: str
    ) -> StoredResponse:
        state.journal.problem(
            "unexpected", f"#{exchange.seq} {exchange.method} {exchange.path}: {detail}"
        )
        exchange.decision = "rejected"
        exchange.note = detail
        rendered = self._render(state, answer, f"{exchange.method} {exchange.path}", request_id)
        return StoredResponse(
            rendered.status,
            (*rendered.headers, (ERROR_HEADER, "unexpected-request")),
            rendered.body,
        )

    def _handle(
        self,
        state: State,
        request: Request,
        environ: dict[str, Any],
        exchange: Exchange,
        body: bytes,
        too_large: bool,
        action: WireAction,
    ) -> StoredResponse:
        variant = state.variant
        policy = variant.policy
        method, path = exchange.method, exchange.path
        request_id = f"req_{exchange.seq:06d}"
        headers: Headers = request.headers
        if too_large:
            exchange.decision = "rejected"
            exchange.note = f"body over {variant.max_body_bytes} bytes"
            return self._render(
                state, variant.too_large, f"over {variant.max_body_bytes} bytes", request_id
            )

        route, params, path_known = variant.find_route(method, path)
        if route is None and not path_known:
            routes = ", ".join(r.spec for r in variant.routes)
            return self._unexpected(
                state,
                exchange,
                variant.not_found,
                f"no route of variant {variant.name!r} matches; its routes: {routes}",
                request_id,
            )
        if route is None:
            allowed = ", ".join(r.spec for r in variant.routes if r.pattern.matches_path(path))
            return self._unexpected(
                state,
                exchange,
                variant.method_not_allowed,
                f"{method} is not allowed on this path; routes here: {allowed}",
                request_id,
            )

        tenant = variant.authenticate(headers)
        exchange.tenant = tenant
        if tenant is None:
            exchange.decision = "rejected"
            exchange.note = "missing or malformed credential"
            return self._render(state, variant.unauthorized, None, request_id)

        parse_problem: str | None = None
        try:
            data = parse_body(body, exchange.content_type)
        except ValueError as exc:
            data, parse_problem = None, str(exc)

        raw_headers: dict[str, list[str]] = environ.get(RAW_HEADERS_KEY) or {}
        header_values: list[str] = []
        if policy.key_header is not None:
            header_values = raw_headers.get(policy.key_header.lower()) or (
                [headers[policy.key_header]] if policy.key_header in headers else []
            )
        keyed = policy.honours_key(method, path)
        key, key_problem = extract_key(policy, header_values, data) if keyed else (None, None)
        exchange.key = key
        exchange.client_retry_count = headers.get("X-Stainless-Retry-Count") or headers.get(
            "X-Retry-Count"
        )
        engine_request = EngineRequest(
            method, path, tenant, key, key_problem, body, exchange.content_type, exchange.seq
        )
        if key is not None:
            exchange.attempt = state.journal.next_attempt(state.engine.scope_of(engine_request))

        fault = state.faults.match(method, path, key, exchange.attempt, exchange.seq)
        if fault is not None:
            exchange.fault = fault.kind
            early = self._before_layer(state, exchange, fault, action, request_id)
            if early is not None:
                return early

        def validate() -> StoredResponse | None:
            problem = parse_problem or self._schema_problem(route, data)
            if problem is None:
                return None
            state.journal.problem(
                "schema",
                f"#{exchange.seq} {method} {path}: the body breaks the schema of "
                f"{variant.name!r}: {problem}",
            )
            exchange.note = problem
            return self._render(state, variant.validation, problem, request_id)

        if policy.validate_before_idempotency or not keyed:
            invalid = validate()
            if invalid is not None:
                exchange.decision = "rejected"
                return invalid

        generation = state.generation

        parked = False

        def park() -> None:
            """Hold the request here if a hold fault matched (after the claim when the key is
            claimed, else just before the handler); a restart meanwhile loses it."""
            nonlocal parked
            if parked:
                return
            parked = True
            if fault is not None and fault.kind == "hold":
                exchange.note = "held in flight"
                fault._note_held()
                fault.released.wait()
            if state.generation != generation:
                raise RequestLost()

        def on_claimed(record: Record) -> None:
            park()

        def execute() -> Execution:
            park()
            if not policy.validate_before_idempotency and keyed:
                invalid = validate()
                if invalid is not None:
                    return Execution(invalid)
            ctx = HandlerContext(
                method=method,
                path=path,
                params=params,
                headers=headers,
                query=request.args,
                body=body,
                content_type=exchange.content_type,
                data=data,
                tenant=tenant,
                key=key,
                resources=state.resources,
                clock=state.clock,
                exchange=exchange,
                journal=state.journal,
                variant=variant,
                batch_faults=BatchFaults(fault.failures)
                if fault is not None and fault.kind == "partial_batch"
                else None,
                request_id=request_id,
            )
            response = _encode(route.handler(ctx))
            if fault is not None and fault.kind == "error_after":
                response = self._fault_error(state, fault, request_id)
            alive: Callable[[], bool] | None = None
            if ctx.bound_resource is not None:
                kind, rid = ctx.bound_resource
                resources = state.resources

                def alive() -> bool:
                    return resources.exists(tenant, kind, rid)

            return Execution(response, alive)

        def render(answer: Answer, detail: str | None) -> StoredResponse:
            return self._render(state, answer, detail, request_id)

        outcome = state.engine.process(engine_request, execute, render, on_claimed)
        exchange.decision = outcome.decision  # type: ignore[assignment]
        exchange.fingerprint = outcome.fingerprint
        exchange.committed = outcome.committed
        exchange.replay_of = outcome.replay_of
        if outcome.note and not exchange.note:
            exchange.note = outcome.note
        if fault is not None:
            self._after_commit(fault, action)
        return outcome.response

    def _before_layer(
        self, state: State, exchange: Exchange, fault: Fault, action: WireAction, request_id: str
    ) -> StoredResponse | None:
        if fault.kind == "reset":
            action.kind = "reset"
            return StoredResponse(500, (), b"")
        if fault.kind == "restart":
            self.restart(keep_records=fault.keep_records)
            exchange.note = "server restarted" + ("" if fault.keep_records else "; records lost")
            action.kind = "reset"
            return StoredResponse(500, (), b"")
        if fault.kind == "error_before":
            return self._fault_error(state, fault, request_id)
        return None

    def _fault_error(self, state: State, fault: Fault, request_id: str) -> StoredResponse:
        reply = state.variant.error_shape(
            fault.status,
            "injected_fault",
            f"Injected {fault.kind} fault ({fault.status}).",
            type="api_error",
            request_id=request_id,
        )
        response = _encode(reply)
        if fault.retry_after is not None:
            response = StoredResponse(
                response.status,
                (*response.headers, ("Retry-After", fault.retry_after)),
                response.body,
            )
        return response

    @staticmethod
    def _after_commit(fault: Fault, action: WireAction) -> None:
        if fault.kind == "drop":
            action.kind = "drop"
        elif fault.kind == "garbage":
            action.kind = "garbage"
            action.style = fault.style
        elif fault.kind == "slow":
            action.kind = "late"
            action.delay = fault.seconds
            action.release = fault.released

    def _schema_problem(self, route: Route, data: Any) -> str | None:
        if route.schema is None:
            return None
        cached = self._validators.get(id(route.schema))
        if cached is None or cached[0] is not route.schema:
            cls = jsonschema.validators.validator_for(route.schema)
            cls.check_schema(route.schema)
            cached = (route.schema, cls(route.schema))
            self._validators[id(route.schema)] = cached
        validator = cached[1]
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "(body)"
        return f"{where}: {error.message}"


#: A body over the size limit is still read (and thrown away) up to this many bytes before the
#: 413 goes out, so a client still sending it reads the answer instead of a connection reset.
_DRAIN_LIMIT = 64 * 1024 * 1024


def _drain(request: Request) -> None:
    stream = request.stream
    with contextlib.suppress(OSError, ValueError):
        while stream.read(65536):
            pass


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"
