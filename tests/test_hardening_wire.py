"""The wire as an attacker uses it: raw bytes to the in-process server and to the standalone
process. Every case checks the answer, that nothing ran, that the server goes on serving, and
that stderr stays clean."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hardening_support import (
    TIMEOUT,
    InProcess,
    Standalone,
    Target,
    clean_stderr,
    read_all,
    served_after,
    split,
    statuses,
)

from pytest_idempotency.limits import Limits

MAX_CONNECTIONS = 6


@pytest.fixture(scope="module", params=["in-process", "standalone"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "in-process":
        limits = Limits(max_connections=MAX_CONNECTIONS, header_timeout=0.5, body_timeout=0.5)
        inproc = InProcess(limits)
        yield inproc
        inproc.close()
    else:
        proc = Standalone(
            *("--max-connections", str(MAX_CONNECTIONS), "--journal-limit", "500"),
            *("--header-timeout", "0.5", "--body-timeout", "0.5"),
        )
        yield proc
        assert clean_stderr(proc.close()) == []


@pytest.fixture(autouse=True)
def fresh(target: Target, capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield from served_after(target, capfd, "served-after-the-attack")


HEAD = b"POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
BODY = b'{"name": "x"}'


def request(*headers: bytes, body: bytes = BODY, length: bool = True) -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    framing = b"Content-Length: %d\r\n" % len(body) if length else b""
    return HEAD + extra + framing + b"\r\n" + body


def assert_refused(target: Target, answer: bytes, status: int = 400) -> None:
    __tracebackhide__ = True
    assert statuses(answer) == [status], answer[:300]
    assert b"connection: close" in answer.lower()
    assert target.effects() == 0


# -- smuggling and framing ------------------------------------------------------------------

SMUGGLED = (
    b"POST /v1/things HTTP/1.1\r\nHost: x\r\nIdempotency-Key: smuggled\r\nContent-Length: 13\r\n\r\n"
    + BODY
)


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: -1",
        "Content-Length: \u00b2".encode(),
        b"Content-Length: 13\r\nContent-Length: 14",
        b"Content-Length: 13, 13",
        b"Content-Length: +13",
        b"Content-Length: 13\r\nTransfer-Encoding: chunked",
        b"Transfer-Encoding: gzip, chunked",
        b"Transfer-Encoding: chunked, identity",
        b"Transfer-Encoding: xchunked",
    ],
    ids=[
        "negative",
        "superscript-two",
        "two-lengths",
        "list",
        "plus",
        "cl-and-te",
        "gzip-chunked",
        "chunked-not-last",
        "unknown-coding",
    ],
)
def test_ambiguous_framing_is_refused_and_the_smuggled_request_never_runs(
    target: Target, framing: bytes
) -> None:
    answer = target.raw(HEAD + framing + b"\r\n\r\n" + b"0\r\n\r\n" + SMUGGLED)
    assert len(statuses(answer)) == 1, answer
    assert statuses(answer)[0] in (400, 501)
    assert target.effects() == 0
    assert all(e["key"] != "smuggled" for e in target.exchanges())


def test_admin_refuses_a_negative_length_and_runs_no_second_call(target: Target) -> None:
    second = b"POST /__admin/restart HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    answer = target.raw(
        b"POST /__admin/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n" + second
    )
    assert statuses(answer) == [400], answer
    assert b"Content-Length" in split(answer)[2]


@pytest.mark.parametrize(
    "line",
    [
        b"Idempotency-Key : k-space",
        b"Idempotency-Key\t: k-tab",
        b"this line has no colon\r\nIdempotency-Key: k-after",
        b"X-Folded: a\r\n  folded",
        b"X-Bare: a\rIdempotency-Key: k-cr",
        b"X-Bare: a\nIdempotency-Key: k-lf",
        b"X-Nul: a\x00b",
        b": no-name",
    ],
    ids=["space", "tab", "colonless", "obs-fold", "bare-cr", "bare-lf", "nul", "empty-name"],
)
def test_a_header_line_that_is_not_name_colon_value_is_a_400(target: Target, line: bytes) -> None:
    for _ in range(2):  # twice: a lost key would run twice
        answer = target.raw(request(line))
        assert_refused(target, answer)
    assert all(e["decision"] in ("rejected", None) for e in target.exchanges())


def test_framing_errors_come_in_the_variants_envelope(target: Target) -> None:
    answer = target.raw(request(b"Content-Length: abc", length=False))
    status, head, body = split(answer)
    assert status == 400
    assert b"application/json" in head.lower()
    assert b"Content-Length" in body
    assert target.exchanges()[-1]["decision"] == "rejected"


# -- chunked bodies ---------------------------------------------------------------------------


def test_a_huge_chunk_size_is_answered_at_once(target: Target) -> None:
    for size in (b"100000000000000000000", b"ffffffffffffffff", b"7fffffff"):
        with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as sock:
            sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n")
            answer = read_all(sock)  # no EOF from us: the server answers and closes by itself
        assert statuses(answer)[0] in (400, 413), answer
    assert target.effects() == 0


def test_a_chunked_body_over_the_limit_gets_413_without_being_kept(target: Target) -> None:
    chunk = b"x" * 65536
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as sock:
        sock.sendall(HEAD + b"Idempotency-Key: big\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(40):  # 2.5 MiB, over the 1 MiB limit
                sock.sendall(b"10000\r\n" + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close once it answered
        answer = read_all(sock)
    assert statuses(answer) == [413], answer[:200]
    assert target.effects() == 0
    assert target.exchanges()[-1]["decision"] == "rejected"


def test_an_admin_chunked_body_over_1_mib_gets_413(target: Target) -> None:
    head = b"POST /__admin/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    body = b"".join(b"10000\r\n" + b" " * 65536 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    answer = target.raw(head + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert statuses(answer) == [413], answer[:200]
    assert b"at most 1048576 bytes" in split(answer)[2]


def test_a_well_formed_chunked_body_is_served(target: Target) -> None:
    body = b"5\r\n" + BODY[:5] + b"\r\n" + b"8;ext=1\r\n" + BODY[5:] + b"\r\n0\r\nX-T: 1\r\n\r\n"
    answer = target.raw(
        request(b"Idempotency-Key: chunky", b"Transfer-Encoding: chunked", body=body, length=False)
    )
    assert statuses(answer)[0] < 300, answer
    assert target.effects() == 1


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nabcdeXY",
        b"zz\r\n",
        b"5\r\nab",
        b"3\r\nabc\r\n0\r\n" + b"X-T: " + b"y" * 20000 + b"\r\n\r\n",
    ],
    ids=["no-crlf-after-data", "not-hex", "cut-short", "huge-trailer"],
)
def test_bad_chunk_framing_is_a_clear_4xx_or_a_clean_close(target: Target, body: bytes) -> None:
    answer = target.raw(request(b"Transfer-Encoding: chunked", body=body, length=False))
    assert statuses(answer) in ([], [400], [431]), answer[:200]
    assert target.effects() == 0


def test_a_body_cut_short_is_a_clean_close(target: Target) -> None:
    answer = target.raw(request(body=BODY)[:-4])
    assert answer == b""
    assert target.effects() == 0


# -- heads ------------------------------------------------------------------------------------


def test_too_many_or_too_large_headers_get_431(target: Target) -> None:
    many = [b"X-H%d: v" % i for i in range(150)]
    assert_refused(target, target.raw(request(*many)), 431)
    assert_refused(target, target.raw(request(b"X-Big: " + b"v" * 10000)), 431)


def test_an_overlong_request_line_gets_414(target: Target) -> None:
    answer = target.raw(b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(answer) == [414], answer[:200]


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"GET /v1/things\r\n", 505),
        (b"GET /v1/things HTTP/2.0\r\n", 505),
        (b"GET /v1/things HTTP/1.x\r\n", 400),
        (b"GET  /v1/things HTTP/1.1\r\n", 400),
    ],
    ids=["http-0.9", "http-2", "bad-version", "double-space"],
)
def test_unknown_versions_are_answered_at_once(target: Target, line: bytes, status: int) -> None:
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as sock:
        sock.sendall(line)  # and nothing more: no wait for headers that will not come
        answer = read_all(sock)
    assert statuses(answer) == [status], answer


def test_expect_100_continue_gets_one_interim_answer(target: Target) -> None:
    head = request(b"Expect: 100-continue", b"Idempotency-Key: cont", body=b"")
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as sock:
        sock.sendall(head.replace(b"Content-Length: 0", b"Content-Length: 13"))
        assert sock.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        sock.shutdown(socket.SHUT_WR)
        answer = read_all(sock)
    [final] = statuses(answer)  # no second 100 Continue before the answer
    assert final < 300, answer


def test_http_1_0_gets_no_100_continue(target: Target) -> None:
    raw = request(b"Expect: 100-continue", b"Idempotency-Key: ten").replace(
        b"HTTP/1.1", b"HTTP/1.0"
    )
    answer = target.raw(raw)
    assert 100 not in statuses(answer)
    assert len(statuses(answer)) == 1


def test_pipelined_requests_on_one_connection_are_each_answered(target: Target) -> None:
    one = request(b"Idempotency-Key: p1")
    two = request(b"Idempotency-Key: p2")
    answer = target.raw(one + two + one)
    assert len(statuses(answer)) == 3, answer
    assert target.effects() == 2


# -- slow clients and connection cap ----------------------------------------------------------


def test_a_stalled_head_gets_408(target: Target) -> None:
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /v1/things HTTP/1.1\r\nHost: x\r\n")
        answer = read_all(sock)
    assert statuses(answer) == [408], answer


def test_a_stalled_body_gets_408_and_nothing_runs(target: Target) -> None:
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as sock:
        sock.sendall(request(b"Idempotency-Key: stall")[:-3])
        answer = read_all(sock)
    assert statuses(answer) == [408], answer
    assert target.effects() == 0


@pytest.mark.parametrize("kind", ["in-process", "standalone"])
def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(kind: str) -> None:
    idle: Target = (
        InProcess(Limits(idle_timeout=0.3))
        if kind == "in-process"
        else Standalone("--idle-timeout", "0.3")
    )
    try:
        with socket.create_connection(("127.0.0.1", idle.port), timeout=TIMEOUT) as sock:
            sock.sendall(request(b"Idempotency-Key: idle-1"))
            first = b""
            while b"\r\n\r\n" not in first:
                first += sock.recv(65536)
            assert statuses(first) == [201]
            assert read_all(sock).count(b"HTTP/1.1") == 0  # then a clean close, no answer
        assert idle.effects() == 1
    finally:
        err = idle.close()
    assert clean_stderr(err or "") == []


def _health_on(sock: socket.socket) -> int:
    sock.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return statuses(data)[0] if statuses(data) else 0


def test_connections_past_the_cap_get_503_and_the_server_recovers(target: Target) -> None:
    opened: list[socket.socket] = []
    turned_away = None
    try:
        for index in range(MAX_CONNECTIONS + 2):
            sock = socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT)
            opened.append(sock)
            try:
                status = _health_on(sock)
            except ConnectionResetError:
                status = 503
            if status == 503:
                turned_away = index
                break
            assert status == 200
        assert turned_away is not None
        assert turned_away <= MAX_CONNECTIONS
    finally:
        for sock in opened:
            sock.close()
    deadline = time.monotonic() + TIMEOUT
    while target.create("after-the-cap") == 503:  # slots free as the server sees the closes
        assert time.monotonic() < deadline


# -- restarts under load ----------------------------------------------------------------------


def _hammer(target: Target, worker: int, outcomes: list[str]) -> None:
    for index in range(25):
        try:
            status = target.create(f"load-{worker}-{index}")
        except OSError:
            outcomes.append("closed")  # a restart closed the connection: clean, no answer
            continue
        outcomes.append(str(status))


def test_restarts_under_load_give_answers_or_clean_closes(target: Target) -> None:
    outcomes: list[str] = []
    workers = [
        threading.Thread(target=_hammer, args=(target, worker, outcomes)) for worker in range(3)
    ]
    for worker in workers:
        worker.start()
    for _ in range(5):
        status, body = target.call("POST", "/__admin/restart", {"keep_records": True})
        assert status == 200, body
    for worker in workers:
        worker.join()
    assert len(outcomes) == 3 * 25
    # 503: past the connection cap while the restarts run; 409: a key still in flight
    assert set(outcomes) <= {"201", "200", "closed", "409", "503"}, set(outcomes)
    news = [e for e in target.exchanges() if e["decision"] == "new" and e["committed"]]
    assert target.effects() == len(news)
    keys = [e["key"] for e in news]
    assert len(keys) == len(set(keys))  # never two executions under one key
