"""Where deliveries go: a URL (real HTTP over a socket), a WSGI app, an ASGI app, a callable.

Every destination takes one :class:`WebhookRequest` and returns a :class:`Answer`; none raises
(a refused connection, a timeout or a receiver that raised is an answer too). Each answer says
whether the request reached the receiver (:attr:`Answer.reached`): sent in full, so the
receiver may have acted on it, whatever came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import inspect
import io
import ipaddress
import json
import socket
import ssl
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..wsgi import call_wsgi

__all__ = [
    "Answer",
    "Destination",
    "DestinationError",
    "WebhookRequest",
    "as_destination",
    "is_loopback_url",
    "url_problem",
]

#: How much of a receiver's answer the journal keeps.
MAX_ANSWER_BYTES = 2048
#: Longest receiver URL (chosen: the length browsers and most servers take).
MAX_URL_LENGTH = 2048
#: Real seconds a delivery's worker thread is given to end once its deadline has cut its
#: socket (it wakes at once from any read or write; this is the margin, not a wait).
CUT_GRACE = 1.0

Outcome = Literal["ok", "status", "timeout", "refused", "error"]


class DestinationError(ValueError):
    """A destination the fake cannot deliver to; the message names the fix."""


@dataclass(frozen=True)
class WebhookRequest:
    """One delivery as a receiver gets it: ``POST`` with these headers and body bytes."""

    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    """What the receiver answered: a status, or why there was none.

    ``sent`` says whether the request reached the receiver: it was sent in full (to a URL) or
    handed to the receiver's code (in process), so the receiver may have acted on it, whatever
    came back. ``None`` (a destination of your own that does not say): judged from the
    outcome, see :attr:`reached`."""

    outcome: Outcome
    status: int | None = None
    body: str = ""
    sent: bool | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def reached(self) -> bool:
        """The receiver got the whole request and may have acted on it: an answer with a
        status, or ``sent``; when ``sent`` is ``None``, a timeout too (the receiver may have
        acted), but not a refused connection or an error (nothing says it got there)."""
        if self.status is not None:
            return True
        if self.sent is not None:
            return self.sent
        return self.outcome == "timeout"


def _answer(status: int, body: bytes | str) -> Answer:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    outcome: Outcome = "ok" if 200 <= status < 300 else "status"
    return Answer(outcome, status, text[:MAX_ANSWER_BYTES], sent=True)


class Destination:
    """Base: ``describe()`` for the journal and ``send(request, timeout)``."""

    kind = "destination"

    def describe(self) -> str:
        raise NotImplementedError

    def send(self, request: WebhookRequest, timeout: float) -> Answer:
        raise NotImplementedError


def is_loopback_url(url: str) -> bool:
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:  # e.g. "http://[::1/x"
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_NAMED = {"\r": "a CR", "\n": "an LF", " ": "a space", "\t": "a tab", "\x00": "a NUL"}


def url_problem(url: str) -> str | None:
    """Why no HTTP request could ever carry ``url`` (``None``: one could), naming the fix:
    a control character, a space or a non-ASCII character anywhere, or an IPv6 zone id."""
    for at, char in enumerate(url):
        code = ord(char)
        if code <= 0x20 or code == 0x7F:
            what = _NAMED.get(char, f"the control character {code:#04x}")
            return (
                f"has {what} at position {at}, which no HTTP request line can carry; "
                f"percent-encode it (%{code:02X}) or leave it out"
            )
        if code > 0x7E:
            encoded = urllib.parse.quote(char)
            return (
                f"has the non-ASCII character {char!r} at position {at}, which no HTTP "
                f"request line can carry; percent-encode it ({encoded})"
            )
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        return None  # the caller says why it does not parse
    if "%" in host:
        return (
            f"names an IPv6 zone id ({host[host.index('%') :]!r}), which an HTTP request "
            "cannot carry; loopback needs none: use e.g. 'http://[::1]:8000/webhooks'"
        )
    return None


class UrlDestination(Destination):
    """Real HTTP with :mod:`http.client`; only loopback hosts (the fake never calls out)."""

    kind = "url"

    def __init__(self, url: str) -> None:
        if len(url) > MAX_URL_LENGTH:
            raise DestinationError(
                f"webhook URL {url[:60]!r}... is {len(url)} characters; "
                f"a receiver URL is at most {MAX_URL_LENGTH}"
            )
        problem = url_problem(url)
        if problem is not None:
            raise DestinationError(f"webhook URL {url!r} {problem}")
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError as exc:
            raise DestinationError(f"webhook URL {url!r} does not parse: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationError(
                f"webhook URL {url!r} is not http(s)://host[:port]/path; "
                "pass e.g. 'http://127.0.0.1:8000/webhooks'"
            )
        try:
            port = parts.port  # urlsplit checks the port only when it is read
        except ValueError:
            port = 0
        if port == 0:
            raise DestinationError(
                f"webhook URL {url!r} has no usable port; give a port from 1 to 65535, "
                "e.g. 'http://127.0.0.1:8000/webhooks'"
            )
        if not is_loopback_url(url):
            raise DestinationError(
                f"webhook URL {url!r} is not on loopback and the fake never calls the internet; "
                "serve your receiver on 127.0.0.1, or route the URL to an in-process receiver "
                "with webhooks.route(url, receiver)"
            )
        self.url = url
        self._parts = parts
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def describe(self) -> str:
        return self.url

    def send(self, request: WebhookRequest, timeout: float) -> Answer:
        # On a worker thread, against one deadline for the whole exchange (connect, send, read
        # the answer): at the deadline the socket is shut down, which wakes the worker from
        # whatever read or write it is in, so it ends (a receiver that drips its answer one
        # byte at a time is a timeout, and leaves no thread or socket behind).
        deadline = time.monotonic() + timeout
        wire = _Wire()
        return _within(
            timeout,
            lambda: self._post(request, timeout, deadline, wire),
            cut=wire.cut,
            sent=lambda: wire.sent,
        )

    def _post(
        self, request: WebhookRequest, timeout: float, deadline: float, wire: _Wire
    ) -> Answer:
        parts = self._parts
        host = parts.hostname or "127.0.0.1"
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(host, parts.port, timeout=timeout)
        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            address = (host, parts.port or (443 if parts.scheme == "https" else 80))
            sock: socket.socket = socket.create_connection(address, timeout=left)
            wire.hold(sock)
            if parts.scheme == "https":
                sock = ssl.create_default_context().wrap_socket(
                    sock, server_hostname=host, do_handshake_on_connect=False
                )
                wire.hold(sock)
                sock.do_handshake()
            conn.sock = sock
            conn.request("POST", self._target, body=request.body, headers=dict(request.headers))
            wire.sent = True  # every byte is out: from here on the receiver may act on it
            response = conn.getresponse()
            return _answer(response.status, response.read(MAX_ANSWER_BYTES))
        except TimeoutError:
            return _timeout(timeout, wire.sent)
        except ConnectionRefusedError as exc:
            return Answer("refused", None, f"connection refused: {exc}", sent=False)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # After the whole request went out (the receiver closed without an answer, or
            # reset the connection), the receiver may have acted; before, it cannot have.
            return Answer(
                "error", None, _sent_note(f"{type(exc).__name__}: {exc}", wire.sent), sent=wire.sent
            )
        finally:
            conn.close()
            wire.close()


class _Wire:
    """The socket of one delivery attempt, which its deadline cuts from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._cut = False
        #: The whole request was written: the receiver may act on it whatever happens next.
        self.sent = False

    def hold(self, sock: socket.socket) -> None:
        """The attempt's socket from now on; one made after the cut is cut at once."""
        with self._lock:
            self._sock = sock
            if self._cut:
                _shut(sock)
                raise TimeoutError("the delivery's deadline passed")

    def cut(self) -> None:
        """The deadline passed: shut the socket down (the worker's read or write returns)."""
        with self._lock:
            self._cut = True
            if self._sock is not None:
                _shut(self._sock)

    def close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for a TLS socket: it leaves the TLS object alone
    # for the worker thread that may be inside it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _sent_note(text: str, sent: bool) -> str:
    return text + (
        " (the whole request had reached the receiver)"
        if sent
        else " (before the request was sent)"
    )


