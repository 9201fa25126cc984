"""Strict HTTP/1.1 request heads and body framing (RFC 9112), read off a socket.

A request is either framed exactly one way or refused with a :class:`WireError` whose message
names the fix: one ``Content-Length`` of ASCII digits, or ``Transfer-Encoding: chunked`` alone;
no whitespace before a colon, no obs-fold, no bare CR or LF, no control characters; heads and
chunk lines bounded. Bodies are read with the size limit enforced while reading: nothing past
the limit is ever buffered.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .limits import Limits

__all__ = [
    "Body",
    "PeerGone",
    "Reader",
    "RequestHead",
    "WireError",
    "body_framing",
    "parse_head",
    "parse_request_line",
    "read_chunked",
    "split_absolute",
]

_TOKEN_BYTES = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
#: Control characters other than HTAB are never allowed in a field value (nor DEL).
_CONTROL_BYTES = rb"\x00-\x08\x0a-\x1f\x7f"
_TOKEN = re.compile(_TOKEN_BYTES + b"+")
_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
_BAD_VALUE = re.compile(b"[" + _CONTROL_BYTES + b"]")
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")
#: Header lines that need no closer look: ``token:value`` with no control byte but HTAB,
#: separated by CRLF (exactly what _parse_field accepts, line by line).
_FIELD = _TOKEN_BYTES + b"+:[^" + _CONTROL_BYTES + b"]*"
_FIELDS = re.compile(_FIELD + rb"(?:\r\n" + _FIELD + b")*")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
#: Chunk extensions as RFC 9112 (section 7.1.1) has them: ``;name`` or ``;name=value``, the
#: value a token or a quoted string, with optional whitespace around ``;`` and ``=``.
_QUOTED = rb'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*"'
_EXTENSIONS = re.compile(
    rb"(?:[ \t]*;[ \t]*"
    + _TOKEN_BYTES
    + rb"+(?:[ \t]*=[ \t]*(?:"
    + _TOKEN_BYTES
    + rb"+|"
    + _QUOTED
    + rb"))?)*[ \t]*"
)
_RECV = 65536


class WireError(Exception):
    """A request that cannot be served as sent: the status to answer, a stable code and a
    message naming the fix. The connection is closed after the answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        #: The request line, when it was read before the error (the answer can then be in
        #: the variant's words).
        self.line: RequestHead | None = None


class PeerGone(Exception):
    """The client closed its end (or the connection broke) mid-request: nothing to answer."""


