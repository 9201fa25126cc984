"""A body that names its idempotency key field twice is ambiguous (a proxy or logger reading
the first member sees another key than a parser keeping the last): the variants whose key
travels in the body refuse it in their own envelope, naming the field. Other repeated members
are accepted, as real servers accept them. The standalone server as a process, raw bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hardening_support import Standalone, serving, split

from pytest_idempotency import get_variant

BODY_KEYED = ("moda", "whet")


@pytest.fixture(scope="module", params=BODY_KEYED)
def server(request: pytest.FixtureRequest) -> Iterator[Standalone]:
    """A standalone server of a variant whose key travels in the body."""
    yield from serving("--variant", request.param)


@pytest.fixture
def target(server: Standalone) -> Standalone:
    server.reset()
    return server


def _send(target: Standalone, tail: str) -> tuple[int, bytes]:
    """The variant's example create with ``tail`` (raw JSON members) after its parameters."""
    variant = get_variant(target.variant)
    method, path, params = variant.example
    body = (json.dumps(params)[:-1] + ", " + tail + "}").encode()
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{target.port}",
        f"Authorization: Bearer {variant.example_credential}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "",
        "",
    ]
    status, _, payload = split(target.raw("\r\n".join(head).encode() + body, half_close=False))
    return status, payload


def test_a_body_naming_the_key_field_twice_is_refused_naming_the_field(
    target: Standalone,
) -> None:
    field = get_variant(target.variant).policy.key_field
    status, payload = _send(
        target, f'"{field}": "dup-key-a-0123456789abcdef", "{field}": "dup-key-b-0123456789abcdef"'
    )
    assert status == get_variant(target.variant).validation.status  # the variant's 4xx for a body
    assert 400 <= status < 500
    message = payload.decode()
    assert f"{field} is given 2 times" in message
    assert "send it exactly once" in message
    (exchange,) = target.exchanges()
    assert exchange["decision"] == "rejected"
    assert target.effects() == 0
    # Nothing was claimed: either key alone runs once, as new.
    assert _send(target, f'"{field}": "dup-key-b-0123456789abcdef"')[0] in (200, 201)
    assert _send(target, f'"{field}": "dup-key-a-0123456789abcdef"')[0] in (200, 201)
    assert [e["decision"] for e in target.exchanges()[1:]] == ["new", "new"]


def test_the_key_field_spelled_with_an_escape_still_counts_twice(target: Standalone) -> None:
    field = get_variant(target.variant).policy.key_field
    assert field is not None
    assert "_" in field
    escaped = field.replace("_", "\\u005f", 1)
    status, payload = _send(
        target,
        f'"{field}": "esc-key-a-0123456789abcdef", "{escaped}": "esc-key-b-0123456789abcdef"',
    )
    assert 400 <= status < 500
    assert f"{field} is given 2 times" in payload.decode()
    assert target.effects() == 0


def test_the_key_field_once_with_its_name_in_a_value_is_accepted(target: Standalone) -> None:
    field = get_variant(target.variant).policy.key_field
    # The quoted name appears twice in the bytes, but only once as a member: not a repeat.
    status, _ = _send(target, f'"{field}": "\\"{field}\\" once-0123456789abcdef"')
    assert status in (200, 201)
    assert target.exchanges()[0]["decision"] == "new"
