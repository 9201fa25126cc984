"""Each operation of an OpenAPI document asks for the credentials its own ``security`` names
(else the root's), read the OpenAPI way: alternatives in order, every scheme of one alternative,
``[]`` or ``{}`` for anyone; API keys in a header, the query or a cookie; a scheme the fake
cannot check (mutual TLS) never refuses a client. The fake must not refuse a call the real API
takes, nor take one it refuses."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from hardening_support import Standalone, clean_stderr
from openapi_specs import spec

from pytest_idempotency import variant_from_openapi

DOC = {
    "openapi": "3.1.0",
    "info": {"title": "Shop", "version": "1"},
    "security": [{"ApiKey": []}],
    "components": {
        "securitySchemes": {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "ClientKey": {"type": "apiKey", "in": "query", "name": "clientKey"},
            "Session": {"type": "apiKey", "in": "cookie", "name": "session"},
            "Basic": {"type": "http", "scheme": "basic"},
            "Mtls": {"type": "mutualTLS"},
        }
    },
    "paths": {
        "/orders": {"post": {"operationId": "createOrder", "responses": {"201": {}}}},
        "/health": {"get": {"security": [], "responses": {"200": {}}}},
        "/tokens": {"post": {"security": [{}, {"ApiKey": []}], "responses": {"201": {}}}},
        "/grants": {
            "post": {
                "security": [{"ClientKey": []}, {"Basic": []}],
                "parameters": [
                    {"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}}
                ],
                "responses": {"201": {}},
            }
        },
        "/carts": {"post": {"security": [{"ApiKey": [], "Session": []}], "responses": {"201": {}}}},
        "/devices": {"post": {"security": [{"Mtls": []}], "responses": {"201": {}}}},
        "/legacy": {"post": {"security": [{"Undeclared": []}], "responses": {"201": {}}}},
    },
}


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("shop") / "shop.json"
    path.write_text(json.dumps(DOC))
    return path


@pytest.fixture
def shop(idempotent_api, shop_file):
    idempotent_api.reset(variant_from_openapi(shop_file))
    return idempotent_api


def _post(api, path, **kwargs):
    return requests.post(api.url_for(path), json={}, **kwargs)


def _basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()}


def test_an_operation_without_its_own_security_asks_for_the_roots(shop):
    assert _post(shop, "/orders").status_code == 401
    assert _post(shop, "/orders", headers={"X-API-Key": "k"}).status_code == 201
    assert shop.exchanges[-1].tenant == "header:k"


def test_an_empty_security_list_lets_anyone_call_the_operation(shop):
    assert requests.get(shop.url_for("/health")).status_code == 200
    assert shop.exchanges[-1].tenant == ""


def test_an_empty_alternative_makes_the_credential_optional(shop):
    assert _post(shop, "/tokens").status_code == 201
    assert shop.exchanges[-1].tenant == ""
    assert _post(shop, "/tokens", headers={"X-API-Key": "k"}).status_code == 201
    assert shop.exchanges[-1].tenant == "header:k"  # sent anyway: it still names the tenant


def test_an_api_key_in_the_query_is_read_from_the_query(shop):
    assert _post(shop, "/grants", params={"clientKey": "ck"}).status_code == 201
    assert shop.exchanges[-1].tenant == "query:ck"
    assert _post(shop, "/grants", headers=_basic("u")).status_code == 201  # the other way
    refused = _post(shop, "/grants", headers={"X-API-Key": "k"})  # not one of this route's
    assert refused.status_code == 401
    assert "clientKey query parameter or HTTP Basic" in refused.text


def test_every_scheme_of_one_alternative_must_be_sent(shop):
    assert _post(shop, "/carts", headers={"X-API-Key": "k"}).status_code == 401
    both = _post(shop, "/carts", headers={"X-API-Key": "k"}, cookies={"session": "s1"})
    assert both.status_code == 201
    assert shop.exchanges[-1].tenant == "header:k"
    refused = _post(shop, "/carts", cookies={"session": "s1"})
    assert refused.status_code == 401
    assert "the X-API-Key header and the session cookie" in refused.text


def test_a_scheme_the_fake_cannot_check_never_refuses_a_client(shop):
    assert _post(shop, "/devices").status_code == 201


def test_a_requirement_naming_an_undeclared_scheme_never_refuses_a_client(shop):
    assert _post(shop, "/legacy").status_code == 201


def test_a_credential_a_route_does_not_take_is_refused_before_any_side_effect(shop):
    assert _post(shop, "/orders", params={"clientKey": "ck"}).status_code == 401
    assert shop.side_effects == []


def test_tenants_scope_keys_per_credential_on_a_route_with_alternatives(shop):
    query_key = {"params": {"clientKey": "a"}, "headers": {"Idempotency-Key": "k1"}}
    first = _post(shop, "/grants", **query_key)
    other = _post(shop, "/grants", headers={**_basic("b"), "Idempotency-Key": "k1"})
    again = _post(shop, "/grants", **query_key)
    assert first.status_code == other.status_code == again.status_code == 201
    assert [(e.tenant, e.decision) for e in shop.exchanges] == [
        ("query:a", "new"),
        ("basic:b:pw", "new"),  # another tenant: the same key is another record
        ("query:a", "replayed"),
    ]
    assert again.content == first.content


def test_a_contract_files_credential_replaces_the_documents_on_every_route(
    idempotent_api, shop_file, tmp_path
):
    from pytest_idempotency import variant_from_contract

    contract = tmp_path / "shop.toml"
    contract.write_text(f'openapi = "{shop_file.as_posix()}"\n[credential]\nscheme = "bearer"\n')
    idempotent_api.reset(variant_from_contract(contract))
    health = idempotent_api.url_for("/health")
    assert requests.get(health).status_code == 401  # one bearer check on every route now
    assert requests.get(health, headers={"Authorization": "Bearer t"}).status_code == 200


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)  # empty bodies: only auth matters
def test_adyen_transfers_takes_its_client_key_in_the_query(idempotent_api):
    idempotent_api.reset(variant_from_openapi(spec("adyen-transfers-v4.json")))
    grants = idempotent_api.url_for("/btl/v4/grants")
    assert requests.post(grants, json={}, params={"clientKey": "test_ck"}).status_code != 401
    assert requests.post(grants, json={}).status_code == 401


def test_the_standalone_server_reads_each_operations_security(shop_file):
    server = Standalone("--openapi", str(shop_file))
    try:
        url = f"http://127.0.0.1:{server.port}"
        assert requests.get(url + "/health", timeout=10).status_code == 200
        assert requests.post(url + "/orders", json={}, timeout=10).status_code == 401
        query = requests.post(url + "/grants", json={}, params={"clientKey": "c"}, timeout=10)
        assert query.status_code == 201
    finally:
        err = server.close()
    assert clean_stderr(err) == []


def test_an_operation_given_as_a_ref_names_its_schemes_too(tmp_path):
    """The schemes the helpers send are those the operations as read name, those given as a
    ``$ref`` to another file included."""
    (tmp_path / "ops.json").write_text(
        json.dumps({"read": {"security": [{"Bearer": []}], "responses": {"200": {}}}})
    )
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "Refs", "version": "1"},
        "components": {
            "securitySchemes": {
                "Bearer": {"type": "http", "scheme": "bearer"},
                "Key": {"type": "apiKey", "in": "header", "name": "X-Key"},
                "Unused": {"type": "http", "scheme": "basic"},
            }
        },
        "paths": {
            "/a": {"get": {"$ref": "ops.json#/read"}},
            "/b": {"get": {"security": [{"Key": []}], "responses": {"200": {}}}},
        },
    }
    path = tmp_path / "api.json"
    path.write_text(json.dumps(doc))
    kinds = {(s.kind, s.header) for s in variant_from_openapi(path).credential_schemes}
    assert kinds == {("bearer", "Authorization"), ("header", "X-Key")}
