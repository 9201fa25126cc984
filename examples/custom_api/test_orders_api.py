"""Acme tests its own client against its own API's idempotency contract (see conftest.py).

Run it with ``pytest examples/custom_api``.
"""

from __future__ import annotations

import threading

import pytest
import requests
from orders_client import OrderError, OrdersClient

pytestmark = pytest.mark.idempotency(variant="acme-orders")


@pytest.fixture
def client(idempotent_api) -> OrdersClient:
    return OrdersClient(idempotent_api.url, "acme_test_key", sleep=lambda seconds: None)


def test_a_lost_response_is_retried_into_exactly_one_order(idempotent_api, client):
    idempotent_api.faults.drop_response(path="/orders")

    order = client.create_order("tea-earl-grey", 2)

    assert order["sku"] == "tea-earl-grey"
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_same_key_on_retries()
    idempotent_api.assert_replayed()


def test_a_refund_whose_response_is_lost_is_made_once(idempotent_api, client):
    order = client.create_order("tea-earl-grey", 2)
    idempotent_api.faults.drop_response(path="/orders/*")

    refund = client.refund(order["id"], 500)

    assert refund["order"] == order["id"]
    idempotent_api.assert_exactly_once(kind="refund.created")


def test_a_duplicate_in_flight_gets_409_and_the_client_waits_for_the_original(
    idempotent_api, client
):
    hold = idempotent_api.faults.hold()
    first: dict[str, dict] = {}
    original = threading.Thread(
        target=lambda: first.update(order=client.create_order("tea", 1, key="cart-7"))
    )
    original.start()
    hold.wait_until_held()

    def wait_for_the_original(_seconds: float) -> None:
        hold.release()
        original.join(5)

    impatient = OrdersClient(idempotent_api.url, "acme_test_key", sleep=wait_for_the_original)
    second = impatient.create_order("tea", 1, key="cart-7")

    assert second == first["order"]
    idempotent_api.assert_saw("in_flight", key="cart-7", count=1)
    idempotent_api.assert_exactly_once()


def test_reusing_a_key_for_another_order_is_refused_with_422(idempotent_api, client):
    client.create_order("tea", 1, key="cart-8")

    with pytest.raises(OrderError) as refused:
        client.create_order("coffee", 1, key="cart-8")

    assert (refused.value.status, refused.value.code) == (422, "idempotency_key_reused")
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_an_invalid_order_is_refused_by_the_schema_in_acmes_envelope(idempotent_api, client):
    with pytest.raises(OrderError) as refused:
        client.create_order("tea", 0)

    assert (refused.value.status, refused.value.code) == (400, "invalid_request")
    assert "quantity" in str(refused.value)
    idempotent_api.assert_side_effects(0)


def test_a_refund_without_a_key_is_refused(idempotent_api, client):
    order = client.create_order("tea", 1)

    response = requests.post(
        idempotent_api.url_for(f"/orders/{order['id']}/refunds"),
        json={"amount": 100},
        headers={"Authorization": "Bearer acme_test_key"},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "idempotency_key_missing"
    idempotent_api.assert_side_effects(0, kind="refund.created")


def test_keys_are_forgotten_after_one_hour(idempotent_api, client):
    client.create_order("tea", 1, key="cart-9")
    idempotent_api.clock.advance(hours=1)

    again = client.create_order("coffee", 1, key="cart-9")  # a new operation now

    assert again["sku"] == "coffee"
    idempotent_api.assert_side_effects(2)
