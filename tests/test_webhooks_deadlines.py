"""Deadlines of webhook delivery, with real sockets: each attempt to a URL has one deadline for
the whole exchange, and when it passes the socket is shut and the worker thread ends (a
receiver that trickles its answer leaves nothing behind); one clock move spends a bounded time
delivering and leaves the rest due; URLs no HTTP request can carry are refused when they are
registered (``docs/webhooks.md``)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hardening_support import Standalone, clean_stderr, wait_until

from pytest_idempotency.webhooks import DestinationError
from pytest_idempotency.webhooks import destinations as destinations_module
from pytest_idempotency.webhooks import scheduler as scheduler_module

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")

#: A trickling receiver sends one byte this often (real seconds).
DRIP = 0.2
#: The delivery timeout these tests configure (real seconds).
TIMEOUT = 0.5
#: Generous upper bound on how long a cut attempt's thread and socket may take to go.
GONE_WITHIN = 5.0
MODA = {"Authorization": "Bearer moda_test_key_a"}


class Receiver:
    """A loopback socket server: ``handle(conn)`` runs on a thread per connection, and the
    connection is closed after it."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.handle = handle
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, name="test-receiver", daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client went away: it is over
            self.handle(conn)

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()


def trickle(conn: socket.socket) -> None:
    """Read the request, then answer one byte every :data:`DRIP` seconds, forever (until the
    client closes the connection and a send fails)."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while True:
        conn.sendall(b"X")
        time.sleep(DRIP)


def stuck(conn: socket.socket) -> None:
    """Read the request and never answer, until the client leaves."""
    while conn.recv(65536):
        pass


@pytest.fixture
def trickling() -> Iterator[Receiver]:
    receiver = Receiver(trickle)
    yield receiver
    receiver.close()


@pytest.fixture
def stuck_receiver() -> Iterator[Receiver]:
    receiver = Receiver(stuck)
    yield receiver
    receiver.close()


def _delivery_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "webhook-delivery"}


def _fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


# -- 1. one deadline per attempt, and nothing outlives it -------------------------------------


def test_a_trickling_receiver_leaves_no_delivery_thread_or_socket_after_the_deadline(
    idempotent_api: Any, trickling: Receiver
) -> None:
    hooks = idempotent_api.webhooks
    hooks.configure(timeout=TIMEOUT, schedule=(1, 1))
    hooks.register(trickling.url)
    before_threads, before_fds = _delivery_threads(), _fds()
    for n in range(2):
        hooks.emit("thing.created", {"id": f"t{n}"})
    started = time.monotonic()
    hooks.clock.advance(10)  # 2 events x 3 attempts, each cut at its deadline
    took = time.monotonic() - started

    outcomes = [a.outcome for a in hooks.deliveries]
    assert outcomes == ["timeout"] * 6
    wait_until(lambda: not (_delivery_threads() - before_threads), "the delivery threads to end")
    wait_until(lambda: _fds() <= before_fds, "the delivery sockets to close", GONE_WITHIN)
    # each attempt ended at its deadline (plus the margin to end its thread), not per read
    assert took < 6 * (TIMEOUT + destinations_module.CUT_GRACE)
    assert [j.state for j in hooks.jobs] == ["failed", "failed"]


def test_the_standalone_server_keeps_no_thread_or_socket_of_a_trickled_attempt(
    trickling: Receiver,
) -> None:
    server = Standalone("--variant", "moda")
    try:
        pid = server.proc.pid
        config = {"timeout": TIMEOUT, "schedule": [1, 1]}
        assert server.call("POST", "/__admin/webhooks/configure", config)[0] == 200
        endpoint = {"url": trickling.url}
        assert server.call("POST", "/__admin/webhooks/endpoints", endpoint)[0] == 201
        task = {"prompt": "deck", "idempotency_key": "k-1"}
        assert server.call("POST", "/v1/tasks", task, **MODA)[0] == 201
        threads, fds = _threads(pid), _fds(pid)
        assert server.call("POST", "/__admin/clock", {"advance": 40})[0] == 200
        status, listing = server.call("GET", "/__admin/webhooks/deliveries")
        assert status == 200
        assert [d["outcome"] for d in listing["deliveries"]] == ["timeout"] * 6
        wait_until(lambda: _threads(pid) <= threads, "the server's delivery threads to end")
        wait_until(lambda: _fds(pid) <= fds, "the server's delivery sockets to close")
    finally:
        err = server.close()
    assert clean_stderr(err) == []


# -- 2. one clock move spends a bounded time delivering ---------------------------------------


#: What the docs promise for one clock move: the budget, then one attempt to its deadline and
#: the margin to end its thread; plus slack for a loaded machine.
def _clock_bound(timeout: float) -> float:
    return scheduler_module.CLOCK_BUDGET + timeout + destinations_module.CUT_GRACE + 3.0


def test_a_standalone_clock_advance_against_a_stuck_receiver_returns_within_its_bound(
    stuck_receiver: Receiver,
) -> None:
    server = Standalone("--variant", "moda")
    timeout = 1.0
    try:
        config = {"timeout": timeout, "schedule": [1] * 5}
        assert server.call("POST", "/__admin/webhooks/configure", config)[0] == 200
        endpoint = {"url": stuck_receiver.url}
        assert server.call("POST", "/__admin/webhooks/endpoints", endpoint)[0] == 201
        for n in range(2):  # 4 jobs x 6 attempts x 1 s: 24 s one after another
            task = {"prompt": f"deck {n}", "idempotency_key": f"k-{n}"}
            assert server.call("POST", "/v1/tasks", task, **MODA)[0] == 201
        started = time.monotonic()
        assert server.call("POST", "/__admin/clock", {"advance": 40})[0] == 200
        took = time.monotonic() - started
        status, listing = server.call("GET", "/__admin/webhooks/deliveries")
        assert listing["due_now"] > 0  # left due, not lost: pending, for the next call
        assert {j["state"] for j in listing["jobs"]} == {"pending"}
        status, got = server.call("GET", "/v1/tasks/task_000001", **MODA)
        assert got["status"] == "completed"  # later events still happened on the clock
        started = time.monotonic()
        status, again = server.call("POST", "/__admin/webhooks/deliver", {})
        took_again = time.monotonic() - started
        assert status == 200
        assert again["made"] >= 1  # each call makes progress
        assert server.call("POST", "/__admin/webhooks/drain", {})[0] == 200
    finally:
        err = server.close()
    assert took < _clock_bound(timeout), took
    assert took_again < _clock_bound(timeout), took_again
    assert clean_stderr(err) == []


def test_a_clock_move_leaves_what_a_stuck_receiver_held_up_due_and_deliver_due_waits(
    monkeypatch: pytest.MonkeyPatch, idempotent_api: Any, stuck_receiver: Receiver
) -> None:
    monkeypatch.setattr(scheduler_module, "CLOCK_BUDGET", 0.5)
    hooks = idempotent_api.webhooks
    hooks.configure(timeout=0.2, schedule=(1, 1, 1))
    hooks.register(stuck_receiver.url)
    events = [hooks.emit("thing.created", {"id": f"t{n}"}) for n in range(2)]
    started = time.monotonic()
    hooks.clock.advance(10)  # 8 attempts of 0.2 s: 1.6 s unbounded
    took = time.monotonic() - started
    made = len(hooks.deliveries)
    assert 1 <= made < 8
    assert hooks.due_now() == 2  # both deliveries, each still due on the fake clock
    assert took < _clock_bound(0.2)
    (problem, *_) = hooks.problems()
    assert "real seconds of delivering" in problem

    assert hooks.deliver_due() == 8 - made  # the explicit wait makes every outcome
    assert hooks.due_now() == 0
    attempts = hooks.deliveries
    assert [a.outcome for a in attempts] == ["timeout"] * 8
    assert [a.at for a in attempts] == sorted(a.at for a in attempts)  # still in clock order
    assert {a.event_id for a in attempts} == {e.id for e in events}
    assert hooks.problems() == []


def test_a_responsive_receiver_is_all_delivered_when_the_clock_move_returns(
    monkeypatch: pytest.MonkeyPatch, idempotent_api: Any
) -> None:
    monkeypatch.setattr(scheduler_module, "CLOCK_BUDGET", 0.5)
    hooks = idempotent_api.webhooks
    got: list[str] = []
    hooks.register(lambda request: got.append(request.json()["id"]))
    ids = [hooks.emit("thing.created", {"id": f"t{n}"}).id for n in range(50)]
    hooks.clock.advance(0)
    assert got == ids
    assert hooks.due_now() == 0


# -- 3. URLs no HTTP request can carry are refused --------------------------------------------

BAD_URLS = [
    ("http://127.0.0.1:9/a\r\nX-Injected: y", "a CR"),
    ("http://127.0.0.1:9/a\nb", "an LF"),
    ("http://127.0.0.1:9/a b", "a space"),
    ("http://127.0.0.1:9/\x00", "a NUL"),
    ("http://127.0.0.1:9/a\tb", "a tab"),
    ("http://127.0.0.1:9/\u00e9\u4e2d", "non-ASCII character 'é'"),
    ("http://127.0.0.1:9/?x=\x7f", "control character 0x7f"),
    ("http://[::1%25lo]:9/", "IPv6 zone id"),
]


@pytest.mark.parametrize(("url", "said"), BAD_URLS)
def test_a_receiver_url_no_request_can_carry_is_refused_naming_why(
    idempotent_api: Any, url: str, said: str
) -> None:
    hooks = idempotent_api.webhooks
    with pytest.raises(DestinationError, match=f"webhook URL .*{said}"):
        hooks.register(url)
    with pytest.raises(DestinationError, match=f"webhook URL .*{said}"):
        hooks.route("https://myapp.com/webhooks", url)
    with pytest.raises(DestinationError, match=f"callback URL .*{said}"):
        hooks.route(url.replace("127.0.0.1:9", "myapp.com"), lambda request: 200)
    assert hooks.endpoints == []


@pytest.mark.idempotency(variant="moda")
def test_a_task_whose_callback_url_no_request_can_carry_is_made_and_its_events_skipped(
    idempotent_api: Any,
) -> None:
    url = "http://127.0.0.1:9/a b\r\nX: y"
    body = {"prompt": "deck", "callback_url": url, "idempotency_key": "k-1"}
    response = requests.post(
        idempotent_api.url_for("/v1/tasks"), json=body, headers=idempotent_api.headers(), timeout=10
    )
    assert response.status_code == 201, response.text
    idempotent_api.clock.advance(30)
    hooks = idempotent_api.webhooks
    assert [u for _, u in hooks.skipped] == [url, url]  # task.created and task.completed
    assert hooks.deliveries == []


def _refused_then_served(
    path: str, refused: Any, said: tuple[str, ...], allowed: Any, status: int
) -> None:
    """On a standalone Moda server: ``refused`` is a 400 saying each of ``said``, the server
    goes on serving (a clock advance), ``allowed`` is taken, stderr stays clean."""
    server = Standalone("--variant", "moda")
    try:
        answer, body = server.call("POST", path, refused)
        assert answer == 400, body
        for words in said:
            assert words in body["error"], body
        assert server.call("POST", "/__admin/clock", {"advance": 10})[0] == 200
        assert server.call("POST", path, allowed)[0] == status
    finally:
        err = server.close()
    assert clean_stderr(err) == []


@pytest.mark.parametrize(("url", "said"), BAD_URLS)
def test_the_admin_api_refuses_a_receiver_url_no_request_can_carry_naming_the_field(
    url: str, said: str
) -> None:
    allowed = {"url": "http://127.0.0.1:9/hook"}
    refused = {"url": url}
    _refused_then_served("/__admin/webhooks/endpoints", refused, ('"url" ', said), allowed, 201)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"url": "http://127.0.0.1:9/a b"}, '"url" "http://127.0.0.1:9/a b" has a space'),
        (
            {"url": "http://127.0.0.1:9/hook", "callback_url": "https://myapp.com/a\r\nb"},
            '"callback_url" "https://myapp.com/a\\r\\nb" has a CR',
        ),
    ],
)
def test_the_admin_api_names_the_field_whose_url_is_refused(body: Any, said: str) -> None:
    allowed = {"url": "http://127.0.0.1:9/hook", "callback_url": "https://myapp.com/hook"}
    _refused_then_served("/__admin/webhooks/endpoints", body, (said,), allowed, 201)
