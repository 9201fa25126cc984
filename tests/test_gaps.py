"""The four contracts real SDKs needed that a policy could not state: error answers that see
the stored record, reuse of a completed key as a conflict, how a credential is sent, and key
limits per route with faults in the API's own words."""

from __future__ import annotations

import textwrap

import pytest
import requests

from pytest_idempotency import (
    Answer,
    CredentialScheme,
    HandlerContext,
    Policy,
    Reply,
    Route,
    Variant,
    default_create_handler,
)
from pytest_idempotency.variant import Original


def _read(kind: str):
    def read(ctx: HandlerContext) -> Reply:
        found = ctx.resources.get(ctx.tenant, kind, ctx.params["id"])
        return Reply(200, found) if found else ctx.error(404, "not_found", "no such thing")

    return read


# -- 1. an error answer that names what the key first created ----------------------------------


def increase_conflict(status, code, message, *, type, request_id, original: Original) -> Reply:
    return Reply(
        status,
        {"status": status, "type": code, "title": message, "resource_id": original.resource_id},
    )


INCREASE = Variant(
    name="increase-like",
    policy=Policy(
        key_header="Idempotency-Key",
        mismatch=Answer(409, "idempotency_key_already_used_error", "The key was already used."),
    ),
    routes=(Route("POST /transfers", default_create_handler("transfer", "transfer")),),
    record_error_shape=increase_conflict,
)


def test_a_reused_key_names_the_resource_it_first_created(idempotent_api):
    idempotent_api.reset(INCREASE)
    url = idempotent_api.url_for("/transfers")
    first = requests.post(url, json={"amount": 100}, headers=idempotent_api.headers("k1")).json()
    again = requests.post(url, json={"amount": 200}, headers=idempotent_api.headers("k1"))
    assert again.status_code == 409
    assert again.json()["resource_id"] == first["id"]
    assert again.json()["type"] == "idempotency_key_already_used_error"
    idempotent_api.assert_exactly_once()


# -- 2. any reuse of a completed key is a conflict (GoCardless) --------------------------------


def gocardless_error(status, code, message, *, type, request_id, original=None) -> Reply:
    error = {"reason": code, "message": message}
    if original is not None:
        error["links"] = {"conflicting_resource_id": original.resource_id}
    return Reply(
        status,
        {
            "error": {
                "code": status,
                "type": type or "invalid_state",
                "errors": [error],
                "request_id": request_id,
            }
        },
    )


GOCARDLESS = Variant(
    name="gocardless-like",
    policy=Policy(key_header="Idempotency-Key", on_mismatch="replay", on_reuse="conflict"),
    routes=(
        Route("POST /payments", default_create_handler("payment", "PM")),
        Route("GET /payments/{id}", _read("payment")),
    ),
    error_shape=gocardless_error,
    record_error_shape=gocardless_error,
)


def test_reusing_a_completed_key_is_a_conflict_naming_the_payment(idempotent_api):
    idempotent_api.reset(GOCARDLESS)
    url = idempotent_api.url_for("/payments")
    created = requests.post(url, json={"amount": 100}, headers=idempotent_api.headers("k1")).json()
    again = requests.post(url, json={"amount": 100}, headers=idempotent_api.headers("k1"))
    assert again.status_code == 409
    error = again.json()["error"]["errors"][0]
    assert error["reason"] == "idempotent_creation_conflict"
    conflicting = error["links"]["conflicting_resource_id"]
    assert conflicting == created["id"]
    # the SDK then fetches the payment the key created
    fetched = requests.get(idempotent_api.url_for(f"/payments/{conflicting}"))
    assert fetched.json()["amount"] == 100
    assert [e.decision for e in idempotent_api.exchanges] == ["new", "conflict", "not_applicable"]
    idempotent_api.assert_exactly_once()


def test_reuse_conflict_is_declared_in_a_contract_file(idempotent_api, tmp_path):
    from pytest_idempotency import variant_from_contract

    contract = tmp_path / "gocardless.toml"
    contract.write_text(
        textwrap.dedent("""
        name = "gc"
        [policy]
        on_mismatch = "replay"
        on_reuse = "conflict"
        [errors.template.error]
        code = "{status}"
        type = "invalid_state"
        [[errors.template.error.errors]]
        reason = "{code}"
        message = "{message}"
        links = { conflicting_resource_id = "{resource_id}" }
        [[routes]]
        route = "POST /payments"
        id_prefix = "PM"
    """)
    )
    idempotent_api.reset(variant_from_contract(contract))
    url = idempotent_api.url_for("/payments")
    created = requests.post(url, json={"amount": 5}, headers=idempotent_api.headers("k")).json()
    again = requests.post(url, json={"amount": 5}, headers=idempotent_api.headers("k")).json()
    assert again["error"]["code"] == 409
    assert again["error"]["errors"][0]["links"] == {"conflicting_resource_id": created["id"]}
    idempotent_api.assert_saw("conflict")
    idempotent_api.assert_exactly_once()


# -- 3. how a credential is sent -----------------------------------------------------------------


def _keyed_variant(name: str, scheme: CredentialScheme, credential: str) -> Variant:
    def authenticate(headers):
        return scheme.read(headers)

    return Variant(
        name=name,
        policy=Policy(),
        routes=(Route("POST /things", default_create_handler("thing", "thg")),),
        authenticate=authenticate,
        credential_schemes=(scheme,),
        example_credential=credential,
        example=("POST", "/things", {"name": "x"}),
    )


