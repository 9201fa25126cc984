"""The ``stripe`` preset: one test per rule of Stripe API v1's idempotency contract
(docs/variants/stripe.md), with requests, httpx and the official stripe-python SDK."""

from __future__ import annotations

import threading

import httpx
import pytest
import requests
import stripe

from pytest_idempotency.providers.stripe import MISMATCH_MESSAGE

pytestmark = pytest.mark.idempotency(variant="stripe")

CUSTOMER = {"email": "jenny@example.com", "name": "Jenny Rosen"}


def post(api, path, params, key=None, **kwargs):
    return requests.post(api.url_for(path), **api.request_kwargs(params, key=key, **kwargs))


def form_headers(api, key: str) -> dict[str, str]:
    """Headers for a hand-written form body."""
    return {**api.headers(key), "Content-Type": "application/x-www-form-urlencoded"}


def sdk(api, retries: int = 2) -> stripe.StripeClient:
    """stripe-python, unmodified, pointed at the fake."""
    return stripe.StripeClient(
        "sk_test_123", base_addresses={"api": api.url}, max_network_retries=retries
    )


# -- the key ---------------------------------------------------------------------------------------


def test_stripe_same_key_same_params_replays_with_idempotent_replayed_true(idempotent_api):
    first = post(idempotent_api, "/v1/customers", CUSTOMER, key="k-1")
    again = post(idempotent_api, "/v1/customers", CUSTOMER, key="k-1")

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    idempotent_api.assert_exactly_once()


def test_stripe_key_of_up_to_255_characters_is_accepted_and_256_is_refused(idempotent_api):
    accepted = post(idempotent_api, "/v1/customers", CUSTOMER, key="k" * 255)
    refused = post(idempotent_api, "/v1/customers", CUSTOMER, key="k" * 256)

    assert accepted.status_code == 200
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "at most 255" in error["message"]
    idempotent_api.assert_exactly_once()


def test_stripe_key_is_checked_by_length_and_characters_not_uuid_version(idempotent_api):
    not_a_uuid = post(idempotent_api, "/v1/customers", CUSTOMER, key="order-42:attempt")
    uuid_shaped = post(
        idempotent_api, "/v1/customers", CUSTOMER, key="1f62aa1f-50f8-2359-f369-0bb7cac39f64"
    )
    bad_characters = requests.post(
        idempotent_api.url_for("/v1/customers"),
        data="name=x",
        headers=form_headers(idempotent_api, "caf\xe9"),  # a byte outside printable ASCII
    )

    assert not_a_uuid.status_code == uuid_shaped.status_code == 200
    assert bad_characters.status_code == 400
    assert "characters" in bad_characters.json()["error"]["message"]
    idempotent_api.assert_side_effects(2)


def test_stripe_key_on_get_has_no_effect(idempotent_api):
    customer = post(idempotent_api, "/v1/customers", CUSTOMER, key="create-1").json()
    url = idempotent_api.url_for(f"/v1/customers/{customer['id']}")

    before = requests.get(url, headers=idempotent_api.headers("read-1"))
    post(idempotent_api, f"/v1/customers/{customer['id']}", {"name": "Jenny R."}, key="upd-1")
    after = requests.get(url, headers=idempotent_api.headers("read-1"))

    assert (before.json()["name"], after.json()["name"]) == ("Jenny Rosen", "Jenny R.")
    assert "Idempotent-Replayed" not in after.headers
    assert [e.key for e in idempotent_api.journal.filter(method="GET")] == [None, None]


def test_stripe_key_on_delete_has_no_effect(idempotent_api):
    customer = post(idempotent_api, "/v1/customers", CUSTOMER, key="create-1").json()
    url = idempotent_api.url_for(f"/v1/customers/{customer['id']}")

    first = requests.delete(url, headers=idempotent_api.headers("del-1"))
    second = requests.delete(url, headers=idempotent_api.headers("del-1"))

    assert first.json() == {"id": customer["id"], "object": "customer", "deleted": True}
    assert second.status_code == 404  # ran again: not a replay of the first answer
    assert second.json()["error"]["code"] == "resource_missing"
    assert "Idempotent-Replayed" not in second.headers


# -- parameters compared ---------------------------------------------------------------------------


def test_stripe_same_key_with_other_params_returns_400_idempotency_error(idempotent_api):
    post(idempotent_api, "/v1/customers", CUSTOMER, key="k-1")
    reused = post(idempotent_api, "/v1/customers", {**CUSTOMER, "name": "Other"}, key="k-1")

    assert reused.status_code == 400
    assert reused.json() == {
        "error": {"message": MISMATCH_MESSAGE.replace("{key}", "k-1"), "type": "idempotency_error"}
    }
    assert "Try using a key other than 'k-1'" in reused.json()["error"]["message"]
    assert reused.headers["Stripe-Should-Retry"] == "false"
    idempotent_api.assert_exactly_once()


