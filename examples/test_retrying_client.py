"""The main example: one retrying client against every variant, under every failure that
matters. Run it with ``pytest examples``.

Each test reads the variant's contract from ``idempotent_api.contract`` so one body serves
every API: where the key goes, how bodies are encoded, which answers are cached.
"""

from __future__ import annotations

import threading

import pytest
from retrying_client import KeyPlacement, RetriesExhausted, RetryingClient

pytestmark = pytest.mark.idempotency(variants="all")


def make_client(api, **options) -> RetryingClient:
    contract = api.contract
    placement = KeyPlacement(
        header=contract.key_header,
        body_field=contract.key_field,
        structured_field=contract.key_format == "sf-string",
        form_encoded=contract.body_encoding == "form",
    )
    return RetryingClient(api.url, credential=api.credential, placement=placement, **options)


def create(api, client: RetryingClient, key: str | None = None):
    _method, url, params = api.example()
    return client.post(url.removeprefix(api.url), params, idempotency_key=key)


def test_lost_response_is_replayed_not_repeated(idempotent_api):
    idempotent_api.faults.drop_response()  # the server commits, the client sees a dead socket
    client = make_client(idempotent_api)

    response = create(idempotent_api, client)

    assert response.ok, response.text
    assert client.attempts == 2
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_same_key_on_retries()
    idempotent_api.assert_replayed()


def test_connection_reset_before_commit_runs_the_operation_on_the_retry(idempotent_api):
    idempotent_api.faults.reset_connection()
    client = make_client(idempotent_api)

    response = create(idempotent_api, client)

    assert response.ok, response.text
    first, second = idempotent_api.exchanges
    assert (first.wire, first.committed) == ("reset", False)
    assert second.decision == "new"
    idempotent_api.assert_exactly_once()


def test_503_with_retry_after_is_waited_out_then_succeeds(idempotent_api):
    idempotent_api.faults.error_before_commit(503, retry_after=2)
    waits: list[float] = []
    client = make_client(idempotent_api, sleep=waits.append)

    response = create(idempotent_api, client)

    assert response.ok, response.text
    assert waits == [2.0]  # Retry-After honoured (and recorded instead of slept)
    idempotent_api.assert_exactly_once()


def test_500_after_commit_follows_the_variants_cache_rules(idempotent_api):
    idempotent_api.faults.error_after_commit(500)
    client = make_client(idempotent_api, max_retries=1)

    response = create(idempotent_api, client)

    if idempotent_api.contract.caches_5xx:
        # Stripe-like: the 500 is stored; the retry replays it, nothing runs twice.
        assert response.status_code == 500
        idempotent_api.assert_exactly_once()
    elif idempotent_api.policy.error_after_keeps_record:
        # Moda- and Whet-like: the record belongs to the resource, so the retry returns it.
        assert response.ok, response.text
        idempotent_api.assert_exactly_once()
    else:
        # Phantom-like: "5xx (server error) No" (not cached) -> the retry runs the handler
        # again, and a 500 that struck after the side effect leads to a second one.
        assert response.ok, response.text
        idempotent_api.assert_side_effects(2)


def test_duplicate_while_the_original_is_in_flight(idempotent_api):
    hold = idempotent_api.faults.hold()
    key = "order-2026-11-23-0001"
    first: dict[str, object] = {}
    original = threading.Thread(
        target=lambda: first.update(r=create(idempotent_api, make_client(idempotent_api), key))
    )
    original.start()
    hold.wait_until_held()

    status = idempotent_api.contract.in_flight_status
    if status is not None:
        duplicate = create(idempotent_api, make_client(idempotent_api, max_retries=0), key)
        assert duplicate.status_code == status
        hold.release()
        original.join(10)
    else:  # the variant makes the duplicate wait for the original's answer (Whet)
        second: dict[str, object] = {}
        waiter = threading.Thread(
            target=lambda: second.update(r=create(idempotent_api, make_client(idempotent_api), key))
        )
        waiter.start()
        idempotent_api.wait_for_requests(2)
        hold.release()
        original.join(10)
        waiter.join(10)
        assert second["r"].content == first["r"].content  # the original's answer, replayed
    assert first["r"].ok
    idempotent_api.assert_exactly_once()


def test_client_that_mints_a_key_per_retry_is_caught(idempotent_api):
    idempotent_api.faults.drop_response()
    buggy = make_client(idempotent_api, mint_key_per_attempt=True)

    create(idempotent_api, buggy)

    with pytest.raises(AssertionError, match="different keys"):
        idempotent_api.assert_exactly_once()


def test_a_dead_network_surfaces_after_the_last_retry(idempotent_api):
    idempotent_api.faults.reset_connection(times=4)
    client = make_client(idempotent_api, max_retries=3)

    with pytest.raises(RetriesExhausted):
        create(idempotent_api, client)

    assert len(idempotent_api.exchanges) == 4
    idempotent_api.assert_side_effects(0)
