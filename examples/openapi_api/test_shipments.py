"""Acme tests its shipments client against a fake built from its own OpenAPI document
(``shipments.yaml`` beside this file): no Python description of the API at all.

Run it with ``pytest examples/openapi_api``.
"""

from __future__ import annotations

import pytest
import requests
from shipments_client import ShipmentsClient

pytestmark = pytest.mark.idempotency(openapi="shipments.yaml")
BASE = "/v2"  # the path of the document's server URL


@pytest.fixture
def client(idempotent_api) -> ShipmentsClient:
    return ShipmentsClient(idempotent_api.url + BASE, idempotent_api.credential)


def test_a_lost_response_is_retried_into_exactly_one_shipment(idempotent_api, client):
    idempotent_api.faults.drop_response(path=f"{BASE}/shipments")

    shipment = client.ship("ord_1", "1 Quay Street")

    assert shipment["state"] == "label_created"  # the schema's first enum value
    idempotent_api.assert_replayed()
    idempotent_api.assert_exactly_once()
    assert client.get(shipment["id"]) == shipment  # stored: a read by id returns it


def test_a_5xx_before_the_commit_is_retried_and_ships_once(idempotent_api, client):
    idempotent_api.faults.error_before_commit(503, path=f"{BASE}/shipments")

    client.ship("ord_2", "2 Quay Street")

    idempotent_api.assert_exactly_once()
    idempotent_api.assert_same_key_on_retries()


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_an_address_the_document_refuses_is_not_retried(idempotent_api, client):
    with pytest.raises(requests.HTTPError) as raised:
        client.ship("ord_3", "x")

    assert raised.value.response.status_code == 400
    assert set(raised.value.response.json()) == {"code", "message"}  # the document's Error
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(openapi="shipments.yaml")
def test_a_missing_key_is_refused(idempotent_api):
    response = requests.post(
        idempotent_api.url_for(f"{BASE}/shipments"),
        json={"order_id": "o", "address": "1 Quay Street"},
        headers=idempotent_api.headers(),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"
