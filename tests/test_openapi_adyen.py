"""Adyen's published Checkout v71 and Transfers v4 documents, served as they are, driven by
the unmodified Adyen Python SDK."""

from __future__ import annotations

import uuid

import Adyen
import pytest
import requests
from Adyen.exceptions import AdyenAPIResponseError
from openapi_specs import DATA, spec

from pytest_idempotency import variant_from_openapi

PAYMENT = {
    "amount": {"currency": "EUR", "value": 1000},
    "reference": "order-1",
    "merchantAccount": "TestMerchant",
    "paymentMethod": {"type": "scheme", "encryptedCardNumber": "test_4111111111111111"},
    "returnUrl": "https://example.com/return",
}


@pytest.fixture(scope="module")
def checkout():
    return variant_from_openapi(spec("adyen-checkout-v71.json"))


@pytest.fixture
def adyen(idempotent_api, checkout):
    idempotent_api.reset(checkout)
    sdk = Adyen.Adyen(xapikey="test_api_key", platform="test")
    sdk.checkout.payments_api.baseUrl = idempotent_api.url + "/v71"
    sdk.checkout.modifications_api.baseUrl = idempotent_api.url + "/v71"
    sdk.transfers.transfers_api.baseUrl = idempotent_api.url + "/btl/v4"
    return sdk


def test_loading_checkout_reads_its_idempotency_contract():
    # How long loading takes is measured in benchmarks/bench_openapi.py, not here.
    variant = variant_from_openapi(spec("adyen-checkout-v71.json"))
    assert variant.policy.key_header == "Idempotency-Key"
    assert variant.policy.key_max_length == 64  # "a maximum of 64 characters"
    assert "POST /v71/payments" in variant.policy.keyed_routes
    assert [s.kind for s in variant.credential_schemes] == ["header", "basic"]


def test_sdk_creates_a_payment_with_an_idempotency_key(adyen, idempotent_api):
    key = str(uuid.uuid4())
    result = adyen.checkout.payments_api.payments(PAYMENT, idempotency_key=key)
    assert result.status_code == 200
    assert result.message["amount"] == PAYMENT["amount"]  # the request's fields come back
    assert result.message["pspReference"].startswith("payment_")
    first = idempotent_api.exchanges[0]
    assert (first.key, first.decision) == (key, "new")
    idempotent_api.assert_exactly_once(kind="payments.created")


def test_lost_response_then_the_users_retry_is_a_replay(adyen, idempotent_api):
    idempotent_api.faults.drop_response(path="/v71/payments", times=1)
    key = str(uuid.uuid4())
    with pytest.raises(requests.exceptions.ConnectionError):
        adyen.checkout.payments_api.payments(PAYMENT, idempotency_key=key)
    retried = adyen.checkout.payments_api.payments(PAYMENT, idempotency_key=key)
    assert retried.status_code == 200
    assert [e.decision for e in idempotent_api.exchanges] == ["new", "replayed"]
    idempotent_api.assert_exactly_once()


def test_a_reused_key_with_another_payment_is_refused_in_service_error_words(adyen, idempotent_api):
    key = str(uuid.uuid4())
    adyen.checkout.payments_api.payments(PAYMENT, idempotency_key=key)
    with pytest.raises(AdyenAPIResponseError) as raised:
        adyen.checkout.payments_api.payments(
            {**PAYMENT, "amount": {"currency": "EUR", "value": 2000}}, idempotency_key=key
        )
    assert raised.value.status_code == 409
    body = requests.post(
        idempotent_api.url_for("/v71/payments"),
        json={**PAYMENT, "reference": "other"},
        headers=idempotent_api.headers(key),
    ).json()
    # ServiceError's own fields; errorType is left out when the answer has no type
    assert set(body) == {"errorCode", "message", "pspReference", "status"}
    assert (body["status"], body["errorCode"]) == (409, "idempotency_key_reused")
    idempotent_api.assert_exactly_once()


def test_a_key_over_64_characters_is_refused(adyen, idempotent_api):
    with pytest.raises(AdyenAPIResponseError) as raised:
        adyen.checkout.payments_api.payments(PAYMENT, idempotency_key="k" * 65)
    assert raised.value.status_code == 400
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_payment_without_its_required_fields_breaks_the_document_schema(adyen, idempotent_api):
    with pytest.raises(AdyenAPIResponseError) as raised:
        adyen.checkout.payments_api.payments({"reference": "x"}, idempotency_key="k1")
    assert raised.value.status_code == 400
    assert "required" in idempotent_api.exchanges[0].note
    idempotent_api.assert_side_effects(0)


def test_basic_credentials_are_accepted_and_a_missing_one_is_401(adyen, idempotent_api):
    sdk = Adyen.Adyen(username="ws_user", password="secret", platform="test")
    sdk.checkout.payments_api.baseUrl = idempotent_api.url + "/v71"
    assert sdk.checkout.payments_api.payments(PAYMENT, idempotency_key="b1").status_code == 200
    anonymous = requests.post(idempotent_api.url_for("/v71/payments"), json=PAYMENT)
    assert anonymous.status_code == 401
    assert anonymous.json()["errorCode"] == "unauthorized"


def test_a_refund_under_a_key_happens_once(adyen, idempotent_api):
    payment = adyen.checkout.payments_api.payments(PAYMENT, idempotency_key="p1").message
    refund = {"amount": PAYMENT["amount"], "merchantAccount": "TestMerchant"}
    modifications = adyen.checkout.modifications_api
    for _ in range(2):
        modifications.refund_captured_payment(refund, payment["pspReference"], idempotency_key="r1")
    idempotent_api.assert_exactly_once(kind="refunds.created")


@pytest.fixture(scope="module")
def transfers():
    return variant_from_openapi(
        spec("adyen-transfers-v4.json"), overlay=DATA / "adyen-transfers-overlay.json"
    )


def test_transfers_v4_from_its_document_and_an_overlay(idempotent_api, transfers):
    idempotent_api.reset(transfers)
    sdk = Adyen.Adyen(xapikey="test_api_key", platform="test")
    sdk.transfers.transfers_api.baseUrl = idempotent_api.url + "/btl/v4"
    idempotent_api.faults.drop_response(path="/btl/v4/transfers", times=1)
    transfer = {
        "amount": {"currency": "EUR", "value": 500},
        "balanceAccountId": "BA00000000000000000000001",
        "category": "bank",
        "counterparty": {"transferInstrumentId": "SE00000000000000000000001"},
    }
    with pytest.raises(requests.exceptions.ConnectionError):
        sdk.transfers.transfers_api.transfer_funds(transfer, idempotency_key="t-1")
    done = sdk.transfers.transfers_api.transfer_funds(transfer, idempotency_key="t-1")
    assert done.status_code == 200
    assert [e.decision for e in idempotent_api.exchanges] == ["new", "replayed"]
    idempotent_api.assert_exactly_once(kind="transfers.created")
    # the document declares no key: the overlay's x-idempotency does
    assert transfers.policy.keyed_routes == ("POST /btl/v4/transfers",)
