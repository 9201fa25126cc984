"""Late responses held until the client gives up (``WireAction(until_peer_closes=True)``):
discarded when the client closes its end, sent when the bound passes, never a busy wait."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hardening_support import TIMEOUT, Target, read_all, statuses, wait_until

from pytest_idempotency import get_variant
from pytest_idempotency.app import WIRE_KEY, App
from pytest_idempotency.faults import WireAction
from pytest_idempotency.peer import hold_late
from pytest_idempotency.server import IdempotencyServer

REQUEST = (
    b"POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: 13\r\n"
)
BODY = b'{"name": "x"}'


def request(key: bytes) -> bytes:
    return REQUEST + b"Idempotency-Key: " + key + b"\r\n\r\n" + BODY


def _late(bound: float, release: threading.Event | None = None) -> WireAction:
    return WireAction(kind="late", until_peer_closes=True, delay=bound, release=release)


def test_a_late_response_is_held_until_the_peer_closes() -> None:
    server, client = socket.socketpair()
    with server, client:
        closer = threading.Thread(target=client.close)
        closer.start()
        assert hold_late(_late(30.0), server) is True
        closer.join()


def test_a_late_response_goes_out_when_its_bound_passes() -> None:
    server, client = socket.socketpair()
    with server, client:
        started = time.monotonic()
        assert hold_late(_late(0.05), server) is False
        assert time.monotonic() - started >= 0.05


def test_a_late_response_goes_out_when_released() -> None:
    server, client = socket.socketpair()
    released = threading.Event()
    released.set()
    with server, client:
        assert hold_late(_late(30.0, released), server) is False


class _LateApp(App):
    """The generic fake, with every response handed to the server as late until the client
    closes (what a ``WireAction(kind="late", until_peer_closes=True)`` from a fault asks)."""

    bound = 30.0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        body = super().__call__(environ, start_response)
        action = WireAction(kind="late", delay=self.bound)
        action.until_peer_closes = True  # type: ignore[attr-defined]
        environ[WIRE_KEY] = action
        return body


@pytest.fixture
def late_server() -> Iterator[tuple[IdempotencyServer, _LateApp]]:
    app = _LateApp(get_variant("generic"))
    with IdempotencyServer(app) as server:
        yield server, app


def test_a_response_held_until_the_peer_closes_is_discarded(
    late_server: tuple[IdempotencyServer, _LateApp],
) -> None:
    server, app = late_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request(b"held"))
        app.state.journal.wait_for(lambda j: len(j) == 1 and j[0].finished.is_set())
        sock.shutdown(socket.SHUT_WR)  # the client gives up: its end is closed
        assert read_all(sock) == b""  # the held response never went out
    wait_until(lambda: not server.open_connections, "the held connection to end")
    assert len(app.state.journal.side_effects) == 1
    app.bound = 0.01  # the server goes on serving: the next response goes out at its bound
    assert statuses(Target.raw_to(server.port, request(b"next"), half_close=False))[0] < 300


def test_a_response_held_until_the_peer_closes_goes_out_at_its_bound(
    late_server: tuple[IdempotencyServer, _LateApp],
) -> None:
    server, app = late_server
    app.bound = 0.05
    answer = Target.raw_to(server.port, request(b"bounded"), half_close=False)
    assert statuses(answer)[0] < 300
