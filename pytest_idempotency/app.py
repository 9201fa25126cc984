"""The WSGI app: socket -> app -> (faults, idempotency layer, provider handler) -> journal.

One :class:`App` serves one variant at a time; :meth:`App.reset` swaps in fresh state (store,
journal, resources, faults, clock offset) in microseconds, so one server serves a whole session.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from werkzeug.wrappers import Request

from . import pipeline, schemas
from .clock import Clock
from .engine import Engine, RequestLost
from .faults import Fault, FaultPlan, WireAction
from .incoming import Incoming
from .journal import Exchange, Journal
from .pipeline import ERROR_HEADER, RAW_HEADERS_KEY, Flight, internal_error
from .pipeline import encode_reply as _encode
from .policy import BODILESS_STATUSES, Answer
from .store import Record, Store, StoredResponse, StoreFull
from .stubs import StubPlan
from .variant import Original, Resources, Route, Variant
from .webhooks.registry import close_for as close_webhooks

__all__ = ["ERROR_HEADER", "RAW_HEADERS_KEY", "WIRE_KEY", "App", "State"]

#: environ key where the app leaves the socket-level action for the server.
WIRE_KEY = "pytest_idempotency.wire"
#: environ key where the server says a request cannot be framed: ``(status, code, message)``;
#: the app answers it in the variant's envelope (the admin API in JSON) and the server closes.
FRAMING_KEY = "pytest_idempotency.framing"
#: environ key set when the body passed the size limit while being read (it was not kept).
TOO_LARGE_KEY = "pytest_idempotency.too_large"
#: environ key where an admin call leaves a plain-text answer (sent instead of its JSON).
ADMIN_TEXT_KEY = "pytest_idempotency.admin_text"

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
    stubs: StubPlan = field(init=False)
    engine: Engine = field(init=False)
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.store = Store(self.clock)
        self.journal = Journal(self.clock.now)
        self.resources = Resources()
        self.faults = FaultPlan(self.seed)
        self.stubs = StubPlan()
        self.engine = Engine(self.variant.policy, self.store)
        if self.variant.seed is not None:
            self.variant.seed(self.resources)


class App:
    """The fake API as a WSGI application."""

    def __init__(
        self,
        variant: Variant,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        admin: Callable[[App, Request], tuple[int, Any]] | None = None,
        bound: Callable[[State], None] | None = None,
    ) -> None:
        schemas.check_routes(variant.routes)  # a broken schema fails here, not at a request
        self.clock = clock or Clock()
        self.seed = seed
        self.admin = admin
        #: Applied to every fresh state before it serves: the standalone server's limits
        #: (an :class:`~pytest_idempotency.admin.Admin` brings its own ``bound``).
        self.bound = bound if bound is not None else getattr(admin, "bound", None)
        self.state = self._fresh(variant)

    def _fresh(self, variant: Variant) -> State:
        state = State(variant, self.clock, self.seed)
        if self.bound is not None:
            self.bound(state)
        return state

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def variant(self) -> Variant:
        return self.state.variant

    def reset(self, variant: Variant | None = None, seed: int | None = None) -> State:
        """Fresh records, journal, resources, faults and clock; optionally another variant.

        A request of the old state still in flight is lost, as in a restart: one parked at
        its claim (a ``hold`` or ``in_flight`` fault, a duplicate waiting for it) or reaching
        its claim from now on ends with a connection reset, and a ``slow``/``late`` response
        not yet sent is lost; nothing it did is committed anywhere."""
        old = self.state
        if variant is not None:
            schemas.check_routes(variant.routes)  # refused before anything goes
        with old.lock:
            old.generation += 1
        old.faults.end(lost=True)
        old.store.clear()
        close_webhooks(old.resources)
        self.clock.reset()
        if seed is not None:
            self.seed = seed
        self.state = self._fresh(variant or old.variant)  # bounded before it serves
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
        status, headers, body = self.respond(environ)
        start_response(status, headers)
        return [body]

    def serves_admin(self, path: str) -> bool:
        """Whether a request to ``path`` is an admin call (the app has an admin API)."""
        return self.admin is not None and path.startswith("/__admin/")

    def respond(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """The answer to one request as ``(status line, headers, body)``: what the WSGI call
        gives, without its ``start_response`` round trip (the fake's own server calls this)."""
        request = Incoming(environ)
        if self.serves_admin(request.path):
            return self._admin(environ)
        response, action = self._serve(self.state, request)
        environ[WIRE_KEY] = action
        if response.status in BODILESS_STATUSES:  # never a body, nor a length (RFC 9110)
            return _status_line(response.status), list(response.headers), b""
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        return _status_line(response.status), headers, response.body

    def _admin(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        assert self.admin is not None
        framing = environ.get(FRAMING_KEY)
        if framing is not None:
            environ[WIRE_KEY] = WireAction(close=True)
            status, payload = framing[0], json.dumps({"error": framing[2]})
        else:
            status, payload = self.admin(self, Request(environ))
        text = environ.pop(ADMIN_TEXT_KEY, None)  # an admin call that answers plain text
        body = str(payload if text is None else text).encode()  # the admin API's is JSON text
        content_type = "application/json" if text is None else "text/plain; charset=utf-8"
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        return f"{status} {_reason(status)}", headers, body

    def _serve(self, state: State, request: Incoming) -> tuple[StoredResponse, WireAction]:
        environ = request.environ
        variant = state.variant
        method = request.method  # upper-cased as read
        path = request.path
        content_type = environ.get("CONTENT_TYPE", "")
        framing = environ.get(FRAMING_KEY)
        raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
        if framing is None and raw_length and not (raw_length.isascii() and raw_length.isdigit()):
            framing = (400, "invalid_content_length", _not_a_length(raw_length))
        if framing is not None:
            return self._bad_framing(state, request, framing)
        length = request.content_length
        too_large = bool(environ.get(TOO_LARGE_KEY)) or (
            length is not None and length > variant.max_body_bytes
        )
        if too_large and length is not None and length <= _DRAIN_LIMIT:
            _drain(request)
        body = b"" if too_large else request.get_data()
        if not too_large and len(body) > variant.max_body_bytes:
            too_large = True
        exchange = state.journal.open(method, path, body, content_type, request.header_pairs())
        action = WireAction()
        try:
            response = self._handle(state, request, exchange, body, too_large, action)
        except RequestLost:
            exchange.wire = "reset"
            exchange.note = "lost in a server restart"
            action.kind = "reset"
            response = StoredResponse(500, (), b"")
        except StoreFull as full:
            response = self._store_full(state, exchange, full)
        except Exception as exc:  # the fake itself broke: say so, never a retryable 500
            response = internal_error(state, exchange, exc)
        if too_large:
            action.close = True
        policy = state.variant.policy
        if policy.echo_key_header:
            response = self._echo_key(policy.key_header, request, response)
        exchange.status = None if action.kind == "reset" else response.status
        if exchange.wire == "pending":
            exchange.wire = _WIRES[action.kind]  # type: ignore[assignment]
        if action.kind == "late":  # before the exchange is final: a restart from then on loses it
            state.faults.track(action, exchange)
        exchange.finished.set()
        state.journal.touch()
        return response, action

    def _store_full(self, state: State, exchange: Exchange, full: StoreFull) -> StoredResponse:
        """No room for another record: ``507`` in the variant's envelope, nothing ran."""
        exchange.decision = "rejected"
        exchange.note = str(full)
        where = f"#{exchange.seq} {exchange.method} {exchange.path}"
        state.journal.problem("internal", f"{where}: {full}")
        answer = Answer(507, "store_full", str(full))
        rendered = self._render(state, answer, None, f"req_{exchange.seq:06d}")
        return StoredResponse(
            rendered.status, (*rendered.headers, (ERROR_HEADER, "store-full")), rendered.body
        )

    def _bad_framing(
        self, state: State, request: Incoming, framing: tuple[int, str, str]
    ) -> tuple[StoredResponse, WireAction]:
        """A request the server cannot frame (say a ``Content-Length`` that is not a whole
        number): refused in the variant's envelope and the connection closed (its bytes must
        not be read as a next request)."""
        status, code, message = framing
        exchange = state.journal.open(request.method, request.path, b"", "")
        exchange.decision = "rejected"
        exchange.note = message
        answer = Answer(status, code, "{key}")
        response = self._render(state, answer, message, f"req_{exchange.seq:06d}")
        exchange.status = response.status
        exchange.wire = "response"
        exchange.finished.set()
        state.journal.touch()
        return response, WireAction(close=True)

    @staticmethod
    def _echo_key(
        header: str | None, request: Incoming, response: StoredResponse
    ) -> StoredResponse:
        """Echo the request's key header on the response (Stripe does, on every response)."""
        if header is None or header not in request.headers:
            return response
        if any(name.lower() == header.lower() for name, _ in response.headers):
            return response
        return StoredResponse(
            response.status, (*response.headers, (header, request.headers[header])), response.body
        )

    def _render(
        self,
        state: State,
        answer: Answer,
        detail: str | None,
        request_id: str,
        record: Record | None = None,
    ) -> StoredResponse:
        shape, message = state.variant.record_error_shape, answer.render_message(detail)
        if record is not None and shape is not None:
            stored = record.response
            original = Original(
                record.owner_seq, stored.status if stored else None, stored.body if stored else b""
            )
            reply = shape(
                answer.status,
                answer.code,
                message,
                type=answer.type,
                request_id=request_id,
                original=original,
            )
        else:
            reply = state.variant.error_shape(
                answer.status, answer.code, message, type=answer.type, request_id=request_id
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
        request: Incoming,
        exchange: Exchange,
        body: bytes,
        too_large: bool,
        action: WireAction,
    ) -> StoredResponse:
        """The request's life, stage by stage (:mod:`pytest_idempotency.pipeline`)."""
        flight = Flight(self, state, request, exchange, body, too_large, action)
        return pipeline.run(flight)

    def _fault_error(self, state: State, fault: Fault, request_id: str) -> StoredResponse:
        answer = state.variant.fault_error
        reply = state.variant.error_shape(
            fault.status,
            answer.code,
            answer.render_message(f"{fault.kind} fault ({fault.status})"),
            type=answer.type,
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

    def _schema_problem(self, route: Route, data: Any) -> str | None:
        if route.schema is None:
            return None
        found = schemas.problem(route.schema, data)
        return None if found is None else _bounded(f"{found[0]}: {found[1]}")


#: What went out on the socket, by the kind of the wire action.
_WIRES = {
    "response": "response",
    "drop": "dropped",
    "reset": "reset",
    "late": "late",
    "garbage": "garbage",
}

#: A body over the size limit is still read (and thrown away) up to this many bytes before the
#: 413 goes out, so a client still sending it reads the answer instead of a connection reset.
_DRAIN_LIMIT = 64 * 1024 * 1024


#: Longest schema problem the answer, the record, the note and the problems list repeat: a 1 MB
#: invalid value is quoted by its first characters, not kept four times.
_MAX_PROBLEM_TEXT = 400


def _bounded(text: str) -> str:
    if len(text) <= _MAX_PROBLEM_TEXT:
        return text
    return f"{text[: _MAX_PROBLEM_TEXT - 60]}... (cut: {len(text)} characters in all)"


def _not_a_length(raw_length: str) -> str:
    return (
        f"Content-Length must be a whole number of bytes (got {raw_length[:40]!r}); "
        "let the HTTP client set it"
    )


def _drain(request: Incoming) -> None:
    stream = request.stream
    with contextlib.suppress(OSError, ValueError):
        while stream.read(65536):
            pass


@functools.lru_cache(maxsize=256)
def _status_line(status: int) -> str:
    return f"{status} {_reason(status)}"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"