def _timeout(timeout: float, sent: bool) -> Answer:
    return Answer("timeout", None, _sent_note(f"no answer within {timeout:g} s", sent), sent=sent)


def _handed_over() -> bool:
    return True


def _within(
    timeout: float,
    call: Callable[[], Answer],
    cut: Callable[[], None] | None = None,
    sent: Callable[[], bool] = _handed_over,
) -> Answer:
    """``call()`` on a worker thread; a timeout if it has not answered in ``timeout`` s. With
    ``cut`` (a URL's socket), the deadline ends the worker too, within :data:`CUT_GRACE`;
    without it (code in this process, which nothing can stop) the thread is left to finish
    on its own, as a real provider leaves a slow receiver.

    ``sent()`` says, for a timeout or an error, whether the request had reached the receiver
    (a URL: every byte written). By default it had once the worker started: code in this
    process is called by it and cannot be stopped, so it gets the request, late or not."""
    result: list[Answer] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:  # never a traceback on stderr from a delivery thread
            text = f"delivery failed: {type(exc).__name__}: {exc}"
            result.append(Answer("error", None, text, sent=sent()))

    worker = threading.Thread(target=run, name="webhook-delivery", daemon=True)
    try:
        worker.start()
    except RuntimeError as exc:  # no thread left: a failed attempt, retried on the schedule
        text = f"not sent: the delivery thread could not start ({exc})"
        return Answer("error", None, text, sent=False)
    worker.join(timeout)
    if result:
        return result[0]
    if cut is not None:
        cut()
        worker.join(CUT_GRACE)
    return _timeout(timeout, sent())


def _raised(exc: BaseException) -> Answer:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return Answer("status", 500, f"the receiver raised {last}", sent=True)