@dataclass(slots=True)
class RequestHead:
    method: str
    target: str
    version: str
    #: Every header line in order, name as sent, value stripped of surrounding whitespace.
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: Every value of each header by lower-cased name, in order (derived from ``headers`` when
    #: not given).
    by_name: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.headers and not self.by_name:
            for name, value in self.headers:
                self.by_name.setdefault(name.lower(), []).append(value)

    def values(self, name: str) -> list[str]:
        return list(self.by_name.get(name.lower(), ()))


@dataclass(slots=True)
class Body:
    """How the body of one request is framed."""

    chunked: bool = False
    length: int = 0


class Reader:
    """Buffered reads off one socket, each bounded in bytes and in time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        #: The socket's timeout as last set (``None``: blocking); changed only when it would
        #: wait clearly past a deadline, so most reads cost no ``settimeout`` call.
        self._timeout: float | None = None
        #: Bytes received on this connection so far, and where the current body began (in
        #: those bytes) and when: a body must keep up a minimum rate, not only break silence.
        self.received = 0
        self._body_base = 0
        self._body_start = 0.0

    def start_body(self) -> None:
        """A body begins: from now on reads are bounded by :meth:`_body_deadline`."""
        self._body_base = self.received - len(self.buf)
        self._body_start = time.monotonic()

    def _body_deadline(self, limits: Limits) -> float:
        """The next body read's deadline: ``body_timeout`` of silence, and never later than the
        body's own schedule (``body_timeout`` of grace, then ``min_body_rate`` bytes a second
        on average), so a trickle of bytes cannot hold a connection forever."""
        silence = time.monotonic() + limits.body_timeout
        arrived = self.received - self._body_base
        schedule = self._body_start + limits.body_timeout + arrived / limits.min_body_rate
        return silence if silence < schedule else schedule

    def _fill(self, deadline: float, late: _Late | None, limits: Limits | None = None) -> None:
        """Read what has arrived (at least a byte) before ``deadline``; past it, raise the
        error ``late(limits)`` names (built only then), or :class:`PeerGone` without one."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timed_out(late, limits)
            if self._timeout is None or self._timeout > remaining * 1.05 + 0.005:
                self.sock.settimeout(remaining)
                self._timeout = remaining
            try:
                data = self.sock.recv(_RECV)
            except TimeoutError:
                if deadline - time.monotonic() > 0:
                    continue  # an earlier, shorter timeout ran out: wait for the rest
                raise _timed_out(late, limits) from None
            except OSError:
                raise PeerGone() from None
            if not data:
                raise PeerGone()
            self.buf += data
            self.received += len(data)
            return

    def wait_for_request(self, idle_timeout: float) -> bool:
        """Wait for the first byte of a next request; ``False`` on a clean close or idle timeout.

        Empty lines before a request line are ignored (RFC 9112, section 2.2), whether they
        arrive alone or after the previous request, and they do not restart the idle timeout."""
        deadline = 0.0
        while True:
            buf = self.buf
            if buf and buf[0] != 13:  # a request line begins (13 is CR)
                return True
            while buf[:2] == b"\r\n":
                del buf[:2]
            if buf and buf != b"\r":
                return True
            if not deadline:
                deadline = time.monotonic() + idle_timeout
            try:
                self._fill(deadline, None)
            except PeerGone:
                return False

    def read_head(self, limits: Limits) -> bytes:
        """The request head up to (not including) its blank line; the request line is checked
        as soon as it is complete, so HTTP/0.9 or an overlong target is answered at once (a
        head that arrived whole is checked by :func:`parse_head`, request line first)."""
        deadline = 0.0
        checked = False
        while True:
            buf = self.buf
            if buf[:2] == b"\x16\x03":  # a TLS record: a client that thinks this is https
                raise _tls_hello()
            end = buf.find(b"\r\n\r\n")
            _refuse_bare_lf(buf, end)
            if end >= 0 and end + 4 <= limits.max_head_bytes:
                head = bytes(buf[:end])
                del buf[: end + 4]
                return head
            if not checked:
                line_end = buf.find(b"\r\n")
                if line_end >= 0:
                    parse_request_line(bytes(buf[:line_end]), limits)
                    checked = True
                elif len(buf) > limits.max_request_line:
                    raise _too_long_line(limits)
            if end >= 0 or len(buf) > limits.max_head_bytes:
                raise _too_big_head(limits)
            if not deadline:
                deadline = time.monotonic() + limits.header_timeout
            self._fill(deadline, _head_late, limits)

    def read_exact(self, count: int, limits: Limits) -> bytes:
        while len(self.buf) < count:
            self._fill(self._body_deadline(limits), _stalled, limits)
        data = bytes(self.buf[:count])
        del self.buf[:count]
        return data

    def read_into(self, out: bytearray, count: int, limits: Limits) -> None:
        """Append the next ``count`` bytes to ``out`` (no object per read, whatever its size)."""
        while count:
            if not self.buf:
                self._fill(self._body_deadline(limits), _stalled, limits)
            taken = min(count, len(self.buf))
            out += memoryview(self.buf)[:taken]
            del self.buf[:taken]
            count -= taken

    def read_line(self, limit: int, what: str, limits: Limits) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                if end > limit:
                    break
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > limit:
                break
            self._fill(self._body_deadline(limits), _stalled, limits)
        raise WireError(400, "bad_chunking", f"a {what} is longer than {limit} bytes")

    def drain(self, limits: Limits) -> None:
        """Read and throw away what the client still sends (bounded), so it reads our answer."""
        self.buf.clear()
        budget = limits.drain_bytes
        deadline = time.monotonic() + limits.drain_timeout
        while budget > 0:
            try:
                self._fill(deadline, None)
            except PeerGone:
                return
            budget -= len(self.buf)
            self.buf.clear()


def _refuse_bare_lf(buf: bytearray, end: int) -> None:
    """A LF not preceded by CR in the head (the body, after the blank line at ``end``, may hold
    any)."""
    stop = len(buf) if end < 0 else end
    if buf.count(b"\n", 0, stop) != buf.count(b"\r\n", 0, stop):
        raise WireError(
            400, "bad_header", "a line of the head ends in a bare LF (or holds one); use CRLF"
        )


#: Builds the error for a read that ran out of time (only when it did).
_Late = Callable[[Limits], WireError]


def _timed_out(late: _Late | None, limits: Limits | None) -> Exception:
    if late is None or limits is None:
        return PeerGone()
    return late(limits)


def _head_late(limits: Limits) -> WireError:
    return WireError(
        408,
        "head_timeout",
        f"the request head did not arrive within {limits.header_timeout:g} s; "
        "send the whole head at once",
    )