def test_stripe_params_are_compared_not_bytes_so_field_order_does_not_matter(idempotent_api):
    with httpx.Client() as client:
        url = idempotent_api.url_for("/v1/customers")
        headers = form_headers(idempotent_api, "k")
        first = client.post(url, content="name=Jenny&metadata[a]=1&email=j%40x.io", headers=headers)
        again = client.post(url, content="email=j%40x.io&name=Jenny&metadata[a]=1", headers=headers)

    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    idempotent_api.assert_exactly_once()


def test_stripe_same_key_on_another_endpoint_returns_400_idempotency_error(idempotent_api):
    post(idempotent_api, "/v1/customers", {"name": "Widget"}, key="k-1")
    other = post(idempotent_api, "/v1/products", {"name": "Widget"}, key="k-1")

    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    idempotent_api.assert_exactly_once()


def test_stripe_nested_form_params_are_parsed_like_stripe(idempotent_api):
    params = {
        "amount": 2000,
        "currency": "usd",
        "payment_method_types": ["card", "link"],
        "metadata": {"order_id": "6735"},
    }
    created = post(idempotent_api, "/v1/payment_intents", params, key="pi-1")

    body = created.json()
    assert created.status_code == 200
    assert (body["amount"], body["currency"]) == (2000, "usd")
    assert body["payment_method_types"] == ["card", "link"]
    assert body["metadata"] == {"order_id": "6735"}
    assert b"metadata%5Border_id%5D=6735" in idempotent_api.exchanges[0].body


# -- in flight ---------------------------------------------------------------------------------------


def test_stripe_duplicate_while_original_executes_returns_409_idempotency_key_in_use(
    idempotent_api,
):
    hold = idempotent_api.faults.hold()
    results: dict[str, requests.Response] = {}
    original = threading.Thread(
        target=lambda: results.update(r=post(idempotent_api, "/v1/customers", CUSTOMER, key="k"))
    )
    original.start()
    hold.wait_until_held()

    duplicate = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")
    hold.release()
    original.join(5)
    retried = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")

    assert duplicate.status_code == 409
    error = duplicate.json()["error"]
    assert (error["code"], error["type"]) == ("idempotency_key_in_use", "invalid_request_error")
    assert duplicate.headers["Stripe-Should-Retry"] == "true"
    assert results["r"].status_code == 200
    # the 409 was not saved: the retry gets the original's saved result
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json() == results["r"].json()
    idempotent_api.assert_exactly_once()


# -- what is saved -----------------------------------------------------------------------------------


def test_stripe_4xx_after_execution_began_is_saved_and_replayed(idempotent_api):
    first = post(idempotent_api, "/v1/customers/cus_missing", {"name": "x"}, key="k")
    post(idempotent_api, "/v1/customers", {"name": "x"}, key="create")  # no cus_missing anyway
    again = post(idempotent_api, "/v1/customers/cus_missing", {"name": "x"}, key="k")

    assert first.status_code == again.status_code == 404
    assert first.json()["error"] == {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such customer: 'cus_missing'",
        "param": "id",
        "type": "invalid_request_error",
    }
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content


def test_stripe_500_after_execution_began_is_saved_and_replayed(idempotent_api):
    idempotent_api.faults.error_after_commit(500)
    first = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")
    again = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")

    assert first.status_code == again.status_code == 500
    assert first.json()["error"]["type"] == "api_error"
    assert again.headers["Idempotent-Replayed"] == "true"
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_stripe_invalid_parameters_are_refused_before_the_layer_and_not_saved(idempotent_api):
    invalid = post(idempotent_api, "/v1/payment_intents", {"currency": "usd"}, key="k")
    fixed = post(idempotent_api, "/v1/payment_intents", {"amount": 500, "currency": "usd"}, key="k")

    assert invalid.status_code == 400
    assert invalid.json()["error"] == {
        "code": "parameter_missing",
        "doc_url": "https://stripe.com/docs/error-codes/parameter-missing",
        "message": "Missing required param: amount.",
        "param": "amount",
        "type": "invalid_request_error",
    }
    assert fixed.status_code == 200
    assert "Idempotent-Replayed" not in fixed.headers
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"amount": "12.50", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": 100, "currency": "usd", "colour": "red"}, "parameter_unknown", "colour"),
        ({"amount": 100, "currency": "dollars"}, None, "currency"),
    ],
)
def test_stripe_body_that_breaks_the_schema_gets_400_invalid_request_error_never_500(
    idempotent_api, params, code, param
):
    response = post(idempotent_api, "/v1/payment_intents", params, key="k")

    error = response.json()["error"]
    assert response.status_code == 400
    assert (error.get("code"), error["param"], error["type"]) == (
        code,
        param,
        "invalid_request_error",
    )
    idempotent_api.assert_side_effects(0)


