"""The request path's shortcuts give exactly what the careful paths give.

The head parser checks all header lines with one pattern and falls back to the line-by-line
check (which names what is wrong) only when that fails; a head that arrived whole is checked by
the parser alone; the server lists an environ's header keys for the journal; the response head is checked once as a
whole and header by header only when that fails; an exchange's ``finished`` flag makes its
event only when a thread waits; a bounded journal forgets the least recently used keys' attempt
counts; JSON is written by an encoder built once and read by calling the decoder's scanner
directly; request headers are looked up without werkzeug's raised ``KeyError``. Each shortcut
is compared here with its careful path, over generated inputs.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable

import pytest
import regex
from hardening_support import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import EnvironHeaders

from pytest_idempotency import fingerprint, http1, jsontext, wire
from pytest_idempotency.app import App
from pytest_idempotency.fingerprint import loads_strict_json
from pytest_idempotency.http1 import RequestHead, WireError, parse_head
from pytest_idempotency.incoming import RequestHeaders
from pytest_idempotency.journal import Flag, Journal
from pytest_idempotency.limits import Limits
from pytest_idempotency.patterns import PRINTABLE_ASCII, bounded_fullmatch
from pytest_idempotency.policy import Policy
from pytest_idempotency.server import IdempotencyServer
from pytest_idempotency.variant import HandlerContext, Reply, Route, Variant

LIMITS = Limits()

#: Bytes that make header lines interesting: token characters, separators, whitespace, CR, LF,
#: NUL, DEL, other controls and obs-text.
_HEADER_BYTES = st.sampled_from(
    [
        *(b"a", b"Z", b"-", b"_", b"0", b"!", b":", b" ", b"\t", b"\r", b"\n", b"\x00"),
        *(b"\x7f", b"\x01", b"\x1f", b"\x80", b"\xe9", b"\xff", b"(", b"@", b",", b";", b"="),
    ]
)
_LINE = st.lists(_HEADER_BYTES, max_size=12).map(b"".join)
_GOOD_LINE = st.tuples(
    st.text("abcXYZ-_!~09", min_size=1, max_size=8).map(str.encode),
    st.text("ab \tc,;=\xe9", max_size=10).map(lambda v: v.encode("latin-1")),
).map(lambda pair: pair[0] + b":" + pair[1])


def _careful(head: bytes) -> RequestHead:
    """``parse_head`` with the one-pattern shortcut switched off."""
    saved = http1._FIELDS
    http1._FIELDS = _NEVER
    try:
        return parse_head(head, LIMITS)
    finally:
        http1._FIELDS = saved


class _Never:
    @staticmethod
    def fullmatch(data: bytes) -> None:
        return None


_NEVER = _Never()


def _outcome(parse: object, head: bytes) -> object:
    try:
        return parse(head)  # type: ignore[operator]
    except WireError as error:
        return ("refused", error.status, error.code)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_LINE, _GOOD_LINE), max_size=6))
def test_header_shortcut_accepts_and_refuses_exactly_what_the_line_check_does(
    lines: list[bytes],
) -> None:
    head = b"\r\n".join([b"POST /v1/things HTTP/1.1", *lines])
    if b"\r\n\r\n" in head or head.endswith(b"\r\n"):
        return  # the reader ends a head at its first blank line: such a head never gets here
    fast = _outcome(lambda h: parse_head(h, LIMITS), head)
    assert fast == _outcome(_careful, head)


def test_header_shortcut_keeps_values_order_and_repeats() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX-A:  b c \t\r\nx-a: d\r\nE:"
    parsed = parse_head(head, LIMITS)
    assert parsed.headers == [("Host", "a"), ("X-A", "b c"), ("x-a", "d"), ("E", "")]
    assert parsed.by_name == {"host": ["a"], "x-a": ["b c", "d"], "e": [""]}
    assert parsed == _careful(head)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"A : b", "no whitespace before it"),
        (b"A: b\rc", "control character"),
        (b" folded", "obs-fold"),
        (b"NoColon", "not 'Name: value'"),
    ],
)
def test_a_bad_header_line_is_still_named_by_the_line_check(line: bytes, message: str) -> None:
    with pytest.raises(WireError) as caught:
        parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n" + line, LIMITS)
    assert caught.value.status == 400
    assert message in caught.value.message


_NAMES = st.text("abXY-\r\n\x00é€", min_size=1, max_size=6)
_VALUES = st.text("ab \t\r\n\x00é€;", max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=5), st.booleans())
def test_response_head_shortcut_leaves_out_exactly_the_unsafe_headers(
    headers: list[tuple[str, str]], close: bool
) -> None:
    safe = [(name, value) for name, value in headers if wire._safe(name, value)]
    got = wire.encode_head("201 Created", headers, close)
    assert got == wire.encode_head("201 Created", safe, close)
    lines = got.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 201 Created"
    assert lines[1 : 1 + len(safe)] == [f"{name}: {value}" for name, value in safe]
    assert got.endswith(b"\r\n\r\n")
    assert got.count(b"\r\n\r\n") == 1
    assert (b"\r\nConnection: close\r\n" in got) is close


def test_an_injected_header_never_reaches_the_wire() -> None:
    got = wire.encode_head(
        "200 OK", [("Retry-After", "1\r\nSet-Cookie: a=b"), ("X-Ok", "yes")], False
    )
    assert b"Set-Cookie" not in got
    assert b"\r\nX-Ok: yes\r\n" in got


def test_flag_set_before_a_wait_answers_at_once() -> None:
    flag = Flag()
    assert not flag.is_set()
    flag.set()
    assert flag.is_set()
    assert flag.wait(0) is True


def test_flag_wakes_a_waiting_thread_and_times_out_when_never_set() -> None:
    flag, woke = Flag(), []
    waiter = threading.Thread(target=lambda: woke.append(flag.wait(10)))
    waiter.start()
    # The waiter makes the flag's event on its way into the wait.
    wait_until(lambda: flag._event is not None, "the waiter to wait on the flag")
    flag.set()
    waiter.join(10)
    assert woke == [True]
    assert Flag().wait(0.01) is False


def test_a_bounded_journal_counts_attempts_of_recent_keys_and_forgets_old_ones() -> None:
    journal = Journal(limit=2)  # remembers the attempts of 4 * 2 keys
    for n in range(20):
        assert journal.next_attempt(("k", n)) == 1
    assert len(journal._attempts) == 8
    assert journal.next_attempt(("k", 19)) == 2  # recent: still counted
    assert journal.next_attempt(("k", 0)) == 1  # long gone: counted afresh
    assert journal.next_attempt(("k", 15)) == 2  # used again: now the most recent
    for n in range(100, 106):
        journal.next_attempt(("k", n))
    assert journal.next_attempt(("k", 15)) == 3  # six newer keys came, five older ones went
    assert len(journal._attempts) == 8


_NAMES = st.sampled_from(
    ["Host", "Content-Type", "content-type", "X-A", "x-a", "Idempotency-Key", "Accept", "X_B"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_NAMES, st.text("ab ,;", max_size=4)), max_size=8), st.binary(max_size=3))
def test_the_servers_header_list_gives_the_pairs_the_whole_environ_gives(
    headers: list[tuple[str, str]], body: bytes
) -> None:
    """The server lists the environ's header keys so the journal's headers need not walk the
    whole environ: the pairs are the same either way (order, repeats joined, titles)."""
    from pytest_idempotency import connection
    from pytest_idempotency.incoming import HEADER_KEYS_KEY, Incoming

    class Server:
        host, port = "127.0.0.1", 1

    request = connection._Request(RequestHead("POST", "/v1/things", "HTTP/1.1", headers))
    request.body = body
    environ = connection._environ(Server(), None, ("127.0.0.1", 2), request)  # type: ignore[arg-type]
    listed = Incoming(environ).header_pairs()
    del environ[HEADER_KEYS_KEY]
    assert listed == Incoming(environ).header_pairs()


class _Chunks:
    """A socket that hands out ``data`` a few bytes per ``recv``."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def settimeout(self, value: float | None) -> None:
        pass

    def recv(self, count: int) -> bytes:
        piece, self.data = self.data[: self.size], self.data[self.size :]
        return piece


