"""Serving the app on loopback, on pytest-httpserver's werkzeug server.

werkzeug's own request handler closes every connection and writes headers and body in
separate sends. Ours keeps HTTP/1.1 connections alive, sets TCP_NODELAY, writes each response in
one send, and carries out the socket-level faults the app asks for (lost response, RST,
late reply, garbage) without tracebacks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from email.utils import formatdate
from typing import Any

from pytest_httpserver.httpserver import HTTPServerBase
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .app import RAW_HEADERS_KEY, WIRE_KEY, App
from .faults import WireAction
from .peer import hold_late

__all__ = ["IdempotencyServer"]


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 30

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tracker: set[socket.socket] | None = getattr(self.server, "open_connections", None)
        if tracker is not None:
            tracker.add(self.connection)

    def finish(self) -> None:
        tracker: set[socket.socket] | None = getattr(self.server, "open_connections", None)
        if tracker is not None:
            tracker.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: the journal is the log."""

    def log_error(self, format: str, *args: Any) -> None:
        """Quiet: dropped connections are expected here."""

    def run_wsgi(self) -> None:
        busy: dict[socket.socket, int] | None = getattr(self.server, "busy_connections", None)
        changed: threading.Condition | None = getattr(self.server, "busy_changed", None)
        if busy is None or changed is None:
            self._run_wsgi()
            return
        conn = self.connection
        with changed:
            busy[conn] = threading.get_ident()
        try:
            self._run_wsgi()
        finally:
            with changed:
                busy.pop(conn, None)
                changed.notify_all()

    def _run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.environ = self.make_environ()
        raw: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            raw.setdefault(name.lower(), []).append(value)
        environ[RAW_HEADERS_KEY] = raw

        captured: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            captured["status"] = status
            captured["headers"] = headers
            return lambda data: None

        try:
            chunks = self.server.app(environ, start_response)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return

        action: WireAction = environ.get(WIRE_KEY) or WireAction()
        if action.close or self.close_connection:
            self.close_connection = True
        try:
            self._emit(action, captured["status"], captured["headers"], body)
        except (TimeoutError, ConnectionError, OSError):
            self.close_connection = True

    # -- the wire ----------------------------------------------------------------------------

    def _emit(
        self, action: WireAction, status: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        if action.kind == "late":
            if action.until_peer_closes:
                if hold_late(action, self.connection):  # the client gave up: discard the reply
                    self.close_connection = True
                    return
            elif action.release is not None:
                action.release.wait(action.delay)
            elif action.delay:
                time.sleep(action.delay)
            if action.settle():
                action = WireAction(kind="reset")
        if action.kind == "reset":
            self._reset()
            return
        if action.kind == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        head = [f"HTTP/1.1 {status}"]
        head.extend(f"{name}: {value}" for name, value in headers)
        head.append("Server: pytest-idempotency")
        head.append(f"Date: {formatdate(usegmt=True)}")
        if self.close_connection or self.request_version != "HTTP/1.1":
            head.append("Connection: close")
            self.close_connection = True
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            payload += body
        if action.kind == "garbage":
            self.close_connection = True
            if action.style == "status_line":
                payload = b"HTTP/1.1 2O1 GARBLED\r\n\x00\xff\xfe not http\r\n\r\n"
            else:
                cut = len(payload) - max(1, len(body) // 2) if body else len(payload)
                payload = payload[:cut] if body else payload + b"\x00\xff\xfe"
            self.wfile.write(payload)
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the peer sees a TCP RST (``ConnectionResetError``)."""
        self.close_connection = True
        conn = self.connection
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            os.close(conn.detach())


class IdempotencyServer(HTTPServerBase):
    """A threaded loopback HTTP server serving one :class:`~pytest_idempotency.app.App`.

    ``with IdempotencyServer(app) as server: ...`` or ``start()`` / ``stop()``.
    """

    def __init__(
        self, app: App, host: str = "127.0.0.1", port: int = 0, ssl_context: Any = None
    ) -> None:
        super().__init__(host, port, ssl_context, threaded=True)
        self.app = app

    def start(self) -> None:
        if self.is_running():
            raise RuntimeError("the server is already running; call stop() first")
        server = make_server(
            self.host,
            self.port,
            self.app,
            threaded=True,
            request_handler=_Handler,
            ssl_context=self.ssl_context,
        )
        server.open_connections = set()  # type: ignore[attr-defined]
        server.busy_connections = {}  # type: ignore[attr-defined]
        server.busy_changed = threading.Condition()  # type: ignore[attr-defined]
        self.server = server
        self.port = server.port
        self.server_thread = threading.Thread(
            target=self.thread_target, name=f"pytest-idempotency:{self.port}", daemon=True
        )
        self.server_thread.start()

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        if self.server is not None:
            self.close_connections()
        super().stop()

    def close_connections(self, wait: float = 5.0) -> None:
        """Close every open client connection (idle keep-alive ones included).

        Requests still being answered finish first, for at most ``wait`` seconds (a restart
        has released them: a lost one ends with its RST, not a FIN); then every connection is
        shut, so a client sees its pooled connection closed before it sends on it again."""
        server = self.server
        tracker: set[socket.socket] = getattr(server, "open_connections", set())
        busy: dict[socket.socket, int] = getattr(server, "busy_connections", {})
        changed: threading.Condition | None = getattr(server, "busy_changed", None)
        me = threading.get_ident()
        if changed is not None:
            with changed:
                changed.wait_for(lambda: all(t == me for t in busy.values()), timeout=wait)
                mine = {conn for conn, t in busy.items() if t == me}
        else:
            mine = set()
        for conn in list(tracker):
            if conn in mine:
                continue
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    @property
    def url(self) -> str:
        return self.url_for("/").rstrip("/")

    def dispatch(self, request: Request) -> Response:  # pragma: no cover - not used
        raise NotImplementedError("IdempotencyServer serves its App directly")