def test_stripe_429_from_the_rate_limiter_is_not_saved(idempotent_api):
    idempotent_api.faults.error_before_commit(429)
    limited = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")
    retried = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")

    assert limited.status_code == 429
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers
    idempotent_api.assert_exactly_once()


def test_stripe_401_without_api_key_is_not_saved(idempotent_api):
    kwargs = idempotent_api.request_kwargs(CUSTOMER, key="k")
    del kwargs["headers"]["Authorization"]
    anonymous = requests.post(idempotent_api.url_for("/v1/customers"), **kwargs)
    authenticated = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"
    assert anonymous.json()["error"]["message"].startswith("You did not provide an API key.")
    assert authenticated.status_code == 200
    assert "Idempotent-Replayed" not in authenticated.headers
    idempotent_api.assert_exactly_once()


@pytest.mark.parametrize("authorization", ["Bearer not-a-key", "Token sk_test_123", "Basic !!"])
def test_stripe_malformed_api_key_gets_401_and_basic_auth_works(idempotent_api, authorization):
    kwargs = idempotent_api.request_kwargs(CUSTOMER)
    kwargs["headers"]["Authorization"] = authorization
    refused = requests.post(idempotent_api.url_for("/v1/customers"), **kwargs)
    basic = requests.post(
        idempotent_api.url_for("/v1/customers"), data=CUSTOMER, auth=("sk_test_123", "")
    )

    assert refused.status_code == 401
    assert basic.status_code == 200
    idempotent_api.assert_exactly_once()


# -- headers -------------------------------------------------------------------------------------------


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_stripe_every_response_echoes_the_idempotency_key_header(idempotent_api):
    created = post(idempotent_api, "/v1/customers", CUSTOMER, key="echo-me")
    replayed = post(idempotent_api, "/v1/customers", CUSTOMER, key="echo-me")
    conflict = post(idempotent_api, "/v1/customers", {"name": "Other"}, key="echo-me")
    unauthenticated = requests.post(
        idempotent_api.url_for("/v1/customers"),
        data=CUSTOMER,
        headers={"Idempotency-Key": "echo-me"},
    )
    invalid = post(idempotent_api, "/v1/customers", {"nope": "x"}, key="echo-me")
    read = requests.get(
        idempotent_api.url_for("/v1/customers/cus_nope"), headers=idempotent_api.headers("echo-me")
    )

    assert [r.status_code for r in (unauthenticated, invalid, read)] == [401, 400, 404]
    for response in (created, replayed, conflict, unauthenticated, invalid, read):
        assert response.headers["Idempotency-Key"] == "echo-me"


def test_stripe_responses_carry_a_request_id_header(idempotent_api):
    created = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")
    missing = requests.get(
        idempotent_api.url_for("/v1/customers/cus_nope"), headers=idempotent_api.headers()
    )

    assert created.headers["Request-Id"].startswith("req_")
    assert missing.headers["Request-Id"].startswith("req_")
    assert created.headers["Request-Id"] != missing.headers["Request-Id"]


# -- time and scope ------------------------------------------------------------------------------------


def test_stripe_keys_are_kept_24_hours_then_a_reuse_is_a_new_request(idempotent_api):
    post(idempotent_api, "/v1/customers", CUSTOMER, key="k")
    idempotent_api.clock.advance(hours=23, minutes=59)
    within = post(idempotent_api, "/v1/customers", {"name": "Other"}, key="k")
    idempotent_api.clock.advance(minutes=1)
    after = post(idempotent_api, "/v1/customers", {"name": "Other"}, key="k")

    assert within.status_code == 400  # still remembered: the parameters are compared
    assert after.status_code == 200  # pruned: a new request
    assert "Idempotent-Replayed" not in after.headers
    idempotent_api.assert_side_effects(2)


def test_stripe_keys_never_cross_accounts(idempotent_api):
    mine = post(idempotent_api, "/v1/customers", CUSTOMER, key="shared")
    theirs = post(
        idempotent_api, "/v1/customers", CUSTOMER, key="shared", credential="sk_test_other"
    )

    assert mine.status_code == theirs.status_code == 200
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs.headers
    assert {e.tenant for e in idempotent_api.side_effects} == {"sk_test_123", "sk_test_other"}


def test_stripe_lost_response_then_retry_with_same_key_creates_one_object(idempotent_api):
    idempotent_api.faults.drop_response()
    with pytest.raises(requests.ConnectionError):
        post(idempotent_api, "/v1/customers", CUSTOMER, key="k")
    retried = post(idempotent_api, "/v1/customers", CUSTOMER, key="k")

    assert retried.status_code == 200
    assert retried.headers["Idempotent-Replayed"] == "true"
    idempotent_api.assert_exactly_once()
    assert idempotent_api.resources.count("customers") == 1


