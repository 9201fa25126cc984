"""Defences of the wire past the first attack pass: a body trickled in, a body of one-byte chunks,
a key header spelled with ``_``, methods in the wrong case, an absolute-form target in capitals,
a TLS handshake on the plain port, repeated ``Sec-Fetch-Site`` headers and many full journal
reads at once. Raw bytes to the in-process server and the standalone process; every case checks
the answer, what ran, that the server goes on serving and that stderr stays clean."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hardening_support import (
    TIMEOUT,
    InProcess,
    Standalone,
    Target,
    chunked,
    clean_stderr,
    head_of,
    read_all,
    served_after,
    split,
    statuses,
)

from pytest_idempotency.limits import Limits


@pytest.fixture(scope="module", params=["in-process", "standalone"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "in-process":
        inproc = InProcess(Limits(body_timeout=0.5, header_timeout=5, min_body_rate=2048))
        yield inproc
        inproc.close()
    else:
        proc = Standalone(
            "--body-timeout", "0.5", "--header-timeout", "5", "--min-body-rate", "2048"
        )
        yield proc
        assert clean_stderr(proc.close()) == []


@pytest.fixture(autouse=True)
def fresh(target: Target, capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield from served_after(target, capfd, "served-after-the-attack")


def test_a_trickled_body_is_refused_with_408_though_it_is_never_silent(target: Target) -> None:
    """One byte every 20 ms is never 0.5 s of silence, but it is far below 2,048 bytes/s: the
    server answers 408 once the body's grace (``body_timeout``) has passed, long before the
    10,000 bytes the head announced."""
    head = head_of(
        target,
        "POST /v1/things HTTP/1.1",
        "Content-Type: application/json",
        "Idempotency-Key: trickle",
        "Content-Length: 10000",
    )
    sent = 0
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        sock.settimeout(0.02)
        answer = b""
        while not answer and sent < 10_000:
            try:
                sock.sendall(b" ")
                sent += 1
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
        sock.settimeout(TIMEOUT)
        answer += read_all(sock)
    assert statuses(answer) == [408], answer[:300]
    assert b"slower than 2048 bytes/s" in answer
    assert sent < 2_000  # refused within seconds, not after the whole trickle
    assert target.effects() == 0


def test_a_body_of_one_byte_chunks_is_served_whole(target: Target) -> None:
    name = "n" * 20_000
    body = json.dumps({"name": name}).encode()
    head = head_of(
        target,
        "POST /v1/things HTTP/1.1",
        "Content-Type: application/json",
        "Idempotency-Key: one-byte-chunks",
        "Transfer-Encoding: chunked",
        "Connection: close",
    )
    status, _, answer = split(target.raw(head + chunked(body, 1), half_close=False))
    assert status == 201, answer[:200]
    assert json.loads(answer)["name"] == name
    assert target.exchanges()[-1]["body"] == body.decode()
    assert target.effects() == 1


def test_a_key_header_spelled_with_an_underscore_is_the_key(target: Target) -> None:
    """``Idempotency_Key`` reaches the app as the key header does (the environ maps both to
    ``HTTP_IDEMPOTENCY_KEY``), so a retry with it replays instead of running twice."""
    request = head_of(
        target,
        "POST /v1/things HTTP/1.1",
        "Content-Type: application/json",
        "Idempotency_Key: underscored",
        "Content-Length: 13",
        "Connection: close",
    )
    first, _, first_body = split(target.raw(request + b'{"name": "x"}', half_close=False))
    second, _, second_body = split(target.raw(request + b'{"name": "x"}', half_close=False))
    assert (first, second) == (201, 201)
    assert first_body == second_body
    assert target.effects() == 1
    assert [e["key"] for e in target.exchanges()] == ["underscored", "underscored"]
    assert [e["decision"] for e in target.exchanges()] == ["new", "replayed"]


def test_the_dashed_key_header_wins_over_an_underscored_one(target: Target) -> None:
    request = head_of(
        target,
        "POST /v1/things HTTP/1.1",
        "Content-Type: application/json",
        "Idempotency_Key: posing",
        "Idempotency-Key: dashed",
        "Content-Length: 13",
        "Connection: close",
    )
    status, _, _ = split(target.raw(request + b'{"name": "x"}', half_close=False))
    assert status == 201
    assert target.exchanges()[-1]["key"] == "dashed"


@pytest.mark.parametrize("method", ["head", "post", "Get", "pOST"])
def test_a_standard_method_in_another_case_gets_501_and_a_close(
    target: Target, method: str
) -> None:
    """Methods are case-sensitive (RFC 9110): ``head`` is not HEAD, so it is refused rather
    than answered with a body a HEAD client would read as its next response."""
    request = head_of(target, f"{method} /v1/things HTTP/1.1", "Content-Length: 13")
    answer = target.raw(request + b'{"name": "x"}' + head_of(target, "GET /v1/things HTTP/1.1"))
    assert statuses(answer) == [501], answer[:300]
    assert b"connection: close" in answer.lower()
    assert f"send '{method.upper()}'".encode() in answer
    assert target.effects() == 0


def test_an_absolute_form_target_with_a_capital_scheme_is_routed(target: Target) -> None:
    request = (
        f"POST HTTP://127.0.0.1:{target.port}/v1/things HTTP/1.1\r\n"
        "Content-Type: application/json\r\nIdempotency-Key: caps\r\nContent-Length: 13\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    status, _, _ = split(target.raw(request + b'{"name": "x"}', half_close=False))
    assert status == 201
    assert target.exchanges()[-1]["path"] == "/v1/things"


#: The first bytes of a TLS 1.2 ClientHello record.
CLIENT_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(32) + b"\x00\x00\x04\x00\x2f\x00\xff"


def test_a_tls_handshake_is_answered_at_once_in_plain_text(target: Target) -> None:
    """The head timeout here is 5 s; the answer comes without waiting for it (the socket's
    read timeout is 2 s), naming the fix."""
    with socket.create_connection(("127.0.0.1", target.port), timeout=2) as sock:
        sock.sendall(CLIENT_HELLO)
        answer = read_all(sock)
    assert statuses(answer) == [400], answer[:300]
    assert b"http:// URL" in answer
    assert b"connection: close" in answer.lower()


def test_repeated_sec_fetch_site_headers_cannot_hide_a_cross_site_request(
    target: Target,
) -> None:
    request = head_of(
        target,
        "GET /__admin/health HTTP/1.1",
        "Sec-Fetch-Site: same-origin",
        "Sec-Fetch-Site: cross-site",
    )
    answer = target.raw(request)
    assert statuses(answer) == [403], answer[:300]
    _, _, body = split(answer)
    assert "cross-origin" in json.loads(body)["error"]
    ok = target.raw(head_of(target, "GET /__admin/health HTTP/1.1", "Sec-Fetch-Site: same-origin"))
    assert statuses(ok) == [200]


@pytest.mark.parametrize("rate", ["0", "-5", "inf", "fast"])
def test_a_minimum_body_rate_that_is_not_a_positive_number_exits_2_naming_it(rate: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_idempotency", "serve", "--min-body-rate", rate],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--min-body-rate" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_absolute_form_target_without_a_path_keeps_its_query(target: Target) -> None:
    """``GET http://host?x=1`` is the path ``/`` with the query ``x=1``; the query used to be
    lost, and the admin API read ``host?x=1`` as the Host and refused it."""
    answer = target.raw(
        f"GET http://127.0.0.1:{target.port}?decision=new HTTP/1.1\r\nConnection: close\r\n\r\n".encode()
    )
    assert statuses(answer) == [404], answer[:300]
    assert target.exchanges()[-1]["path"] == "/"
    admin = target.raw(
        f"GET http://127.0.0.1:{target.port}/__admin/journal?decision=new HTTP/1.1\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    assert statuses(admin) == [200], admin[:300]
    assert json.loads(split(admin)[2])["exchanges"] == []  # the filter was read
