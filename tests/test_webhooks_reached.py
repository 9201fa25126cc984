"""Which delivery attempts reached the receiver, and what a replaced webhooks hub says.

An attempt reached the receiver when its whole request got there, answered or not: a timeout
after sending, a receiver that closed without answering or returned no status all count, in
``assert_processed_once`` and ``assert_delivered(times=)``; a refused connection or a timeout
before the request went out does not. Receivers are real: ``http.server`` on a loopback socket
in a thread, a raw socket, and in-process callables, WSGI and ASGI apps.

``idempotent_api.reset()`` and ``explore()`` replace the webhooks hub; a handle taken before
refuses every call, naming the fix (pytester, as users run it). See ``docs/webhooks.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.idempotency(variant="moda")

#: The delivery timeout these tests configure (real seconds).
TIMEOUT = 0.5
#: How long a slow receiver takes to answer (real seconds): past the delivery timeout.
SLOW = 1.5
KINDS = ["url", "callable", "wsgi", "asgi"]


def create_task(api: Any, key: str = "k-1") -> None:
    _, url, params = api.example()
    response = requests.post(url, **api.request_kwargs(params, key=key), timeout=5)
    assert response.status_code == 201, response.text


class Slow:
    """One receiver served as ``kind``: it records each event's id as soon as it has the whole
    request, keeps its first ``slow`` deliveries waiting :data:`SLOW` seconds before it answers
    200, and answers the later ones at once."""

    def __init__(self, kind: str, slow: int) -> None:
        self.kind, self.slow = kind, slow
        self.received: list[str] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self.target: Any = {"callable": self.callable, "wsgi": self.wsgi, "asgi": self.asgi}.get(
            kind
        )
        if kind == "url":
            self.target = self._serve()

    def take(self, body: bytes) -> bool:
        """Record the event; whether to be slow with this delivery."""
        with self.lock:
            self.received.append(json.loads(body)["id"])
            return len(self.received) <= self.slow

    def callable(self, request: Any) -> int:
        if self.take(request.body):
            self.release.wait(SLOW)
        return 200

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        if self.take(body):
            self.release.wait(SLOW)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        if self.take(message["body"]):
            await asyncio.sleep(SLOW)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def _serve(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if owner.take(body):
                    owner.release.wait(SLOW)
                with contextlib.suppress(OSError):  # the fake cut the socket at its deadline
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a connection the fake cut: nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def slow(request: pytest.FixtureRequest) -> Iterator[Slow]:
    kind, count = request.param
    receiver = Slow(kind, count)
    yield receiver
    receiver.close()


class RawReceiver:
    """A loopback socket server: ``handle(conn)`` on a thread per connection, closed after it."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self.handle(conn)

    def close(self) -> None:
        self.listener.close()


