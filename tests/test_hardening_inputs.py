"""Inputs an attacker (or a careless client) sends that used to be blamed on the fake, reach the
wire unchecked or slip past framing: each is now a clear answer naming the fix, over the real
bytes on a socket, in the in-process server and the standalone process alike."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from hardening_support import (
    TIMEOUT,
    InProcess,
    Standalone,
    Target,
    clean_stderr,
    read_all,
    split,
    statuses,
)

from pytest_idempotency.limits import Limits


@pytest.fixture(params=["in-process", "standalone"])
def target(request: pytest.FixtureRequest) -> Any:
    server: Target = Standalone() if request.param == "standalone" else InProcess()
    yield server
    err = server.close()
    if request.param == "standalone":
        assert clean_stderr(err or "") == []


def _post(target: Target, body: bytes, *, key: str | None = None, media: str = "json") -> bytes:
    content_type = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
    lines = [
        "POST /v1/things HTTP/1.1",
        f"Host: 127.0.0.1:{target.port}",
        f"Content-Type: {content_type[media]}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if key is not None:
        lines.append(f"Idempotency-Key: {key}")
    return target.raw(("\r\n".join(lines) + "\r\n\r\n").encode() + body, half_close=False)


def _verify(target: Target) -> list[Any]:
    status, body = target.call("POST", "/__admin/verify", {})
    return [] if status == 200 else list(body["problems"])


@pytest.mark.parametrize(
    ("body", "media"),
    [(b"[" * 100_000 + b"]" * 100_000, "json"), (b"a" + b"[b]" * 1000 + b"=1", "form")],
    ids=["json", "form"],
)
def test_a_deeply_nested_body_is_the_variants_400_not_a_failure_of_the_fake(
    target: Target, body: bytes, media: str
) -> None:
    status, head, payload = split(_post(target, body, key="deep", media=media))
    assert status == 400
    assert b"X-Pytest-Idempotency-Error: internal-error" not in head
    error = json.loads(payload)["error"]
    assert error["code"] == "validation_failed"
    assert "levels deep" in error["message"]
    assert "flatten it" in error["message"]
    assert target.effects() == 0
    assert [p["check"] for p in _verify(target)] == ["assert_all_bodies_were_valid"]


def test_a_lone_surrogate_in_a_json_string_is_served_and_replayed(target: Target) -> None:
    body = b'{"item": "\\ud800", "quantity": 1}'
    first = split(_post(target, body, key="sur"))
    again = split(_post(target, body, key="sur"))
    assert first[0] == again[0] == 201
    assert first[2] == again[2]  # a replay: the fingerprint of the lone surrogate matched
    assert target.effects() == 1
    assert _verify(target) == []


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"replay_headers": [["Content-Length", "0"]]}, "replay_headers"),
        ({"replay_headers": [["Transfer-Encoding", "chunked"]]}, "replay_headers"),
        ({"key_header": "Content-Length"}, "key_header"),
        ({"mismatch": {"status": 99999, "code": "c", "message": "m"}}, "mismatch.status"),
        ({"in_flight": {"status": 101, "code": "c", "message": "m"}}, "in_flight.status"),
        ({"gone": {"status": 204, "code": "c", "message": "m"}}, "gone.status"),
    ],
)
def test_policy_values_that_would_break_framing_are_refused_naming_the_field(
    target: Target, override: dict[str, Any], field: str
) -> None:
    status, body = target.call("POST", "/__admin/reset", {"policy": override})
    assert status == 400
    assert body["error"].startswith(field)
    assert target.create("still-fine") == 201


@pytest.mark.parametrize(
    ("call", "payload", "words"),
    [
        ("faults", {"kind": "error_before", "status": 100}, "200 to 599"),
        ("faults", {"kind": "error_before", "status": 204}, "not 204"),
        ("stubs", {"route": "POST /v1/things", "status": 204, "json": {"a": 1}}, "has no body"),
        ("stubs", {"route": "POST /v1/things", "headers": {"X A": "v"}}, "token name"),
        ("stubs", {"route": "POST /v1/things", "headers": {"X-A": "a\x01\x7fb"}}, "token name"),
        ("faults", {"kind": "chaos", "rate": 0.5, "kinds": [["drop"]]}, "chaos kinds"),
        ("faults", {"kind": "drop", "path": "/v1/{id}/{id}"}, "appears twice"),
    ],
)
def test_admin_values_no_response_can_carry_are_refused(
    target: Target, call: str, payload: dict[str, Any], words: str
) -> None:
    status, body = target.call("POST", f"/__admin/{call}", payload)
    assert status == 400
    assert words in body["error"]
    assert target.create("after") == 201
    assert target.call("GET", "/__admin/stubs")[1]["stubs"] == []


@pytest.mark.parametrize(
    "query", ["wait_for=%C2%B2", "wait_for=" + "9" * 4301], ids=["superscript", "4301-digits"]
)
def test_a_wait_for_that_is_not_ascii_digits_is_a_400_naming_it(target: Target, query: str) -> None:
    status, body = target.call("GET", f"/__admin/journal?{query}")
    assert status == 400
    assert body["error"].startswith("wait_for must be a whole number")


def test_a_fault_id_of_4301_digits_is_an_unknown_fault(target: Target) -> None:
    status, body = target.call("POST", "/__admin/faults/" + "9" * 4301 + "/release", {})
    assert status == 404
    assert "GET /__admin/faults lists the ids" in body["error"]


def test_a_deeply_nested_admin_body_is_a_400_naming_the_fix(target: Target) -> None:
    raw = b'{"policy": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    request = (
        f"POST /__admin/reset HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + raw
    status, _, payload = split(target.raw(request, half_close=False))
    assert status == 400
    assert json.loads(payload)["error"] == "the body nests too deeply; send a flat JSON object"


@pytest.mark.parametrize("extension", [b";\n0", b";a\rb", b";\x00", b';;;==="', b";\x7f\x01"])
def test_a_chunk_extension_that_is_not_name_or_name_value_is_400(
    target: Target, extension: bytes
) -> None:
    request = (
        (
            f"POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        + b"2"
        + extension
        + b"\r\n{}\r\n0\r\n\r\n"
    )
    status, _, payload = split(target.raw(request))
    assert status == 400
    assert json.loads(payload)["error"]["code"] == "bad_chunking"
    assert target.effects() == 0


def test_a_well_formed_chunk_extension_is_served(target: Target) -> None:
    request = (
        f"POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + b'2 ; name = "a b" ;flag\r\n{}\r\n0\r\n\r\n'
    assert split(target.raw(request))[0] == 201


def test_an_empty_line_between_pipelined_requests_is_ignored(target: Target) -> None:
    host = f"Host: 127.0.0.1:{target.port}"
    first = f"POST /v1/things HTTP/1.1\r\n{host}\r\nContent-Length: 2\r\n\r\n{{}}"
    second = f"GET /__admin/health HTTP/1.1\r\n{host}\r\nConnection: close\r\n\r\n"
    answer = target.raw(f"{first}\r\n{second}".encode())
    assert statuses(answer) == [201, 200]


def test_raw_utf8_in_a_path_is_the_same_path_as_its_percent_escapes(target: Target) -> None:
    host = f"Host: 127.0.0.1:{target.port}"
    for path in (b"/v1/things/caf\xc3\xa9", b"/v1/things/caf%C3%A9"):
        target.raw(b"GET " + path + f" HTTP/1.1\r\n{host}\r\nConnection: close\r\n\r\n".encode())
    assert [e["path"] for e in target.exchanges()] == ["/v1/things/café"] * 2


@pytest.mark.parametrize(
    ("host", "target_form", "status"),
    [("[::1]evil.com", "/", 400), ("[::1", "/", 400), ("127.0.0.1", "http://evil.example/", 403)],
    ids=["after-bracket", "unclosed", "absolute-form"],
)
def test_the_admin_api_refuses_a_host_it_does_not_own(
    target: Target, host: str, target_form: str, status: int
) -> None:
    # a Host that is not host[:port] is refused by the server (400), before the admin API's
    # own check of whose host it is (403)
    request = f"GET {target_form}__admin/health HTTP/1.1\r\nHost: {host}\r\n\r\n"
    assert split(target.raw(request.encode()))[0] == status


def test_empty_lines_do_not_keep_an_idle_connection_open() -> None:
    server = InProcess(Limits(idle_timeout=0.5))
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            started = time.monotonic()
            closed = False
            while time.monotonic() - started < 30:  # sixty times the idle timeout
                try:
                    sock.sendall(b"\r\n")
                except OSError:
                    closed = True
                    break
                sock.settimeout(0.1)
                try:
                    if sock.recv(65536) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
                except OSError:  # reset: the server closed while an empty line was on its way
                    closed = True
                    break
        assert closed, "the connection outlived its idle timeout by sending empty lines"
    finally:
        server.close()


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ('keyed_routes=["POST /v1/{a}/{a}"]', "appears twice"),
        ("key_pattern=a{99999999999}", "not a usable regex"),
    ],
)
def test_an_unusable_route_or_pattern_on_the_command_line_exits_2_naming_it(
    setting: str, words: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_idempotency", "serve", "--port", "0", "--set", setting],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert words in done.stderr


@pytest.mark.parametrize(
    ("sent", "seen"),
    [
        ([b"api_key: k1"], ("Api-Key", "k1")),
        ([b"api_key: k1", b"Api-Key: k2"], ("Api-Key", "k2")),
        ([b"Api-Key: k2", b"api_key: k1"], ("Api-Key", "k2")),
    ],
    ids=["alone", "after-its-twin", "before-its-twin"],
)
def test_a_header_named_with_an_underscore_reaches_the_app_unless_its_dashed_twin_came(
    target: Target, sent: list[bytes], seen: tuple[str, str]
) -> None:
    head = [f"GET /v1/things HTTP/1.1\r\nHost: 127.0.0.1:{target.port}".encode(), *sent]
    target.raw(b"\r\n".join([*head, b"Connection: close", b"", b""]))
    headers = [tuple(pair) for pair in target.exchanges()[-1]["headers"]]
    assert [pair for pair in headers if pair[0] == "Api-Key"] == [seen]


def test_a_handlers_204_goes_out_without_a_body_so_keep_alive_survives() -> None:
    from pytest_idempotency.pipeline import encode_reply
    from pytest_idempotency.variant import Reply

    stored = encode_reply(Reply(204, {"a": 1}, (("Content-Length", "7"), ("X-Ok", "1"))))
    assert (stored.body, stored.headers) == (b"", (("X-Ok", "1"),))
    with pytest.raises(ValueError, match="200 to 599"):
        encode_reply(Reply(99999, {}))


def test_a_204_stub_on_the_wire_has_no_length_and_the_next_request_is_read(
    target: Target,
) -> None:
    status, _ = target.call("POST", "/__admin/stubs", {"route": "POST /v1/things", "status": 204})
    assert status == 201
    host = f"Host: 127.0.0.1:{target.port}"
    first = f"POST /v1/things HTTP/1.1\r\n{host}\r\nContent-Length: 2\r\n\r\n{{}}"
    second = f"GET /__admin/health HTTP/1.1\r\n{host}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as sock:
        sock.sendall((first + second).encode())
        answer = read_all(sock)
    assert statuses(answer) == [204, 200]
    head = answer.split(b"\r\n\r\n", 1)[0]
    assert b"Content-Length" not in head


@pytest.mark.parametrize("wait", [-1, 1e12, "soon", True])
def test_an_in_flight_wait_that_is_not_0_to_3600_seconds_is_refused_naming_it(
    target: Target, wait: Any
) -> None:
    status, body = target.call("POST", "/__admin/reset", {"policy": {"in_flight_wait": wait}})
    assert status == 400
    assert body["error"].startswith("in_flight_wait must be")
    if isinstance(wait, float | int) and not isinstance(wait, bool):
        assert "from 0 to 3600" in body["error"]
    assert target.create("after") == 201


# -- a second attack pass ----------------------------------------------------------------------


@pytest.mark.parametrize("query", [b"?b=\xff", b"?\x80", b"?a=\xc3\xa9"])
def test_raw_bytes_past_ascii_in_the_query_are_served_not_blamed_on_the_fake(
    target: Target, query: bytes
) -> None:
    request = (
        b"POST /v1/things" + query + b" HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        b'Idempotency-Key: q1\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{"name": "x"}'
    )
    assert split(target.raw(request, half_close=False))[0] == 201
    journal = (
        b"GET /__admin/journal?key=\xff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert split(target.raw(journal, half_close=False))[0] == 200
    assert _verify(target) == []


@pytest.mark.parametrize(
    "line", [b"X : 1", b"nocolon", b" folded", b"X: a\rb", b"X: \x7f", b": v", b"Fo(o: v"]
)
def test_a_bad_header_line_is_refused_in_the_variants_envelope(target: Target, line: bytes) -> None:
    request = b"POST /v1/things HTTP/1.1\r\nHost: a\r\nX-Ok: 1\r\n" + line + b"\r\n\r\n"
    status, head, body = split(target.raw(request))
    assert status == 400
    assert b"application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_header"
    admin = b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + line + b"\r\n\r\n"
    status, head, body = split(target.raw(admin))
    assert (status, b"application/json" in head) == (400, True)
    assert json.loads(body)["error"].startswith(("the header line", "a header line", "the value"))
    assert target.create("after-the-bad-header") == 201


def test_a_control_character_in_a_header_is_named_for_what_it_is(target: Target) -> None:
    request = b"POST /v1/things HTTP/1.1\r\nHost: a\r\nX-Tag: a\x1bb\r\n\r\n"
    body = split(target.raw(request))[2].decode()
    assert "control character" in body
    assert "a bare CR, LF or NUL" not in body


def test_a_webhook_endpoint_without_a_usable_port_is_refused_when_registered() -> None:
    target = Standalone("--variant", "moda")
    try:
        for url in ("http://127.0.0.1:99999/hook", "http://127.0.0.1:0/hook"):
            status, body = target.call("POST", "/__admin/webhooks/endpoints", {"url": url})
            assert status == 400
            assert "port from 1 to 65535" in body["error"]
        status, _ = target.call("POST", "/__admin/clock", {"advance": 60})
        assert status == 200
    finally:
        err = target.close()
    assert clean_stderr(err) == []


@pytest.mark.parametrize("name", ["after", "schedule", "timeout", "id_prefix"])
def test_webhook_settings_that_always_have_a_value_refuse_null(name: str) -> None:
    target = Standalone("--variant", "moda")
    try:
        status, body = target.call("POST", "/__admin/webhooks/configure", {name: None})
        assert status == 400
        assert f'"{name}" must be' in body["error"]
        assert "not null" in body["error"]
    finally:
        err = target.close()
    assert clean_stderr(err) == []


def test_the_fake_clock_cannot_be_set_where_it_would_run_out_of_dates(target: Target) -> None:
    status, body = target.call("POST", "/__admin/clock", {"set": "9999-12-31T23:59:59.900Z"})
    assert status == 400
    assert "1970-8999" in body["error"]
    assert target.call("GET", "/__admin/clock")[0] == 200
    assert target.create("clock-still-fine") == 201


@pytest.mark.parametrize("host", [b"a b", b"[::1", b"\xff\xfe", b"a/b", b"h:p0rt"])
def test_a_host_that_is_not_host_and_port_gets_400(target: Target, host: bytes) -> None:
    request = b"GET /v1/things/x HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    status, _, body = split(target.raw(request, half_close=False))
    assert status == 400
    assert b"host[:port]" in body
    assert target.create("after-the-bad-host") == 201


@pytest.mark.parametrize("host", [b"127.0.0.1:8080", b"[::1]:80", b"api.example.com", b""])
def test_a_host_that_is_host_and_port_is_served(target: Target, host: bytes) -> None:
    request = b"GET /v1/things/x HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
    assert split(target.raw(request, half_close=False))[0] == 404  # served: no such thing


def test_an_integer_past_pythons_own_digit_limit_is_named_without_python_advice(
    target: Target,
) -> None:
    status, _, body = split(_post(target, b'{"n": ' + b"7" * 5000 + b"}", key="digits"))
    assert status == 400
    assert "more than 4,300 digits" in body.decode()
    assert "sys.set_int_max_str_digits" not in body.decode()
