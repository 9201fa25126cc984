"""One client connection: strict requests in, the app's answers out, kept alive while it may.

A request the server cannot frame is never handed on as if it were fine: it is answered (in the
variant's own error envelope when the head could be read) and the connection is closed, so no
byte of it can be read as a next request.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import sys
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from .app import ERROR_HEADER, FRAMING_KEY, RAW_HEADERS_KEY, TOO_LARGE_KEY, WIRE_KEY, App
from .faults import WireAction
from .http1 import (
    Body,
    PeerGone,
    Reader,
    RequestHead,
    WireError,
    body_framing,
    parse_head,
    read_chunked,
    split_absolute,
)
from .incoming import BODY_KEY, HEADER_KEYS_KEY
from .wire import encode_head, send_response
from .wsgi import call_wsgi

if TYPE_CHECKING:
    from .server import IdempotencyServer

__all__ = ["serve_connection"]

_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large"}


class _Request:
    """One request read off the wire, ready for the app."""

    __slots__ = ("body", "close", "head", "too_large")

    def __init__(self, head: RequestHead) -> None:
        self.head = head
        self.body = b""
        self.too_large = False
        connection = head.by_name.get("connection")
        self.close = head.version != "HTTP/1.1" or (
            connection is not None and any("close" in v.lower() for v in connection)
        )


def serve_connection(server: IdempotencyServer, sock: socket.socket, peer: Any) -> None:
    """Serve requests on ``sock`` until either side closes it; never raises."""
    reader = Reader(sock)
    limits = server.limits
    try:
        while server.is_running() and reader.wait_for_request(limits.idle_timeout):
            if not _one(server, reader, peer):
                break
    except Exception:  # a broken socket mid-answer: nothing left to tell this client
        pass
    finally:
        with contextlib.suppress(OSError):
            sock.close()
        server.forget(sock)  # after the close: a restart waiting on it knows the FIN is out


def _one(server: IdempotencyServer, reader: Reader, peer: Any) -> bool:
    """Read, answer and write one request; ``False`` once the connection must close."""
    limits = server.limits
    head: RequestHead | None = None
    server.mark_reading(reader.sock)
    try:
        head = parse_head(reader.read_head(limits), limits)
        request = _Request(head)
        _read_body(server, reader, request, body_framing(head))
    except PeerGone:
        return False
    except WireError as error:
        _refuse(server, reader, head or error.line, peer, error)
        return False
    keep = _answer(server, reader, peer, request)
    if request.too_large and not keep:
        with contextlib.suppress(OSError):
            reader.sock.shutdown(socket.SHUT_WR)
        reader.drain(limits)
    return keep


def _read_body(server: IdempotencyServer, reader: Reader, request: _Request, body: Body) -> None:
    head = request.head
    by_name = head.by_name
    expect = [v.lower() for v in by_name["expect"]] if "expect" in by_name else None
    if expect and expect != ["100-continue"]:
        raise WireError(417, "expectation_failed", "only 'Expect: 100-continue' is served")
    hosts = by_name.get("host") or ()
    if len(hosts) > 1:
        raise WireError(400, "bad_header", "more than one Host header; send exactly one")
    if hosts and not _HOST.fullmatch(hosts[0]):
        raise WireError(
            400, "bad_header", "the Host header is not host[:port] (RFC 9112); send the URL's host"
        )
    if not body.chunked and not body.length:
        return
    limit = server.body_limit(_origin_form(head.target).split("?", 1)[0])
    if not body.chunked and body.length > limit:
        request.too_large = True
        return
    if expect and head.version == "HTTP/1.1":
        reader.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    limits = server.limits
    reader.start_body()
    if body.chunked:
        data = read_chunked(reader, limit, limits)
        request.too_large = data is None
        request.body = data or b""
    else:
        request.body = reader.read_exact(body.length, limits)


#: A Host value: a name, an IPv4 address or a bracketed IPv6 literal, then an optional port
#: (RFC 3986's authority without userinfo; an empty value is allowed, RFC 9112 section 3.2).
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?")


def _origin_form(target: str) -> str:
    """``/path?query`` of a request target (an absolute-form target loses its scheme and host)."""
    absolute = split_absolute(target)
    return target if absolute is None else absolute[1]


#: The WSGI keys a header name maps to (``None``: not passed as a header), remembered.
_HEADER_KEYS: dict[str, str | None] = {}


def _header_key(name: str) -> str | None:
    key = _HEADER_KEYS.get(name)
    if key is None and name not in _HEADER_KEYS:
        if name.lower() in ("content-length", "transfer-encoding"):
            key = None
        else:
            key = name.upper().replace("-", "_")
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
        if len(_HEADER_KEYS) < 4096:
            _HEADER_KEYS[name] = key
    return key


def _environ(
    server: IdempotencyServer, sock: socket.socket, peer: Any, request: _Request
) -> dict[str, Any]:
    head = request.head
    target = head.target
    path, _, query = (target if target[:1] == "/" else _origin_form(target)).partition("?")
    if "%" in path:  # PATH_INFO holds the path's bytes as latin-1 (PEP 3333), unescaped
        path = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    if not query.isascii():  # raw bytes past ASCII: escaped, as a client should have sent them
        query = "".join(c if c < "\x80" else f"%{ord(c):02X}" for c in query)
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "werkzeug.socket": sock,
        "SERVER_SOFTWARE": "pytest-idempotency",
        "REQUEST_METHOD": head.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_URI": target,
        "RAW_URI": target,
        "REMOTE_ADDR": peer[0] if isinstance(peer, tuple) else str(peer),
        "REMOTE_PORT": peer[1] if isinstance(peer, tuple) else 0,
        "SERVER_NAME": server.host,
        "SERVER_PORT": str(server.port),
        "SERVER_PROTOCOL": head.version,
        RAW_HEADERS_KEY: head.by_name,
        BODY_KEY: request.body,
    }
    keys: list[str] = []
    underscored: list[tuple[str, str]] = []
    known = _HEADER_KEYS
    for name, value in head.headers:
        if "_" in name:
            underscored.append((name, value))
            continue
        key = known.get(name) or _header_key(name)
        if key is not None and key not in environ:  # the common case: a header sent once
            keys.append(key)
            environ[key] = value
        else:
            _add_header(environ, keys, key, value)
    if underscored:
        _add_underscored(environ, keys, underscored)
    environ["CONTENT_LENGTH"] = str(len(request.body))
    keys.append("CONTENT_LENGTH")
    environ[HEADER_KEYS_KEY] = keys
    if request.too_large:
        environ[TOO_LARGE_KEY] = True
    return environ


def _add_header(environ: dict[str, Any], keys: list[str], key: str | None, value: str) -> None:
    """One header into the environ (a repeated one joined with commas, as WSGI has it)."""
    if key is None:
        return
    if key not in environ:
        keys.append(key)
    elif key != "CONTENT_TYPE":
        value = f"{environ[key]},{value}"
    environ[key] = value


def _add_underscored(
    environ: dict[str, Any], keys: list[str], headers: list[tuple[str, str]]
) -> None:
    """A name with ``_`` maps to the same environ key as its dashed spelling (``api_key`` and
    ``Api-Key`` are both ``HTTP_API_KEY``). It is passed on only when no dashed header took
    that key, so one header can never pose as another (chosen: some APIs name headers
    ``api_key``)."""
    taken = set(keys)
    for name, value in headers:
        key = _header_key(name)
        if key is not None and key not in taken:
            _add_header(environ, keys, key, value)


def _call_app(server: IdempotencyServer, environ: dict[str, Any]) -> tuple[str, Any, bytes]:
    app = server.app
    if type(app).__call__ is App.__call__:  # the fake's own app: no WSGI round trip
        return app.respond(environ)
    status, headers, body = call_wsgi(app, environ)  # a WSGI app, or one that wraps the call
    assert status is not None  # the app always answers
    return status, headers, body


def _answer(server: IdempotencyServer, reader: Reader, peer: Any, request: _Request) -> bool:
    sock = reader.sock
    environ = _environ(server, sock, peer, request)
    server.mark_busy(sock, server.app.serves_admin(environ["PATH_INFO"]))
    sent = close = False
    try:
        status, headers, body = _call_app(server, environ)
        action: WireAction = environ.get(WIRE_KEY) or WireAction()
        close = (
            request.close
            or action.close
            or request.too_large
            or not server.is_running()
            or sock in server.condemned
        )
        head = encode_head(status, headers, close)
        if request.head.method == "HEAD":
            body = b""
        sent = send_response(sock, action, head, body)
    finally:
        condemned = server.mark_idle(sock, bool(reader.buf))
    return sent and not close and not condemned


def _refuse(
    server: IdempotencyServer,
    reader: Reader,
    head: RequestHead | None,
    peer: Any,
    error: WireError,
) -> None:
    """Answer a request that cannot be served as sent, then close (after reading, bounded, what
    the client still sends, so it sees the answer)."""
    sock = reader.sock
    try:
        if head is None:
            _plain(sock, error)
        else:
            request = _Request(head)
            request.close = True
            environ = _environ(server, sock, peer, request)
            environ[FRAMING_KEY] = (error.status, error.code, error.message)
            with server.busy(sock):
                status, headers, body = _call_app(server, environ)
                sock.sendall(encode_head(status, headers, True) + body)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        reader.drain(server.limits)
    except OSError:
        pass


def _plain(sock: socket.socket, error: WireError) -> None:
    body = f"pytest-idempotency: {error.message}\n".encode()
    reason = _REASONS.get(error.status) or HTTPStatus(error.status).phrase
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        (ERROR_HEADER, error.code),
    ]
    sock.sendall(encode_head(f"{error.status} {reason}", headers, True) + body)