def read_request(conn: socket.socket) -> bytes:
    """The body of one HTTP request, read to its last byte."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return body


# -- F6: an attempt whose request got there reached the receiver, answered or not ---------------


@pytest.mark.parametrize("slow", [(kind, 1) for kind in KINDS], indirect=True, ids=KINDS)
def test_a_delivery_that_timed_out_after_sending_reached_the_receiver(
    idempotent_api: Any, slow: Slow
) -> None:
    hooks = idempotent_api.webhooks
    hooks.configure(schedule=(), timeout=TIMEOUT)
    hooks.register(slow.target, kind=slow.kind, events=["task.created"])
    create_task(idempotent_api)
    hooks.deliver_due()

    hooks.assert_processed_once(slow.received)  # it acted exactly once: that passes
    (attempt,) = hooks.deliveries
    assert (attempt.outcome, attempt.status, attempt.reached) == ("timeout", None, True)
    assert attempt.as_dict()["reached"] is True
    assert slow.received == [attempt.event_id]
    with pytest.raises(AssertionError, match="processed 0 times, delivered 1 times"):
        hooks.assert_processed_once([])  # it got the event: not acting on it is a failure


@pytest.mark.parametrize("slow", [(kind, 1) for kind in KINDS], indirect=True, ids=KINDS)
def test_a_timed_out_first_attempt_and_its_retry_are_two_deliveries(
    idempotent_api: Any, slow: Slow
) -> None:
    hooks = idempotent_api.webhooks
    hooks.configure(schedule=(10,), timeout=TIMEOUT)
    hooks.register(slow.target, kind=slow.kind, events=["task.created"])
    create_task(idempotent_api)
    hooks.deliver_due()  # slow: a timeout, retried 10 s later
    idempotent_api.clock.advance(10)  # answered at once

    hooks.assert_delivered("task.created", times=2)
    assert [(a.outcome, a.reached) for a in hooks.deliveries] == [("timeout", True), ("ok", True)]
    assert len(slow.received) == 2
    with pytest.raises(AssertionError, match=r"expected 1 deliveries .* the receiver got 2"):
        hooks.assert_delivered("task.created", times=1)
    hooks.assert_processed_once(sorted(set(slow.received)))  # deduped on the event id


def _closes_after_reading(received: list[str]) -> Any:
    def handle(conn: socket.socket) -> None:
        received.append(json.loads(read_request(conn))["id"])  # then close, no answer

    return handle


@pytest.mark.parametrize("how", ["closed_without_answering", "returned_no_status", "no_response"])
def test_a_receiver_that_got_the_request_but_gave_no_status_was_reached(
    idempotent_api: Any, how: str
) -> None:
    received: list[str] = []
    hooks = idempotent_api.webhooks
    hooks.configure(schedule=())
    server = None
    if how == "closed_without_answering":  # a real socket: RemoteDisconnected after sending
        server = RawReceiver(_closes_after_reading(received))
        hooks.register(server.url, events=["task.created"])
    elif how == "returned_no_status":
        hooks.register(
            lambda request: received.append(request.json()["id"]) or "accepted",  # type: ignore[func-returns-value]
            kind="callable",
            events=["task.created"],
        )
    else:

        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            received.append(json.loads(environ["wsgi.input"].read())["id"])
            return []  # never calls start_response

        hooks.register(app, kind="wsgi", events=["task.created"])
    try:
        create_task(idempotent_api)
        hooks.deliver_due()
    finally:
        if server is not None:
            server.close()

    hooks.assert_processed_once(received)
    (attempt,) = hooks.deliveries
    assert (attempt.outcome, attempt.status, attempt.reached) == ("error", None, True)
    assert received == [attempt.event_id]
    with pytest.raises(AssertionError, match="processed 0 times, delivered 1 times"):
        hooks.assert_processed_once([])


def _refused_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    yield f"http://127.0.0.1:{port}/hook"


def _backlog_full_url() -> Iterator[str]:
    """A listener that accepts nothing and whose queue is full: a connection attempt is never
    answered, so the delivery times out before a byte of the request is sent."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.parametrize(
    ("where", "outcome"),
    [
        ("refused", "refused"),
        pytest.param(
            "backlog_full",
            "timeout",
            marks=pytest.mark.skipif(
                sys.platform != "linux", reason="a full accept queue drops connections on Linux"
            ),
        ),
    ],
)
def test_a_refused_connection_or_a_timeout_before_sending_did_not_reach_the_receiver(
    idempotent_api: Any, where: str, outcome: str
) -> None:
    hooks = idempotent_api.webhooks
    hooks.configure(schedule=(), timeout=TIMEOUT)
    urls = _refused_url() if where == "refused" else _backlog_full_url()
    with contextlib.closing(urls):
        hooks.register(next(urls), events=["task.created"])
        create_task(idempotent_api)
        hooks.deliver_due()

    (attempt,) = hooks.deliveries
    assert (attempt.outcome, attempt.reached) == (outcome, False)
    assert attempt.as_dict()["reached"] is False
    assert "before the request was sent" in attempt.answer or outcome == "refused"
    hooks.assert_processed_once([])  # nothing got there: acting on nothing is right
    with pytest.raises(AssertionError, match="processed 1 times, delivered 0 times"):
        hooks.assert_processed_once([attempt.event_id])
    assert hooks.timeline().splitlines()[0].split()[-2:] == ["reached", "fault"]
    assert hooks.timeline().splitlines()[1].split()[-1] == "no"


# -- F7: a hub replaced by reset() or explore() refuses every call ------------------------------