def _read(data: bytes, size: int) -> object:
    reader = http1.Reader(_Chunks(data, size))  # type: ignore[arg-type]
    try:
        return parse_head(reader.read_head(LIMITS), LIMITS)
    except (WireError, http1.PeerGone) as error:
        return type(error).__name__, getattr(error, "status", None)


_REQUEST_LINES = st.sampled_from(
    [b"POST /v1/things HTTP/1.1", b"GET /x", b"GET /x HTTP/2.0", b"BAD LINE", b"GET / HTTP/1.0"]
)


@settings(max_examples=300, deadline=None)
@given(_REQUEST_LINES, st.lists(st.one_of(_LINE, _GOOD_LINE), max_size=4), st.integers(1, 7))
def test_a_head_read_whole_or_byte_by_byte_gives_the_same_answer(
    line: bytes, headers: list[bytes], size: int
) -> None:
    """A head that arrives whole is checked by the parser alone (request line first); read a
    few bytes at a time, its request line is checked as soon as it is complete. A good head
    gives the same request either way, a bad one is refused either way (the status may differ:
    bytes read early can only show an earlier fault)."""
    data = b"\r\n".join([line, *headers]) + b"\r\n\r\nrest"
    whole, piecewise = _read(data, len(data)), _read(data, size)
    if isinstance(whole, RequestHead) or isinstance(piecewise, RequestHead):
        assert whole == piecewise
    else:
        assert whole[0] == piecewise[0] == "WireError"  # type: ignore[index]


# -- JSON on the request path ------------------------------------------------------------------

_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON, sort_keys=st.booleans(), ensure_ascii=st.booleans())
def test_the_kept_json_encoder_writes_what_json_dumps_writes(
    value: object, sort_keys: bool, ensure_ascii: bool
) -> None:
    encode = jsontext.encoder(sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=str)
    expected = json.dumps(
        value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=str
    )
    assert encode(value) == expected


