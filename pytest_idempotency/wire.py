"""Writing one response on a socket, and the socket-level faults: a lost response, an RST, a late
reply (optionally held until the client gives up), garbage."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import time
from email.utils import formatdate

from .faults import WireAction
from .peer import hold_late

__all__ = ["encode_head", "reset", "send_response"]

_date_cache: list[tuple[int, str]] = [(0, "")]


def _date() -> str:
    now = int(time.time())
    stamp, text = _date_cache[0]
    if stamp != now:
        text = formatdate(now, usegmt=True)
        _date_cache[0] = (now, text)
    return text


def _safe(name: str, value: str) -> bool:
    """Whether a header can go out as one line of latin-1 (defence in depth: the admin API and
    the policy refuse such values before they get here)."""
    text = name + value
    if "\r" in text or "\n" in text or "\x00" in text:
        return False
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def encode_head(status: str, headers: list[tuple[str, str]], close: bool) -> bytes:
    """The status line and headers, ``Server``, ``Date`` (and ``Connection: close``) as bytes.

    A header that cannot go out as one latin-1 line (CR, LF or NUL inside, or a character past
    latin-1) is left out; the check runs once over the whole head, header by header only when
    it fails."""
    lines = [f"HTTP/1.1 {status}"]
    for name, value in headers:  # a loop, not a generator: every response runs it
        lines.append(f"{name}: {value}")
    lines.append("Server: pytest-idempotency")
    lines.append(f"Date: {_date()}")
    if close:
        lines.append("Connection: close")
    text = "\r\n".join(lines)
    breaks = len(lines) - 1
    if text.count("\r") == breaks and text.count("\n") == breaks and "\x00" not in text:
        try:
            return (text + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            pass
    safe = [(name, value) for name, value in headers if _safe(name, value)]
    if len(safe) < len(headers):
        return encode_head(status, safe, close)
    return (text + "\r\n\r\n").encode("latin-1", "replace")  # pragma: no cover (our status)


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a TCP RST (``ConnectionResetError``)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        os.close(sock.detach())


def _wait_late(sock: socket.socket, action: WireAction) -> bool:
    """Hold a late response; ``True`` when it must not be sent (the client left)."""
    if action.until_peer_closes:
        return hold_late(action, sock)
    if action.release is not None:
        action.release.wait(action.delay)
    elif action.delay:
        time.sleep(action.delay)
    return False


def _garbage(payload: bytes, body: bytes, style: str) -> bytes:
    if style == "status_line":
        return b"HTTP/1.1 2O1 GARBLED\r\n\x00\xff\xfe not http\r\n\r\n"
    if body:
        return payload[: len(payload) - max(1, len(body) // 2)]
    return payload + b"\x00\xff\xfe"


def send_response(
    sock: socket.socket,
    action: WireAction,
    head: bytes,
    body: bytes,
) -> bool:
    """Carry out ``action`` for one response; ``False`` when the connection is finished (it
    was dropped, reset or garbled, or the client left)."""
    if action.kind == "response":  # the common case first
        return _send(sock, head, body)
    if action.kind == "late":
        if _wait_late(sock, action):
            action.settle()
            return False
        if action.settle():
            action = WireAction(kind="reset")
    if action.kind == "reset":
        reset(sock)
        return False
    if action.kind == "drop":
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return False
    if action.kind == "garbage":
        sock.sendall(_garbage(head + body, body, action.style))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return False
    return _send(sock, head, body)


def _send(sock: socket.socket, head: bytes, body: bytes) -> bool:
    """The response as it is: one send, or the head then a large body (no copy of it)."""
    if len(body) < 65536:
        sock.sendall(head + body)
    else:
        sock.sendall(head)
        sock.sendall(body)
    return True