def _stalled(limits: Limits) -> WireError:
    return WireError(
        408,
        "body_timeout",
        f"the body stalled for {limits.body_timeout:g} s or arrived slower than "
        f"{limits.min_body_rate:g} bytes/s; send it at once, as Content-Length says",
    )


def _tls_hello() -> WireError:
    return WireError(
        400,
        "tls_not_served",
        "this is a TLS handshake, and the server speaks plain HTTP; use an http:// URL",
    )


def _too_long_line(limits: Limits) -> WireError:
    return WireError(
        414, "uri_too_long", f"the request line is longer than {limits.max_request_line} bytes"
    )


def _too_big_head(limits: Limits) -> WireError:
    return WireError(
        431,
        "headers_too_large",
        f"the request head is larger than {limits.max_head_bytes} bytes; send fewer or "
        "shorter headers",
    )


#: The methods nearly every request has, as bytes and as text (their line is read at once).
_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}
_VERSIONS = {b"HTTP/1.1": "HTTP/1.1", b"HTTP/1.0": "HTTP/1.0"}


def parse_request_line(line: bytes, limits: Limits) -> tuple[str, str, str]:
    parts = line.split(b" ")
    if len(parts) == 3 and len(line) <= limits.max_request_line:
        method, version = _METHODS.get(parts[0]), _VERSIONS.get(parts[2])
        target = parts[1]
        if method and version and target and not _BAD_TARGET.search(target):
            return method, target.decode("latin-1"), version
    return _parse_request_line(line, limits)


def _parse_request_line(line: bytes, limits: Limits) -> tuple[str, str, str]:
    """The request line, checked part by part (naming what is wrong)."""
    if len(line) > limits.max_request_line:
        raise _too_long_line(limits)
    parts = line.split(b" ")
    if len(parts) == 2 and _TOKEN.fullmatch(parts[0]):
        raise WireError(
            505, "version_not_supported", "HTTP/0.9 is not served; send an HTTP/1.1 request"
        )
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise WireError(
            400,
            "bad_request_line",
            f"the request line {line[:60]!r} is not 'METHOD TARGET HTTP/1.1' "
            "(one space between parts, no bare CR)",
        )
    method, target, version = parts
    upper = method.upper()
    if upper != method and upper in _METHODS:
        raise WireError(
            501,
            "method_not_implemented",
            f"the method {method.decode()!r} is not served: methods are case-sensitive "
            f"(RFC 9110); send {upper.decode()!r}",
        )
    if _BAD_TARGET.search(target):
        raise WireError(400, "bad_request_line", "the request target has spaces or control bytes")
    found = _VERSION.fullmatch(version)
    if found is None:
        raise WireError(400, "bad_request_line", f"{version[:20]!r} is not an HTTP version")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise WireError(
            505, "version_not_supported", f"{version.decode()} is not served; use HTTP/1.1"
        )
    return method.decode("ascii"), target.decode("latin-1"), version.decode("ascii")


def parse_head(head: bytes, limits: Limits) -> RequestHead:
    """A whole head (no final blank line) as a :class:`RequestHead`, or a :class:`WireError`
    (for a bad header, carrying the request line read: :attr:`WireError.line`)."""
    lines = head.split(b"\r\n")
    method, target, version = parse_request_line(lines[0], limits)
    try:
        return _parse_fields(head, lines, method, target, version, limits)
    except WireError as error:
        error.line = RequestHead(method, target, version)
        raise


def _parse_fields(
    head: bytes, lines: list[bytes], method: str, target: str, version: str, limits: Limits
) -> RequestHead:
    if len(lines) - 1 > limits.max_header_count:
        raise WireError(
            431,
            "headers_too_large",
            f"more than {limits.max_header_count} header lines; send fewer headers",
        )
    headers: list[tuple[str, str]] = []
    by_name: dict[str, list[str]] = {}
    fields = head[len(lines[0]) + 2 :]
    if len(head) <= limits.max_header_line and _FIELDS.fullmatch(fields):
        # Every line is 'token:value' with no control character: the common case, read in
        # one pass (the same rules as _parse_field, which names what is wrong otherwise).
        for line in fields.decode("latin-1").split("\r\n") if fields else ():
            name, _, value = line.partition(":")
            value = value.strip(" \t")
            headers.append((name, value))
            by_name.setdefault(name.lower(), []).append(value)
        return RequestHead(method, target, version, headers, by_name)
    for raw in lines[1:]:
        pair = _parse_field(raw, limits)
        headers.append(pair)
        by_name.setdefault(pair[0].lower(), []).append(pair[1])
    return RequestHead(method, target, version, headers, by_name)


