"""What a new user hits in the first hour: naming a variant in reset, an expired record
behind a second execution, request headers in the journal."""

from __future__ import annotations

import httpx
import pytest
import requests

from pytest_idempotency import assert_saw_header, get_variant
from pytest_idempotency.providers import UnknownVariant

TIMEOUT = 5.0  # a safety net against a hung test, never a wait


def _post(api, key: str, body: dict | None = None, **headers: str) -> requests.Response:
    kwargs = api.request_kwargs(body or {"user_id": "123", "delta": 5}, key=key)
    kwargs["headers"].update(headers)
    return requests.post(api.url_for("/api/v1/economy/adjust"), timeout=TIMEOUT, **kwargs)


# -- reset(variant=...) takes a name -------------------------------------------------------------


def test_reset_takes_a_variant_name(idempotent_api):
    idempotent_api.reset(variant="phantom")

    assert idempotent_api.name == "phantom"
    response = _post(idempotent_api, "adjust-1")
    assert response.status_code == 200, response.text


def test_reset_takes_a_variant_object_and_policy_overrides(idempotent_api):
    idempotent_api.reset(variant=get_variant("phantom"), ttl=60)

    assert (idempotent_api.name, idempotent_api.policy.ttl) == ("phantom", 60)


def test_reset_with_an_unknown_name_lists_the_names(idempotent_api):
    with pytest.raises(UnknownVariant) as caught:
        idempotent_api.reset(variant="phantomm")

    message = str(caught.value)
    assert "'phantomm'" in message
    assert "phantom, letmepost" in message
    assert idempotent_api.name == "generic"  # nothing changed


def test_reset_with_neither_a_name_nor_a_variant_says_what_it_takes(idempotent_api):
    with pytest.raises(TypeError, match="variant name such as 'phantom' or a Variant"):
        idempotent_api.reset(variant=42)


# -- a second execution from an expired record ---------------------------------------------------


@pytest.mark.idempotency(variant="phantom")
def test_expired_record_is_in_the_journal_and_the_timeline(idempotent_api):
    _post(idempotent_api, "adjust-ttl")
    idempotent_api.clock.advance(hours=24)
    _post(idempotent_api, "adjust-ttl")

    second = idempotent_api.journal[1]
    assert second.decision == "new"
    assert second.expired is not None
    assert second.expired[0] == 1
    assert second.as_dict()["expired"]["seq"] == 1
    timeline = idempotent_api.timeline()
    assert "new (#1 expired)" in timeline
    assert "#2 ran the handler again: the record of #1 expired at +24h00m" in timeline


_EXPIRED = """
import pytest, requests

@pytest.mark.idempotency(variant="phantom")
def test_it(idempotent_api):
    kwargs = idempotent_api.request_kwargs({"user_id": "1", "delta": 5}, key="k-expiry")
    url = idempotent_api.url_for("/api/v1/economy/adjust")
    requests.post(url, **kwargs)
    idempotent_api.clock.advance(hours=24)
    requests.post(url, **kwargs)
    idempotent_api.assert_exactly_once()
"""


def test_assert_exactly_once_names_the_expiry_instead_of_a_key_per_retry(pytester):
    pytester.makepyfile(_EXPIRED)
    result = pytester.runpytest()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: expected exactly one side effect, the server executed 2:",
            "E         - economy.adjusted * by request #1 (key 'k-expiry')",
            "E         - economy.adjusted * by request #2 (key 'k-expiry')",
            "E       the record of #1 expired at +24h00m, so request #2 ran the handler again "
            "under the same key (the key outlived the variant's TTL; the client did reuse its "
            "key). Retry sooner, or raise the TTL: @pytest.mark.idempotency(ttl=...).",
        ],
        consecutive=True,
    )
    result.stdout.no_fnmatch_line("*mint a new idempotency key*")


def test_a_replay_before_the_ttl_has_no_expiry(idempotent_api):
    idempotent_api.reset(variant="phantom")
    _post(idempotent_api, "adjust-early")
    idempotent_api.clock.advance(hours=23)
    _post(idempotent_api, "adjust-early")

    assert [e.expired for e in idempotent_api.journal] == [None, None]
    assert "expired" not in idempotent_api.timeline()