@pytest.mark.parametrize(
    ("scheme", "credential", "header", "value"),
    [
        (CredentialScheme("header", "X-API-Key"), "key_123", "X-API-Key", "key_123"),
        (CredentialScheme("basic"), "user:pw", "Authorization", "Basic dXNlcjpwdw=="),
        (CredentialScheme("bearer"), "tok", "Authorization", "Bearer tok"),
    ],
)
def test_every_helper_sends_the_credential_the_way_the_api_wants(
    idempotent_api, scheme, credential, header, value
):
    idempotent_api.reset(_keyed_variant("cred", scheme, credential))
    assert idempotent_api.headers("k")[header] == value
    assert idempotent_api.contract.credential_headers == {header: value}
    assert idempotent_api.contract.credential_scheme == scheme.kind
    method, url, params = idempotent_api.example()
    response = requests.request(method, url, **idempotent_api.request_kwargs(params, key="k"))
    assert response.status_code == 201
    assert idempotent_api.exchanges[0].tenant == credential
    assert requests.post(url, json=params).status_code == 401


def test_portable_tests_run_across_apis_with_other_credentials(pytester):
    pytester.makeconftest(
        """
        from pytest_idempotency import (
            CredentialScheme, Policy, Route, Variant, default_create_handler, register_variant,
        )

        for name, scheme, cred in [
            ("api-key", CredentialScheme("header", "X-API-Key"), "k_1"),
            ("basic", CredentialScheme("basic"), "u:p"),
        ]:
            register_variant(Variant(
                name=name, policy=Policy(),
                routes=(Route("POST /things", default_create_handler("thing", "t")),),
                authenticate=scheme.read, credential_schemes=(scheme,),
                example_credential=cred, example=("POST", "/things", {"n": 1}),
            ), replace=True)
        """
    )
    pytester.makepyfile(
        """
        import uuid
        import pytest, requests

        @pytest.mark.idempotency(variants="all")
        def test_a_retry_is_one_side_effect(idempotent_api):
            method, url, params = idempotent_api.example()
            kwargs = idempotent_api.request_kwargs(params, key=str(uuid.uuid4()))
            for _ in range(2):
                assert requests.request(method, url, **kwargs).status_code < 300
            idempotent_api.assert_exactly_once()
        """
    )
    result = pytester.runpytest("-q", "-k", "api-key or basic or moda or whet or phantom")
    result.assert_outcomes(passed=5)


@pytest.mark.idempotency(variant="moda")
def test_headers_refuses_a_key_that_travels_in_the_body(idempotent_api):
    with pytest.raises(ValueError, match=r"request_kwargs\(params, key=key\)"):
        idempotent_api.headers("k1")
    kwargs = idempotent_api.request_kwargs({"x": 1}, key="k1")
    assert kwargs["json"]["idempotency_key"] == "k1"
    assert "idempotency_key" not in kwargs["headers"]


# -- 4. key limits per route, and faults in the API's own words (Square) -------------------------


def square_error(status, code, message, *, type, request_id) -> Reply:
    return Reply(
        status,
        {
            "errors": [
                {"category": type or "INVALID_REQUEST_ERROR", "code": code, "detail": message}
            ]
        },
    )


SQUARE = Variant(
    name="square-like",
    policy=Policy(
        key_max_length=192,
        key_route_limits=(("POST /v2/payments", 45),),
        invalid_key=Answer(
            400, "VALUE_TOO_LONG", "Invalid idempotency key: {key}", type="INVALID_REQUEST_ERROR"
        ),
    ),
    routes=(
        Route("POST /v2/payments", default_create_handler("payment", "pay")),
        Route("POST /v2/refunds", default_create_handler("refund", "ref")),
    ),
    error_shape=square_error,
    fault_error=Answer(500, "INTERNAL_SERVER_ERROR", "Injected {key}.", type="API_ERROR"),
)


def test_create_payment_takes_keys_of_45_characters_other_routes_192(idempotent_api):
    idempotent_api.reset(SQUARE)
    payments, refunds = (
        idempotent_api.url_for("/v2/payments"),
        idempotent_api.url_for("/v2/refunds"),
    )
    assert (
        requests.post(payments, json={}, headers=idempotent_api.headers("p" * 45)).status_code
        == 201
    )
    too_long = requests.post(payments, json={}, headers=idempotent_api.headers("q" * 46))
    assert too_long.status_code == 400
    assert too_long.json()["errors"][0]["code"] == "VALUE_TOO_LONG"
    assert "at most 45" in too_long.json()["errors"][0]["detail"]
    assert (
        requests.post(refunds, json={}, headers=idempotent_api.headers("r" * 192)).status_code
        == 201
    )
    assert (
        requests.post(refunds, json={}, headers=idempotent_api.headers("s" * 193)).status_code
        == 400
    )
    assert idempotent_api.policy.key_max_length_for("POST", "/v2/payments") == 45


def test_an_injected_fault_answers_in_squares_words(idempotent_api):
    idempotent_api.reset(SQUARE)
    idempotent_api.faults.error_before_commit(500, path="/v2/payments")
    response = requests.post(
        idempotent_api.url_for("/v2/payments"), json={}, headers=idempotent_api.headers("k")
    )
    assert response.status_code == 500
    assert response.json()["errors"][0] == {
        "category": "API_ERROR",
        "code": "INTERNAL_SERVER_ERROR",
        "detail": "Injected error_before fault (500).",
    }