def _parse_field(raw: bytes, limits: Limits) -> tuple[str, str]:
    if len(raw) > limits.max_header_line:
        raise WireError(
            431,
            "headers_too_large",
            f"a header line is longer than {limits.max_header_line} bytes",
        )
    if raw[:1] in (b" ", b"\t"):
        raise WireError(
            400, "bad_header", "a header line starts with whitespace (obs-fold is not accepted)"
        )
    name, colon, value = raw.partition(b":")
    if not colon or not _TOKEN.fullmatch(name):
        raise WireError(
            400,
            "bad_header",
            f"the header line {raw[:60]!r} is not 'Name: value' (a token, then a colon with "
            "no whitespace before it)",
        )
    value = value.strip(b" \t")
    if _BAD_VALUE.search(value):
        raise WireError(
            400,
            "bad_header",
            f"the value of {name.decode()} holds a control character (CR, LF, NUL, DEL or "
            "another below 0x20 but tab)",
        )
    return name.decode("ascii"), value.decode("latin-1")


def split_absolute(target: str) -> tuple[str, str] | None:
    """An absolute-form target (RFC 9112, section 3.2.2; the scheme in any case) as its
    authority and its origin form (``/path?query``, ``/`` when it has no path); ``None`` for
    any other form."""
    if not target[:8].lower().startswith(("http://", "https://")):
        return None
    rest = target.split("://", 1)[1]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    tail = rest[cut:]
    return rest[:cut], tail if tail.startswith("/") else "/" + tail


def body_framing(request: RequestHead) -> Body:
    """How the body is framed: one Content-Length, or chunked as the only coding."""
    by_name = request.by_name
    lengths = by_name.get("content-length") or ()
    codings = by_name.get("transfer-encoding") or ()
    if codings:
        if lengths:
            raise WireError(
                400,
                "bad_framing",
                "Content-Length and Transfer-Encoding together; send one of them",
            )
        if request.version == "HTTP/1.0":
            raise WireError(400, "bad_framing", "Transfer-Encoding is not allowed in HTTP/1.0")
        names = [c.strip().lower() for v in codings for c in v.split(",")]
        if names != ["chunked"]:
            raise WireError(
                501 if names and names[-1] == "chunked" else 400,
                "bad_framing",
                f"Transfer-Encoding {', '.join(codings)!r} is not served; send "
                "'Transfer-Encoding: chunked' alone or a Content-Length",
            )
        return Body(chunked=True)
    if not lengths:
        return Body()
    if len(lengths) > 1:
        raise WireError(400, "bad_framing", "more than one Content-Length; send exactly one")
    text = lengths[0]
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise WireError(
            400,
            "invalid_content_length",
            f"Content-Length must be a whole number of bytes (got {text[:40]!r}); "
            "let the HTTP client set it",
        )
    return Body(length=int(text))


def read_chunked(reader: Reader, limit: int, limits: Limits) -> bytes | None:
    """The de-chunked body, or ``None`` as soon as it passes ``limit`` bytes."""
    body = bytearray()
    while True:
        line = reader.read_line(limits.max_chunk_line, "chunk-size line", limits)
        size_text, semicolon, extensions = line.partition(b";")
        size_text = size_text.rstrip(b" \t")
        if not _HEX.fullmatch(size_text):
            raise WireError(
                400, "bad_chunking", f"the chunk size {size_text[:20]!r} is not a hex number"
            )
        if semicolon and not _EXTENSIONS.fullmatch(semicolon + extensions):
            raise WireError(
                400,
                "bad_chunking",
                f"the chunk extensions {extensions[:40]!r} are not ';name' or ';name=value' "
                "(no control characters, no bare CR or LF); send chunks without extensions",
            )
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            return None
        reader.read_into(body, size, limits)
        if reader.read_exact(2, limits) != b"\r\n":
            raise WireError(400, "bad_chunking", "a chunk is not followed by CRLF")
    _read_trailers(reader, limits)
    return bytes(body)


def _read_trailers(reader: Reader, limits: Limits) -> None:
    used = 0
    while True:
        line = reader.read_line(limits.max_header_line, "trailer line", limits)
        if not line:
            return
        used += len(line) + 2
        if used > limits.max_trailer_bytes:
            raise WireError(
                431, "headers_too_large", f"trailers are larger than {limits.max_trailer_bytes}"
            )
        _parse_field(line, limits)
