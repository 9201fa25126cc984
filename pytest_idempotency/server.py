"""Serving the app on loopback: a threaded HTTP/1.1 server with strict framing and named limits.

Each connection has its own thread and stays alive between requests; heads and bodies are read by
:mod:`~pytest_idempotency.http1` (strict RFC 9112, limits enforced while reading) and answers
are written in one send by :mod:`~pytest_idempotency.wire`, which also carries out the
socket-level faults the app asks for. Past :attr:`Limits.max_connections` a new connection gets
``503`` and is closed, without a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from .app import App
from .connection import serve_connection
from .limits import MAX_ADMIN_BODY, Limits
from .wire import encode_head

__all__ = ["IdempotencyServer", "Limits"]

_Socket = socket.socket
#: accept() errors that mean "no descriptor (or memory) for another connection right now".
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _spare_descriptor() -> int | None:
    """A descriptor kept in reserve, given back to answer one client when none are left."""
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None


_BUSY_BODY = (
    b"pytest-idempotency: too many connections; close idle ones or raise --max-connections\n"
)


class IdempotencyServer:
    """A threaded loopback HTTP server serving one :class:`~pytest_idempotency.app.App`.

    ``with IdempotencyServer(app) as server: ...`` or ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        app: App,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: Any = None,
        *,
        limits: Limits | None = None,
    ) -> None:
        if ssl_context is not None:
            raise ValueError("IdempotencyServer serves plain HTTP only; drop ssl_context")
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self.open_connections: set[_Socket] = set()
        self.busy_connections: dict[_Socket, int] = {}
        self._busy_lock = threading.Lock()
        self.busy_changed = threading.Condition(self._busy_lock)
        #: Threads in :meth:`close_connections` waiting for busy requests (the only ones
        #: :meth:`mark_idle` has to wake).
        self._draining = 0
        self._listener: _Socket | None = None
        self._thread: threading.Thread | None = None
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._running:
            raise RuntimeError("the server is already running; call stop() first")
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        listener = _Socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(1024)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._running = True
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"pytest-idempotency:{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        listener = self._listener
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._listener = self._thread = None

    def is_running(self) -> bool:
        return self._running

    def __enter__(self) -> IdempotencyServer:
        if not self._running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def server(self) -> IdempotencyServer | None:
        """The running server (itself), or ``None`` when stopped (kept for older callers)."""
        return self if self._running else None

    @property
    def socket(self) -> _Socket | None:
        """The listening socket while the server runs."""
        return self._listener

    # -- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.url_for("/").rstrip("/")

    def url_for(self, suffix: str) -> str:
        if not suffix.startswith("/"):
            suffix = "/" + suffix
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{suffix}"

    def body_limit(self, path: str) -> int:
        """The largest body a request to ``path`` may send."""
        if self.app.admin is not None and path.startswith("/__admin/"):
            return MAX_ADMIN_BODY
        return int(self.app.state.variant.max_body_bytes)

    # -- connections -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        spare = _spare_descriptor()
        pause = 0.0
        while self._running:
            try:
                sock, peer = listener.accept()
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    continue
                spare, answered = self._turn_away_without_descriptors(listener, spare)
                if not answered:  # never a spin: back off, as Go does
                    pause = min(max(pause * 2, 0.005), 1.0)
                    time.sleep(pause)
                continue
            pause = 0.0
            if not self.is_running():
                sock.close()
                break
            self._serve(sock, peer)
        if spare is not None:
            os.close(spare)

    def _turn_away_without_descriptors(
        self, listener: _Socket, spare: int | None
    ) -> tuple[int | None, bool]:
        """Out of file descriptors: give back the spare one, take the waiting client on it to
        answer ``503`` (instead of leaving it in the backlog unanswered), then keep a spare
        again. Whether a client was answered (then the next one may be at once)."""
        if spare is None:
            return _spare_descriptor(), False
        os.close(spare)
        listener.setblocking(False)  # only a client already waiting: the next one may be served
        try:
            sock, _ = listener.accept()
        except OSError:
            return _spare_descriptor(), False
        finally:
            with contextlib.suppress(OSError):  # closed meanwhile by stop()
                listener.setblocking(True)
        sock.setblocking(True)
        self._turn_away(sock)
        return _spare_descriptor(), True

    def _serve(self, sock: _Socket, peer: Any) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(self.open_connections) >= self.limits.max_connections:
            self._turn_away(sock)
            return
        self.open_connections.add(sock)
        thread = threading.Thread(
            target=serve_connection, args=(self, sock, peer), name="pytest-idempotency-conn"
        )
        thread.daemon = True
        try:
            thread.start()
        except RuntimeError:  # no thread to spare (the system's limit): 503, as past the cap
            self.forget(sock)
            self._turn_away(sock)

    @staticmethod
    def _turn_away(sock: _Socket) -> None:
        """``503`` and close, from the accepting thread (it never blocks on this client)."""
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(_BUSY_BODY))),
            ("Retry-After", "1"),
        ]
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            sock.send(encode_head("503 Service Unavailable", headers, True) + _BUSY_BODY)
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                sock.recv(65536)
        sock.close()

    def forget(self, sock: _Socket) -> None:
        self.open_connections.discard(sock)

    @contextlib.contextmanager
    def busy(self, sock: _Socket) -> Iterator[None]:
        """Mark ``sock`` as carrying a request being answered (restarts wait for these)."""
        self.mark_busy(sock)
        try:
            yield
        finally:
            self.mark_idle(sock)

    def mark_busy(self, sock: _Socket) -> None:
        """``sock`` carries a request being answered (what :meth:`busy` does on entry)."""
        with self._busy_lock:
            self.busy_connections[sock] = threading.get_ident()

    def mark_idle(self, sock: _Socket) -> None:
        """The request on ``sock`` is answered (what :meth:`busy` does on exit)."""
        with self._busy_lock:
            self.busy_connections.pop(sock, None)
            if self._draining:
                self.busy_changed.notify_all()

    def close_connections(self, wait: float = 5.0) -> None:
        """Close every open client connection (idle keep-alive ones included).

        Requests still being answered finish first, for at most ``wait`` seconds (a restart
        has released them: a lost one ends with its RST, not a FIN); then every connection is
        shut, so a client sees its pooled connection closed before it sends on it again."""
        me = threading.get_ident()
        with self.busy_changed:
            self._draining += 1
            try:
                self.busy_changed.wait_for(
                    lambda: all(t == me for t in self.busy_connections.values()), timeout=wait
                )
            finally:
                self._draining -= 1
            mine = {conn for conn, t in self.busy_connections.items() if t == me}
        for conn in list(self.open_connections):
            if conn in mine:
                continue
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