class CallableDestination(Destination):
    """``receiver(request: WebhookRequest) -> int | None`` (``None`` means 200); raising is a
    500, raising :class:`TimeoutError` is a timeout."""

    kind = "callable"

    def __init__(self, fn: Callable[[WebhookRequest], int | None]) -> None:
        self.fn = fn

    def describe(self) -> str:
        return f"callable {getattr(self.fn, '__qualname__', repr(self.fn))}"

    def send(self, request: WebhookRequest, timeout: float) -> Answer:
        return _within(timeout, lambda: self._call(request))

    def _call(self, request: WebhookRequest) -> Answer:
        try:
            status = self.fn(request)
        except TimeoutError:  # it ran, and may have acted before it raised
            return Answer("timeout", None, "the receiver raised TimeoutError", sent=True)
        except Exception as exc:
            return _raised(exc)
        if status is None:
            return _answer(200, "")
        if isinstance(status, bool) or not isinstance(status, int):
            text = f"the receiver returned {status!r}, not a status code"
            return Answer("error", None, text, sent=True)  # it ran all the same
        return _answer(status, "")


def _environ(request: WebhookRequest) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(request.url)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": parts.path or "/",
        "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname or "receiver.test",
        "SERVER_PORT": str(parts.port or 80),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": parts.scheme or "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        else:
            environ[f"HTTP_{key}"] = value
    return environ


class WsgiDestination(Destination):
    """A WSGI app called in process with a real environ."""

    kind = "wsgi"

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def describe(self) -> str:
        return f"WSGI app {getattr(self.app, '__qualname__', type(self.app).__name__)}"

    def send(self, request: WebhookRequest, timeout: float) -> Answer:
        return _within(timeout, lambda: self._call(request))

    def _call(self, request: WebhookRequest) -> Answer:
        try:
            status, _, body = call_wsgi(self.app, _environ(request))
        except Exception as exc:
            return _raised(exc)
        if status is None:  # the app ran all the same
            return Answer("error", None, "the WSGI app never called start_response", sent=True)
        return _answer(int(status.split()[0]), body)


class AsgiDestination(Destination):
    """An ASGI app, run on its own event loop in a worker thread (so it works from inside an
    async test too); the timeout applies."""

    kind = "asgi"

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def describe(self) -> str:
        return f"ASGI app {getattr(self.app, '__qualname__', type(self.app).__name__)}"

    def send(self, request: WebhookRequest, timeout: float) -> Answer:
        return _within(timeout + 1.0, lambda: asyncio.run(self._call(request, timeout)))

    async def _call(self, request: WebhookRequest, timeout: float) -> Answer:
        parts = urllib.parse.urlsplit(request.url)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": parts.scheme or "http",
            "path": parts.path or "/",
            "raw_path": (parts.path or "/").encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers],
            "client": ("127.0.0.1", 0),
            "server": (parts.hostname or "receiver.test", parts.port or 80),
        }
        sent: dict[str, Any] = {"status": None, "body": b""}
        delivered = False
        finished = asyncio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await finished.wait()  # the client leaves once the whole response is in
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                sent["body"] += message.get("body", b"")
                if not message.get("more_body", False):
                    finished.set()

        try:
            await asyncio.wait_for(self.app(scope, receive, send), timeout)
        except asyncio.TimeoutError:  # the app was running: it may have acted
            return _timeout(timeout, True)
        except Exception as exc:
            return _raised(exc)
        if sent["status"] is None:  # the app ran all the same
            return Answer("error", None, "the ASGI app never sent http.response.start", sent=True)
        return _answer(sent["status"], sent["body"])


def _params(fn: Callable[..., Any]) -> int:
    try:
        return len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return 1


def _is_async(target: Any) -> bool:
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - an ASGI app is often an instance
    )


def as_destination(target: Any, kind: str | None = None) -> Destination:
    """A destination from a URL string, a WSGI/ASGI app or a callable. ``kind`` (``"url"``,
    ``"wsgi"``, ``"asgi"``, ``"callable"``) settles it when guessing by signature would not."""
    if isinstance(target, Destination):
        return target
    if kind is None:
        if isinstance(target, str):
            kind = "url"
        elif not callable(target):
            raise DestinationError(
                f"a webhook receiver is a URL, a WSGI app, an ASGI app or a callable, not "
                f"{type(target).__name__}"
            )
        elif _is_async(target):
            kind = "asgi"
        else:
            kind = "wsgi" if _params(target) == 2 else "callable"
    if kind == "url":
        if not isinstance(target, str):
            raise DestinationError(f"kind='url' needs a URL string, not {type(target).__name__}")
        return UrlDestination(target)
    if kind == "wsgi":
        return WsgiDestination(target)
    if kind == "asgi":
        return AsgiDestination(target)
    if kind == "callable":
        return CallableDestination(target)
    raise DestinationError(f"kind must be 'url', 'wsgi', 'asgi' or 'callable', not {kind!r}")