# -- resources -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "object_", "prefix"),
    [
        ("/v1/customers", CUSTOMER, "customer", "cus_"),
        ("/v1/payment_intents", {"amount": 100, "currency": "eur"}, "payment_intent", "pi_"),
        ("/v1/charges", {"amount": 100, "currency": "eur", "source": "tok_visa"}, "charge", "ch_"),
        ("/v1/refunds", {"charge": "ch_1"}, "refund", "re_"),
        ("/v1/products", {"name": "T-shirt"}, "product", "prod_"),
        (
            "/v1/prices",
            {"currency": "eur", "unit_amount": 900, "product": "prod_1"},
            "price",
            "price_",
        ),
        ("/v1/widgets", {"size": "large"}, "widget", "obj_"),
    ],
)
def test_stripe_post_creates_a_stripe_shaped_object_that_get_reads_back(
    idempotent_api, path, params, object_, prefix
):
    created = post(idempotent_api, path, params, key="k")
    obj = created.json()
    read = requests.get(
        idempotent_api.url_for(f"{path}/{obj['id']}"), headers=idempotent_api.headers()
    )

    assert created.status_code == 200
    assert obj["id"].startswith(prefix)
    assert obj["object"] == object_
    assert isinstance(obj["created"], int)
    assert obj["livemode"] is False
    assert all(obj[name] == value for name, value in params.items())
    assert read.json() == obj
    idempotent_api.assert_exactly_once(kind=f"{object_}.created")


def test_stripe_post_to_an_object_updates_it_and_merges_metadata(idempotent_api):
    customer = post(
        idempotent_api, "/v1/customers", {**CUSTOMER, "metadata": {"a": "1", "b": "2"}}, key="c"
    ).json()
    path = f"/v1/customers/{customer['id']}"
    updated = post(idempotent_api, path, {"name": "J.R.", "metadata": {"b": "", "c": "3"}}, key="u")

    assert updated.status_code == 200
    assert updated.json()["name"] == "J.R."
    assert updated.json()["email"] == CUSTOMER["email"]
    assert updated.json()["metadata"] == {"a": "1", "c": "3"}
    assert [s.kind for s in idempotent_api.side_effects] == ["customer.created", "customer.updated"]


def test_stripe_list_returns_a_list_object_newest_first(idempotent_api):
    ids = [post(idempotent_api, "/v1/products", {"name": n}, key=n).json()["id"] for n in "abc"]
    listed = requests.get(
        idempotent_api.url_for("/v1/products?limit=2"), headers=idempotent_api.headers()
    ).json()

    assert listed["object"] == "list"
    assert [p["id"] for p in listed["data"]] == ids[::-1][:2]
    assert listed["has_more"] is True


@pytest.mark.idempotency(assert_all_requests_were_expected=False)
def test_stripe_unrecognized_url_gets_404_invalid_request_error(idempotent_api):
    response = requests.post(
        idempotent_api.url_for("/v2/core/events"), headers=idempotent_api.headers("k")
    )

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["message"].startswith("Unrecognized request URL")


# -- the official SDK ----------------------------------------------------------------------------------


def test_stripe_python_retries_a_lost_response_into_one_customer_and_a_replay(idempotent_api):
    idempotent_api.faults.drop_response()

    customer = sdk(idempotent_api).v1.customers.create(params=CUSTOMER)

    first, retry = idempotent_api.exchanges
    assert (first.wire, first.decision) == ("dropped", "new")
    assert retry.decision == "replayed"
    assert customer.last_response.headers["Idempotent-Replayed"] == "true"
    assert customer.last_response.idempotency_key == first.key == retry.key
    assert customer.id.startswith("cus_")
    assert customer.email == CUSTOMER["email"]
    idempotent_api.assert_exactly_once()
    assert idempotent_api.resources.count("customers") == 1


def test_stripe_python_raises_idempotency_error_on_a_key_reused_with_other_params(idempotent_api):
    client = sdk(idempotent_api)
    client.v1.customers.create(params=CUSTOMER, options={"idempotency_key": "signup-42"})

    with pytest.raises(stripe.IdempotencyError, match="a key other than 'signup-42'") as caught:
        client.v1.customers.create(
            params={**CUSTOMER, "name": "Someone Else"}, options={"idempotency_key": "signup-42"}
        )

    assert caught.value.http_status == 400
    assert len(idempotent_api.exchanges) == 2  # Stripe-Should-Retry: false -> not retried
    idempotent_api.assert_exactly_once()


def test_stripe_example_operation_creates_exactly_one_customer(idempotent_api):
    method, url, params = idempotent_api.example()

    response = requests.request(method, url, **idempotent_api.request_kwargs(params, key="ex"))

    assert response.status_code == 200
    assert response.json()["object"] == "customer"
    idempotent_api.assert_exactly_once(kind="customer.created")