def test_a_structure_that_contains_itself_fails_clearly_in_the_kept_encoder() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        jsontext.encoder()(loop)


_BODIES = st.one_of(
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=12),
    st.sampled_from(
        [b"", b"  ", b"[", b'{"a":1} x', b'{"a":NaN}', b"1e999", b'"\\ud800"', b"\xef\xbb\xbf{}"]
    ),
    _JSON.map(lambda v: json.dumps(v).encode("utf-16")),
    _JSON.map(lambda v: json.dumps(v).encode("utf-32-le")),
    st.text(max_size=8).map(lambda t: f'{{"{t}":1}}'.encode("utf-8", "surrogatepass")),
)


def _careful_loads(body: bytes) -> object:
    """What ``loads_strict_json`` did before its shortcut: detect, decode, the decoder's own
    ``decode``."""
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    return fingerprint._STRICT_DECODER.decode(text)


def _answer(load: Callable[[bytes], object], body: bytes) -> tuple[str, object]:
    try:
        return "ok", load(body)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400, deadline=None)
@given(body=_BODIES)
def test_strict_json_reads_and_refuses_exactly_what_the_decoder_does(body: bytes) -> None:
    got, expected = _answer(loads_strict_json, body), _answer(_careful_loads, body)
    if got[0] == "ok" and expected[0] == "ok":
        assert json.dumps(got[1]) == json.dumps(expected[1])  # NaN-free, so comparable
    else:
        assert got == expected


# -- request headers ---------------------------------------------------------------------------

_NAMES = st.sampled_from(
    ["Authorization", "authorization", "Content-Type", "content-length", "X-A", "x_a", "X-Missing"]
)
_ENVIRONS = st.dictionaries(
    st.sampled_from(
        ["HTTP_AUTHORIZATION", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_X_A", "HTTP_CONTENT_TYPE"]
    ),
    st.sampled_from(["", "1", "1,2", "Bearer k", "text/plain"]),
)


@settings(max_examples=300, deadline=None)
@given(environ=_ENVIRONS, name=_NAMES)
def test_request_headers_answer_in_and_get_as_werkzeug_does(
    environ: dict[str, str], name: str
) -> None:
    fast, careful = RequestHeaders(environ), EnvironHeaders(environ)
    assert (name in fast) == (name in careful)
    assert fast.get(name) == careful.get(name)
    assert fast.get(name, "d") == careful.get(name, "d")
    assert fast.get(name, type=int) == careful.get(name, type=int)
    assert list(fast) == list(careful)
    assert (7 in fast) == (7 in careful)  # type: ignore[operator]


def test_a_handler_reads_sent_and_missing_headers_over_the_wire() -> None:
    def echo(ctx: HandlerContext) -> Reply:
        names = ("X-Tag", "x-tag", "X-Missing", "Content-Type", "Content-Length")
        return Reply(200, {n: [n in ctx.headers, ctx.headers.get(n, "-")] for n in names})

    variant = Variant(name="echo", policy=Policy(), routes=(Route("POST /v1/echo", echo),))
    with (
        IdempotencyServer(App(variant)) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(
            b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nX-Tag: a\r\nX-Tag: b\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body == {
        "X-Tag": [True, "a,b"],
        "x-tag": [True, "a,b"],
        "X-Missing": [False, "-"],
        "Content-Type": [True, "application/json"],
        "Content-Length": [True, "2"],
    }


# -- the request line --------------------------------------------------------------------------

_LINE_PARTS = st.lists(
    st.sampled_from(
        [
            b"GET",
            b"POST",
            b"PATCH",
            b"OPTIONS",
            b"get",
            b"BREW",
            b"PO ST",
            b"/v1/x",
            b"/a?b=c",
            b"http://h/p",
            b"/\x00",
            b"/\x7f",
            b"/ x",
            b"",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"HTTP/2.0",
            b"HTTP/1.10",
            b"http/1.1",
            b"\r",
            b"/" + b"a" * 40,
        ]
    ),
    min_size=1,
    max_size=4,
).map(b" ".join)


@settings(max_examples=500, deadline=None)
@given(line=_LINE_PARTS, short=st.booleans())
def test_request_line_shortcut_reads_and_refuses_what_the_careful_check_does(
    line: bytes, short: bool
) -> None:
    limits = Limits(max_request_line=30) if short else LIMITS

    def answer(read: Callable[[bytes, Limits], object]) -> object:
        try:
            return read(line, limits)
        except WireError as error:
            return (error.status, error.code, error.message)

    assert answer(http1.parse_request_line) == answer(http1._parse_request_line)


@settings(max_examples=500, deadline=None)
@given(key=st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=12))
def test_the_default_key_pattern_check_answers_what_the_pattern_does(key: str) -> None:
    matches = regex.fullmatch(PRINTABLE_ASCII, key) is not None  # the regex engine itself
    assert bounded_fullmatch(PRINTABLE_ASCII, key) == matches
    if key:
        problem = Policy().key_problem(key)
        assert problem == (None if matches else f"the key has characters outside {PRINTABLE_ASCII}")
