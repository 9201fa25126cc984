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


#: What a connection that is not idle is doing (:attr:`IdempotencyServer._phase`).
_READING, _ANSWERING, _ADMIN = 1, 2, 3

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
        #: What each connection that is not idle is doing: reading a request, answering one,
        #: answering an admin call (the connections a restart must not shut at once).
        self._phase: dict[_Socket, int] = {}
        #: Connections that have not carried a request yet (a client is about to send one).
        self._fresh: set[_Socket] = set()
        #: Connections a restart asked to close once their request is answered.
        self.condemned: set[_Socket] = set()
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
        self._close_connections(5.0, stopping=True)
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
        if self.app.serves_admin(path):
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
        with self._busy_lock:
            self._fresh.add(sock)
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
        with self._busy_lock:
            self._fresh.discard(sock)
            self._phase.pop(sock, None)
            self.busy_connections.pop(sock, None)
            self.condemned.discard(sock)
            if self._draining:
                self.busy_changed.notify_all()

    @contextlib.contextmanager
    def busy(self, sock: _Socket) -> Iterator[None]:
        """Mark ``sock`` as carrying a request being answered (restarts wait for these)."""
        self.mark_busy(sock)
        try:
            yield
        finally:
            self.mark_idle(sock)

    def mark_reading(self, sock: _Socket) -> None:
        """A request has begun on ``sock`` (its bytes are being read): a restart spares it and
        closes the connection once it is answered."""
        with self._busy_lock:
            self._phase[sock] = _READING
            if self._fresh:
                self._fresh.discard(sock)

    def mark_busy(self, sock: _Socket, admin: bool = False) -> None:
        """``sock`` carries a request being answered (what :meth:`busy` does on entry); an
        ``admin`` call is never waited for by a restart (it may be one, or wait on one) but is
        always answered before its connection closes."""
        with self._busy_lock:
            self.busy_connections[sock] = threading.get_ident()
            self._phase[sock] = _ADMIN if admin else _ANSWERING

    def mark_idle(self, sock: _Socket, pending: bool = False) -> bool:
        """The request on ``sock`` is answered (what :meth:`busy` does on exit); ``pending``:
        the next one is already buffered. ``True`` when a restart asked for the connection to
        close once answered."""
        with self._busy_lock:
            self.busy_connections.pop(sock, None)
            if pending:
                self._phase[sock] = _READING
            else:
                self._phase.pop(sock, None)
            if self._draining:
                self.busy_changed.notify_all()
            return sock in self.condemned

    def close_connections(self, wait: float = 5.0) -> None:
        """Close every open client connection (idle keep-alive ones included).

        Requests still being answered finish first, for at most ``wait`` seconds (a restart
        has released them: a lost one ends with its RST, not a FIN); then every idle
        connection is shut, so a client sees its pooled connection closed before it sends on
        it again. The caller's own connection stays. A connection whose request is being read,
        or that carries an admin call, or that has not carried a request yet, is answered
        first and closed after: an admin call that took effect always gets its answer."""
        self._close_connections(wait, stopping=False)

    def _close_connections(self, wait: float, stopping: bool) -> None:
        me = threading.get_ident()
        deadline = time.monotonic() + wait
        with self.busy_changed:
            self._draining += 1
            try:
                self.busy_changed.wait_for(lambda: not self._answering(me), timeout=wait)
                woken: list[_Socket] = []
                for conn in list(self.open_connections):
                    if self.busy_connections.get(conn) == me:
                        continue  # the caller's own connection
                    phase = self._phase.get(conn)
                    if phase == _ANSWERING or (stopping and phase is None):
                        with contextlib.suppress(OSError):  # overdue, or the server stops
                            conn.shutdown(socket.SHUT_RDWR)
                        continue
                    self.condemned.add(conn)
                    if phase is None and conn not in self._fresh:
                        # Idle: wake its thread. A request it already took off the socket
                        # is still read and answered (the write side stays open); else it
                        # sees the end and closes the connection.
                        with contextlib.suppress(OSError):
                            conn.shutdown(socket.SHUT_RD)
                        woken.append(conn)
                # The woken threads close their connections at once (or took a request):
                # wait, so the FIN is out before the caller answers.
                self.busy_changed.wait_for(
                    lambda: all(c not in self.open_connections or c in self._phase for c in woken),
                    timeout=max(0.0, deadline - time.monotonic()),
                )
            finally:
                self._draining -= 1

    def _answering(self, me: int) -> bool:
        """Whether a request other than the caller's own (admin calls aside) is being
        answered (the lock is held)."""
        phase = self._phase
        return any(
            t != me and phase.get(conn) == _ANSWERING for conn, t in self.busy_connections.items()
        )