# -- request headers in the journal --------------------------------------------------------------


def test_journal_keeps_request_headers_as_sent(idempotent_api):
    with httpx.Client(timeout=TIMEOUT) as client:
        client.post(
            idempotent_api.url_for("/v1/things"),
            json={"a": 1},
            headers={"Idempotency-Key": "h-1", "X-Trace": "abc", "Authorization": "Bearer t"},
        )

    exchange = idempotent_api.journal[0]
    assert exchange.header("x-trace") == "abc"
    assert exchange.header("Idempotency-Key") == "h-1"
    assert exchange.header("Authorization") == "Bearer t"  # nothing is redacted
    assert exchange.header("X-Missing") is None
    assert ["X-Trace", "abc"] in exchange.as_dict()["headers"]


def test_journal_filter_by_header_name_or_name_and_value(idempotent_api):
    url = idempotent_api.url_for("/v1/things")
    requests.post(url, json={}, headers={"X-Tenant": "a"}, timeout=TIMEOUT)
    requests.post(url, json={}, headers={"X-Tenant": "b"}, timeout=TIMEOUT)
    requests.post(url, json={}, timeout=TIMEOUT)

    journal = idempotent_api.journal
    assert [e.seq for e in journal.filter(header="x-tenant")] == [1, 2]
    assert [e.seq for e in journal.filter(header=("X-Tenant", "b"))] == [2]
    assert journal.filter(header=("X-Tenant", "B")) == []  # values compare exactly


def test_assert_saw_header_passes_and_fails_naming_what_was_sent(idempotent_api):
    url = idempotent_api.url_for("/v1/things")
    requests.post(url, json={}, headers={"Idempotency-Key": "k1", "X-Retry": "0"})
    requests.post(url, json={}, headers={"Idempotency-Key": "k1", "X-Retry": "1"})

    idempotent_api.assert_saw_header("X-Retry", "1")
    idempotent_api.assert_saw_header("x-retry", every=True, key="k1")
    assert_saw_header(idempotent_api.journal, "X-Retry", "0", seq=1)
    with pytest.raises(AssertionError) as caught:
        idempotent_api.assert_saw_header("X-Retry", "0", every=True)
    assert "expected the request(s) to send X-Retry: 0:" in str(caught.value)
    assert "#2 POST /v1/things sent X-Retry: '1'" in str(caught.value)
    with pytest.raises(AssertionError, match=r"sent X-Trace: \(no such header\)"):
        idempotent_api.assert_saw_header("X-Trace")


def test_client_retry_count_is_read_from_the_stainless_header(idempotent_api):
    url = idempotent_api.url_for("/v1/things")
    requests.post(url, json={}, headers={"Idempotency-Key": "k", "X-Stainless-Retry-Count": "2"})

    exchange = idempotent_api.journal[0]
    assert exchange.client_retry_count == "2"
    assert exchange.header("X-Stainless-Retry-Count") == "2"


@pytest.mark.idempotency(variant="phantom")
def test_expiry_is_named_even_when_the_record_was_swept_by_other_traffic(idempotent_api):
    _post(idempotent_api, "adjust-swept")
    idempotent_api.clock.advance(hours=25)
    _post(idempotent_api, "adjust-other")  # its claim sweeps the expired record away
    _post(idempotent_api, "adjust-swept")

    assert idempotent_api.journal[2].expired is not None
    assert idempotent_api.journal[2].expired[0] == 1
    assert "the record of #1 expired at +24h00m" in idempotent_api.timeline()


_MARKER_WITH_A_VARIANT = """
import pytest, requests
from pytest_idempotency import get_variant

SHORT_TTL = get_variant("phantom").with_policy(ttl=60)

@pytest.mark.idempotency(variant=SHORT_TTL)
def test_it(idempotent_api):
    assert (idempotent_api.name, idempotent_api.policy.ttl) == ("phantom", 60)

@pytest.mark.idempotency(variant=SHORT_TTL, ttl=5)
def test_with_overrides(idempotent_api):
    assert idempotent_api.policy.ttl == 5
"""


def test_the_marker_takes_a_variant_object_too(pytester):
    pytester.makepyfile(_MARKER_WITH_A_VARIANT)
    pytester.runpytest().assert_outcomes(passed=2)
