"""Watching the client's end of a connection while the server holds a request or a response."""

from __future__ import annotations

import contextlib
import math
import select
import socket
import time
from typing import Any

from .faults import WireAction

__all__ = ["hold_late", "peer_closed"]

#: How often a held request or response looks again (a close is seen at once by ``select``).
_TICK = 0.05


def peer_closed(sock: Any) -> bool:
    """``True`` when the client has closed (or reset) its end of ``sock``; ``False`` when it is
    still open, when unknown (no socket) or when it sent more bytes (a pipelined request)."""
    if not isinstance(sock, socket.socket):
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (ValueError, BlockingIOError):
        return False
    except OSError:
        return True


def hold_late(action: WireAction, sock: Any) -> bool:
    """Hold a late response until the client closes the connection (``True``: discard it, the
    reply came after the client gave up), ``action.delay`` passes (``None``: no bound) or
    ``action.release`` is set (``False``: send it)."""
    bound = math.inf if action.delay is None else action.delay
    deadline = time.monotonic() + bound
    while True:
        if peer_closed(sock):
            _note_discarded(action)
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (action.release is not None and action.release.is_set()):
            return False
        if not _readable(sock, min(remaining, _TICK)):
            continue  # woken by a close (seen above) or the tick
        if action.release is not None:  # bytes of a next request: no close to wait for
            action.release.wait(min(remaining, _TICK))
        else:
            time.sleep(min(remaining, _TICK))


def _readable(sock: Any, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``sock`` to become readable; ``True`` if it did (or there is
    no socket to wait on, so the caller waits instead)."""
    if not isinstance(sock, socket.socket):
        return True
    with contextlib.suppress(OSError, ValueError):
        readable, _, _ = select.select([sock], [], [], timeout)
        return bool(readable)
    return True


def _note_discarded(action: WireAction) -> None:
    exchange = action.exchange
    if exchange is None:
        return
    note = "the client closed the connection first; the late response was discarded"
    exchange.note = f"{exchange.note}; {note}" if exchange.note else note
