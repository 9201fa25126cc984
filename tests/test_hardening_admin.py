"""The admin API refuses what a web page or a careless script could send it: foreign Host and
Origin, bodies that are not JSON, header values that would break the wire."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hardening_support import (
    InProcess,
    Standalone,
    Target,
    clean_stderr,
    served_after,
    split,
    statuses,
)


@pytest.fixture(scope="module", params=["in-process", "standalone"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "in-process":
        inproc = InProcess()
        yield inproc
        inproc.close()
    else:
        proc = Standalone()
        yield proc
        assert clean_stderr(proc.close()) == []


@pytest.fixture(autouse=True)
def fresh(target: Target, capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield from served_after(target, capfd, "served-after")


def admin_raw(
    target: Target, *headers: str, body: bytes = b"", path: str = "/__admin/restart"
) -> bytes:
    lines = [f"POST {path} HTTP/1.1", *headers, f"Content-Length: {len(body)}", "", ""]
    return target.raw("\r\n".join(lines).encode() + body)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "localhost.evil.example", ""]
)
def test_a_foreign_host_is_refused(target: Target, host: str) -> None:
    answer = admin_raw(target, f"Host: {host}", "Content-Type: application/json", body=b"{}")
    status, _, body = split(answer)
    assert status == 403
    assert b"Host" in body
    assert all(e["path"] != "/__admin/restart" for e in target.exchanges())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:1234", "[::1]:80", "127.0.0.1:9"])
def test_loopback_hosts_are_served(target: Target, host: str) -> None:
    answer = admin_raw(target, f"Host: {host}", path="/__admin/faults/release")
    assert statuses(answer) == [200], answer


@pytest.mark.parametrize(
    "extra",
    [
        ("Origin: http://evil.example",),
        ("Origin: null",),
        ("Sec-Fetch-Site: cross-site",),
    ],
)
def test_cross_origin_calls_are_refused(target: Target, extra: tuple[str, ...]) -> None:
    answer = admin_raw(target, f"Host: 127.0.0.1:{target.port}", *extra)
    status, _, body = split(answer)
    assert status == 403
    assert b"cross-origin" in body


def test_a_same_origin_call_is_served(target: Target) -> None:
    host = f"127.0.0.1:{target.port}"
    answer = admin_raw(
        target, f"Host: {host}", f"Origin: http://{host}", path="/__admin/faults/release"
    )
    assert statuses(answer) == [200], answer


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_declared_json_gets_415(target: Target, media: str | None) -> None:
    headers = [f"Host: 127.0.0.1:{target.port}"] + ([f"Content-Type: {media}"] if media else [])
    answer = admin_raw(target, *headers, body=b'{"advance": 999999}', path="/__admin/clock")
    status, _, body = split(answer)
    assert status == 415
    assert b"application/json" in body
    assert target.call("GET", "/__admin/clock")[1]["offset"] == 0


@pytest.mark.parametrize(
    ("call", "body", "field"),
    [
        (
            "/__admin/faults",
            {"kind": "error_before", "retry_after": "1\r\nSet-Cookie: a=b"},
            "retry_after",
        ),
        ("/__admin/faults", {"kind": "error_before", "retry_after": "\u0100"}, "retry_after"),
        (
            "/__admin/reset",
            {"policy": {"replay_headers": [["X-R", "a\r\nSet-Cookie: a=b"]]}},
            "replay_headers",
        ),
        ("/__admin/reset", {"policy": {"replay_headers": [["X-R", "\u2603"]]}}, "replay_headers"),
        ("/__admin/reset", {"policy": {"replay_headers": [["X R", "a"]]}}, "replay_headers"),
        ("/__admin/reset", {"policy": {"key_header": "Idempotency Key"}}, "key_header"),
    ],
    ids=[
        "retry-after-crlf",
        "retry-after-non-latin-1",
        "replay-crlf",
        "replay-snowman",
        "replay-bad-name",
        "key-header-space",
    ],
)
def test_header_values_are_checked_at_the_admin_api(
    target: Target, call: str, body: dict[str, object], field: str
) -> None:
    status, answer = target.call("POST", call, body)
    assert status == 400, answer
    assert field in answer["error"]
    assert target.call("GET", "/__admin/faults")[1]["faults"] == []
    # the policy in force still replays cleanly
    assert target.create("replay-me") < 300
    assert target.create("replay-me") < 300
    assert target.exchanges()[-1]["decision"] == "replayed"


def test_a_chunked_admin_call_with_a_length_too_is_refused(target: Target) -> None:
    answer = admin_raw(target, "Host: 127.0.0.1", "Transfer-Encoding: chunked", body=b"0\r\n\r\n")
    assert statuses(answer) == [400], answer