STALE = """
import pytest
import requests

pytestmark = pytest.mark.idempotency(variant="moda")
REPLACED = r"this webhooks hub was replaced when the fake server was reset"


def create(api):
    method, url, params = api.example()
    r = requests.post(url, **api.request_kwargs(params, key="k-1"), timeout=5)
    assert r.status_code == 201


CALLS = {
    "register()": lambda h: h.register(lambda request: 200),
    "route()": lambda h: h.route("https://myapp.com/webhooks/moda", lambda request: 200),
    "configure()": lambda h: h.configure(schedule=()),
    "faults.duplicate()": lambda h: h.faults.duplicate(),
    "faults.concurrent()": lambda h: h.faults.concurrent(),
    "faults.out_of_order()": lambda h: h.faults.out_of_order(),
    "faults.delay()": lambda h: h.faults.delay(5),
    "faults.lost_ack()": lambda h: h.faults.lost_ack(),
    "faults.burst()": lambda h: h.faults.burst(3),
    "faults.chaos()": lambda h: h.faults.chaos(0.5, seed=1),
    "faults.add()": lambda h: h.faults.add("duplicate"),
    "faults.clear()": lambda h: h.faults.clear(),
    "faults.unfired()": lambda h: h.faults.unfired(),
    "emit()": lambda h: h.emit("thing.happened", {"id": "x"}),
    "trigger()": lambda h: h.trigger(),
    "deliver_due()": lambda h: h.deliver_due(),
    "due_now()": lambda h: h.due_now(),
    "deliver_again()": lambda h: h.deliver_again("evt_x"),
    "drain()": lambda h: h.drain(),
    "checkpoint()": lambda h: h.checkpoint(),
    "event()": lambda h: h.event("evt_x"),
    "events": lambda h: h.events,
    "deliveries": lambda h: h.deliveries,
    "jobs": lambda h: h.jobs,
    "endpoints": lambda h: h.endpoints,
    "skipped": lambda h: h.skipped,
    "dropped_events": lambda h: h.dropped_events,
    "timeline()": lambda h: h.timeline(),
    "problems()": lambda h: h.problems(),
    "assert_delivered()": lambda h: h.assert_delivered(),
    "assert_not_delivered()": lambda h: h.assert_not_delivered(),
    "assert_processed_once()": lambda h: h.assert_processed_once([]),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_handle_taken_before_reset_refuses(idempotent_api, call):
    hooks = idempotent_api.webhooks
    faults = hooks.faults
    hooks.register(lambda request: 200)
    idempotent_api.reset()
    with pytest.raises(RuntimeError, match="idempotent_api.webhooks." + call.replace("(", r"\\(").replace(")", r"\\)") + ": " + REPLACED):
        CALLS[call](hooks)
    if call.startswith("faults."):  # the plan itself, held on its own, refuses too
        with pytest.raises(RuntimeError, match=REPLACED):
            CALLS[call](type("H", (), {"faults": faults})())


def test_a_stale_assertion_fails_loudly(idempotent_api):
    hooks = idempotent_api.webhooks
    hooks.register(lambda request: 200)
    idempotent_api.reset()
    hooks.assert_processed_once([])


def test_taken_again_after_reset_it_works(idempotent_api):
    idempotent_api.webhooks.register(lambda request: 200)
    idempotent_api.webhooks.faults.duplicate()
    idempotent_api.reset()
    hooks = idempotent_api.webhooks
    assert hooks.endpoints == [] and hooks.faults.scripted == []  # reset cleared them
    got = []
    hooks.register(lambda request: got.append(request.json()["id"]), events=["task.created"])
    create(idempotent_api)
    idempotent_api.clock.advance(0)
    assert len(got) == 1
    hooks.assert_processed_once(got)


def test_explore_replaces_it_and_receivers_register_inside_the_operation(idempotent_api):
    before = idempotent_api.webhooks
    before.register(lambda request: 200)
    got = []

    def operation():
        hooks = idempotent_api.webhooks  # this run's hub
        hooks.register(lambda request: got.append(request.json()["id"]), events=["task.created"])
        create(idempotent_api)
        idempotent_api.clock.advance(0)

    idempotent_api.explore(operation, max_faults=0)
    assert len(got) == 1  # the receiver registered inside the run got its event
    for call in (
        lambda: before.register(lambda request: 200),
        lambda: before.faults.duplicate(),
        lambda: before.assert_processed_once([]),
    ):
        with pytest.raises(RuntimeError, match=REPLACED):
            call()
"""


def test_a_webhooks_handle_taken_before_reset_or_explore_refuses_every_call_naming_the_fix(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(STALE)
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    calls = 32
    result.assert_outcomes(passed=calls + 2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*RuntimeError: idempotent_api.webhooks.assert_processed_once(): this webhooks hub"
            " was replaced when the fake server was reset (idempotent_api.reset(), or"
            " explore(), which resets before each run), which cleared its endpoints,"
            " configuration, faults and deliveries, so nothing done through it has any effect;"
            " take idempotent_api.webhooks again after reset() or explore() (inside the"
            " explored operation if the operation needs receivers)*",
        ]
    )
