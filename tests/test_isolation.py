"""Tenant isolation and loopback binding.

A key is scoped to its credential: the same key sent under another credential of the same shape
is a different request, never the first tenant's replay, conflict or in-flight answer. And the
fake only listens on loopback unless told otherwise.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

import pytest
import requests
from werkzeug.datastructures import Headers

from pytest_idempotency import App, IdempotencyServer, IdempotentAPI, get_variant

TIMEOUT = 0.5


def _shift(ch: str) -> str:
    if ch.isdigit():
        return str((int(ch) + 1) % 10)
    if "a" <= ch <= "z":
        return chr((ord(ch) - ord("a") + 1) % 26 + ord("a"))
    if "A" <= ch <= "Z":
        return chr((ord(ch) - ord("A") + 1) % 26 + ord("A"))
    return ch


def same_shape_candidates(credential: str) -> list[str]:
    """Credentials of the same shape: same length, separators and character classes, with the
    last (up to four) letters or digits of one segment moved one step each, trying the last
    segment first (``sk_test_123`` -> ``sk_test_234``, then ``sk_tesu_123``, ...)."""
    out = []
    for found in reversed(list(re.finditer(r"[A-Za-z0-9]+", credential))):
        chars = list(credential)
        for index in range(max(found.start(), found.end() - 4), found.end()):
            chars[index] = _shift(chars[index])
        out.append("".join(chars))
    return out


def tenant_of(api: IdempotentAPI, credential: str) -> str | None:
    headers = api.headers(credential=credential)
    return api.variant.authenticate(Headers(list(headers.items())))


def two_credentials(api: IdempotentAPI) -> tuple[str, str]:
    """The variant's example credential and a second one of the same shape that the variant
    accepts as another tenant (Whet's tenant is the organization named in the token, so there
    the organization part is what changes)."""
    first = api.credential or "tenant_token_a1"
    tenant = tenant_of(api, first)
    assert tenant is not None, f"{api.name} refuses its own example credential {first!r}"
    for other in same_shape_candidates(first):
        found = tenant_of(api, other)
        if found is not None and found != tenant:
            return first, other
    raise AssertionError(f"{api.name}: no credential shaped like {first!r} is another tenant")


def send(api: IdempotentAPI, key: str, credential: str, **overrides: Any) -> requests.Response:
    method, url, params = api.example()
    params.update(overrides)
    return requests.request(
        method, url, timeout=TIMEOUT, **api.request_kwargs(params, key=key, credential=credential)
    )


@pytest.mark.idempotency(variants="all")
def test_second_credential_is_a_different_tenant(idempotent_api: IdempotentAPI) -> None:
    first, second = two_credentials(idempotent_api)
    assert len(second) == len(first)
    assert [c.isalnum() for c in second] == [c.isalnum() for c in first]
    tenant_a, tenant_b = tenant_of(idempotent_api, first), tenant_of(idempotent_api, second)
    assert tenant_a is not None
    assert tenant_b is not None
    assert tenant_a != tenant_b


@pytest.mark.idempotency(variants="all")
def test_key_reused_under_another_credential_never_returns_first_tenants_response(
    idempotent_api: IdempotentAPI,
) -> None:
    first, second = two_credentials(idempotent_api)
    key = "shared-key-0000000000000000000001"

    a = send(idempotent_api, key, first)
    assert a.status_code < 300, a.text
    b = send(idempotent_api, key, second)
    a_again = send(idempotent_api, key, first)

    assert b.status_code < 500, b.text
    assert b.content != a.content
    decisions = [e.decision for e in idempotent_api.exchanges]
    assert decisions[:2] == ["new", "new"], idempotent_api.timeline()
    assert idempotent_api.exchanges[1].replay_of is None
    # The first tenant still gets its own response back, byte for byte.
    assert decisions[2] == "replayed", idempotent_api.timeline()
    assert a_again.status_code == a.status_code
    assert a_again.content == a.content
    # Each tenant's execution is recorded under its own tenant; the replay executed nothing.
    tenant_a, tenant_b = tenant_of(idempotent_api, first), tenant_of(idempotent_api, second)
    by_exchange = {(e.exchange_seq, e.tenant) for e in idempotent_api.side_effects}
    assert by_exchange == {(1, tenant_a), (2, tenant_b)}, idempotent_api.timeline()


@pytest.mark.idempotency(variants="all")
def test_key_reused_under_another_credential_with_another_body_is_no_conflict(
    idempotent_api: IdempotentAPI,
) -> None:
    first, second = two_credentials(idempotent_api)
    key = "shared-key-0000000000000000000002"
    _, _, params = idempotent_api.example()
    text_fields = [name for name, value in params.items() if isinstance(value, str)]

    a = send(idempotent_api, key, first)
    assert a.status_code < 300, a.text
    changed = {text_fields[0]: params[text_fields[0]] + " (tenant b)"} if text_fields else {}
    b = send(idempotent_api, key, second, **changed)

    assert idempotent_api.exchanges[1].decision == "new", idempotent_api.timeline()
    assert b.content != a.content


@pytest.mark.idempotency(variants="all")
def test_key_in_flight_for_one_tenant_does_not_block_another(
    idempotent_api: IdempotentAPI,
) -> None:
    first, second = two_credentials(idempotent_api)
    key = "shared-key-0000000000000000000003"
    fault = idempotent_api.faults.hold(key=key)
    held: dict[str, requests.Response] = {}

    def first_tenant() -> None:
        method, url, params = idempotent_api.example()
        held["a"] = requests.request(
            method,
            url,
            timeout=5,
            **idempotent_api.request_kwargs(params, key=key, credential=first),
        )

    thread = threading.Thread(target=first_tenant)
    thread.start()
    try:
        fault.wait_until_held()
        b = send(idempotent_api, key, second)
    finally:
        fault.release()
        thread.join(5)

    assert idempotent_api.exchanges[1].decision == "new", idempotent_api.timeline()
    assert b.status_code < 300, b.text
    assert held["a"].status_code < 300
    assert held["a"].content != b.content


def test_fixture_server_binds_loopback_by_default(idempotency_server: IdempotencyServer) -> None:
    if os.environ.get("PYTEST_IDEMPOTENCY_HOST"):
        pytest.skip("PYTEST_IDEMPOTENCY_HOST overrides the default address in this run")
    assert idempotency_server.host == "127.0.0.1"
    assert idempotency_server.server is not None
    assert idempotency_server.server.socket.getsockname()[0] == "127.0.0.1"


def test_server_class_binds_loopback_by_default() -> None:
    server = IdempotencyServer(App(get_variant("generic")))
    server.start()
    try:
        assert server.server is not None
        assert server.server.socket.getsockname()[0] == "127.0.0.1"
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.stop()
