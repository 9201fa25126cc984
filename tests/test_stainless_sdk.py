"""A Stainless-generated SDK (orb-billing), unmodified, against the fake.

Stainless SDKs mint an ``Idempotency-Key`` for every non-GET request, resend it on each retry
and number their attempts in ``x-stainless-retry-count``; the journal records both."""

from __future__ import annotations

import orb
import pytest


def client(api, retries: int = 2) -> orb.Orb:
    return orb.Orb(api_key="orb_test_key", base_url=api.url, max_retries=retries)


def test_stainless_sdk_retries_a_lost_response_into_one_customer_and_a_replay(idempotent_api):
    idempotent_api.faults.drop_response()

    customer = client(idempotent_api).customers.create(email="ada@example.com", name="Ada")

    first, retry = idempotent_api.exchanges
    assert first.key == retry.key
    assert first.key is not None
    assert first.key.startswith("stainless-python-retry-")
    assert (first.client_retry_count, retry.client_retry_count) == ("0", "1")
    assert (first.wire, retry.decision) == ("dropped", "replayed")
    assert customer.id == idempotent_api.side_effects[0].resource_id
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_same_key_on_retries()


def test_stainless_sdk_gives_up_after_its_retries_without_a_side_effect(idempotent_api):
    idempotent_api.faults.reset_connection(times=2)

    with pytest.raises(orb.APIConnectionError):
        client(idempotent_api, retries=1).customers.create(email="ada@example.com", name="Ada")

    assert [e.client_retry_count for e in idempotent_api.exchanges] == ["0", "1"]
    assert [e.wire for e in idempotent_api.exchanges] == ["reset", "reset"]
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(cache_5xx=False)
def test_stainless_sdk_retrying_an_uncached_500_after_commit_executes_twice(idempotent_api):
    # The hazard Phantom documents ("5xx ... No"): the handler ran, the 500 is not stored, and
    # the SDK's retry (same key) runs it again. The fake makes the double execution visible.
    idempotent_api.faults.error_after_commit(500)

    client(idempotent_api).customers.create(email="ada@example.com", name="Ada")

    with pytest.raises(AssertionError, match="They share one key"):
        idempotent_api.assert_exactly_once()
