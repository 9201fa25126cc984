"""OpenAPI documents of other styles served as stateful, idempotent fakes: a 3.0 YAML store
(nullable, allOf, path parameters, Bearer, problem+json), a 3.1 JSON API declaring its
contract with a root ``x-idempotency``, and a key that travels in the body."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest
import requests
from openapi_specs import DATA

from pytest_idempotency import variant_from_openapi

PETS = "/v1/pets"


@pytest.fixture(scope="module")
def petstore():
    return variant_from_openapi(DATA / "petstore-3.0.yaml")


@pytest.fixture
def pets(idempotent_api, petstore):
    idempotent_api.reset(petstore)
    return idempotent_api


def _post(api, path, body, key=None, **headers):
    return requests.post(api.url_for(path), json=body, headers={**api.headers(key), **headers})


def test_a_create_answers_the_schema_with_the_request_fields_and_a_generated_id(pets):
    created = _post(pets, PETS, {"name": "Rex", "age": 3}, key="k1")
    assert created.status_code == 201
    pet = created.json()
    # Pet is allOf(NewPet, {id, status}): the minimal instance has status's first enum value
    assert pet == {"name": "Rex", "age": 3, "id": pet["id"], "status": "available"}
    assert pet["id"].startswith("pet_")
    assert pets.exchanges[0].tenant == "bearer:test_token"  # headers() sent Bearer


def test_read_update_list_and_delete_are_stateful(pets):
    pet = _post(pets, PETS, {"name": "Rex", "age": 3}, key="k1").json()
    item = pets.url_for(f"{PETS}/{pet['id']}")
    assert requests.get(item, headers=pets.headers()).json() == pet
    patched = requests.patch(item, json={"tag": None, "name": "Max"}, headers=pets.headers("k2"))
    assert patched.json() == {**pet, "name": "Max", "tag": None}
    listed = requests.get(pets.url_for(PETS), headers=pets.headers()).json()
    assert listed == {"data": [{**pet, "name": "Max", "tag": None}]}
    assert requests.delete(item, headers=pets.headers()).status_code == 204
    gone = requests.get(item, headers=pets.headers())
    assert gone.status_code == 404
    assert gone.headers["Content-Type"] == "application/problem+json"
    assert set(gone.json()) == {"type", "title", "status"}  # the document's Problem
    assert [e.kind for e in pets.side_effects] == ["pets.created", "pets.updated", "pets.deleted"]


def test_a_retried_create_under_one_key_is_a_replay(pets):
    pets.faults.drop_response(path=PETS)
    with pytest.raises(requests.ConnectionError):
        _post(pets, PETS, {"name": "Rex", "age": 3}, key="k1")
    again = _post(pets, PETS, {"name": "Rex", "age": 3}, key="k1")
    assert again.status_code == 201
    pets.assert_replayed()
    pets.assert_exactly_once()


def test_a_sub_collection_under_a_path_parameter_is_keyed_too(pets):
    pet = _post(pets, PETS, {"name": "Rex", "age": 3}, key="k1").json()
    path = f"{PETS}/{pet['id']}/vaccinations"
    first = _post(pets, path, {"vaccine": "rabies"}, key="v1").json()
    assert _post(pets, path, {"vaccine": "rabies"}, key="v1").json() == first
    pets.assert_exactly_once(kind="vaccinations.created")


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_30_schemas_are_converted_nullable_and_boolean_exclusive_minimum(pets):
    assert _post(pets, PETS, {"name": "Rex", "age": 1, "tag": None}, key="a").status_code == 201
    zero = _post(pets, PETS, {"name": "Rex", "age": 0}, key="b")  # exclusiveMinimum: true
    assert zero.status_code == 400
    assert zero.json()["status"] == 400
    assert "age" in zero.json()["title"]
    missing = _post(pets, PETS, {"age": 2}, key="c")
    assert missing.status_code == 400
    assert "'name' is a required property" in missing.json()["title"]


def test_the_key_limit_comes_from_the_parameter_schema(pets):
    assert pets.policy.key_max_length == 40
    assert _post(pets, PETS, {"name": "a", "age": 1}, key="k" * 41).status_code == 400
    pets.assert_side_effects(0)


def test_schemas_are_built_only_when_an_operation_is_used(petstore):
    fresh = variant_from_openapi(DATA / "petstore-3.0.yaml")
    route = next(r for r in fresh.routes if r.spec == f"POST {PETS}")
    assert dict.__len__(route.schema) == 0  # nothing built at load time
    assert route.schema["properties"]["tag"]["type"] == ["string", "null"]  # refs inlined


def test_answers_are_deterministic_across_loads(idempotent_api, petstore):
    bodies = []
    for variant in (petstore, variant_from_openapi(DATA / "petstore-3.0.yaml")):
        idempotent_api.reset(variant)
        bodies.append(_post(idempotent_api, PETS, {"name": "a", "age": 1}, key="k").json())
    assert bodies[0] == bodies[1]


# -- a 3.1 JSON document with its contract in a root x-idempotency --------------------------------


@pytest.fixture
def orders(idempotent_api):
    idempotent_api.reset(variant_from_openapi(DATA / "orders-root-extension.json"))
    return idempotent_api


def test_the_root_extension_states_header_replay_marker_and_mismatch(orders):
    assert orders.headers("r1") == {"X-Orders-Key": "orders_secret", "X-Request-Id": "r1"}
    first = _post(orders, "/orders", {"sku": "tea", "quantity": 2}, key="r1")
    replay = _post(orders, "/orders", {"sku": "tea", "quantity": 2}, key="r1")
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = _post(orders, "/orders", {"sku": "tea", "quantity": 3}, key="r1")
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "request_id_reused"  # Failure's envelope
    assert orders.contract.replay_marker == ("Idempotent-Replayed", "true")
    assert orders.policy.ttl == 3600
    orders.assert_exactly_once()


def test_an_operation_marked_not_keyed_runs_every_time(orders):
    for _ in range(2):
        assert _post(orders, "/jobs", {"idempotency_key": "same"}).status_code == 202
    orders.assert_side_effects(2, kind="jobs.created")


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_31_schemas_are_used_as_they_are(orders):
    assert _post(orders, "/orders", {"sku": "t", "quantity": 1, "note": None}).status_code == 201
    assert _post(orders, "/orders", {"sku": "t", "quantity": 0}).status_code == 400


def test_an_injected_fault_answers_in_the_documents_words(orders):
    orders.faults.error_before_commit(503, path="/orders")
    failed = _post(orders, "/orders", {"sku": "tea", "quantity": 2}, key="f")
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "SERVER_ERROR"


def test_a_missing_credential_is_refused(orders):
    refused = requests.post(orders.url_for("/orders"), json={"sku": "t", "quantity": 1})
    assert refused.status_code == 401
    assert "X-Orders-Key header" in refused.json()["error"]["message"]


# -- a key in the body ------------------------------------------------------------------------------


def test_a_body_property_named_like_a_key_carries_it(idempotent_api):
    idempotent_api.reset(variant_from_openapi(DATA / "tasks-body-key.yaml"))
    assert (idempotent_api.policy.key_header, idempotent_api.policy.key_field) == (
        None,
        "idempotency_key",
    )
    key = str(uuid.uuid4())[:20]
    method, url, params = idempotent_api.example()
    kwargs = idempotent_api.request_kwargs({**params, "title": "a"}, key=key)
    first = requests.request(method, url, **kwargs).json()
    assert first["state"] == "queued"  # the response example
    assert requests.request(method, url, **kwargs).json() == first
    idempotent_api.assert_exactly_once()
    with pytest.raises(ValueError, match="request_kwargs"):
        idempotent_api.headers(key)


def _method(kind: str, field: str) -> dict:
    return {
        "type": "object",
        "properties": {"type": {"const": kind}, field: {"type": "string"}},
        "required": ["type", field],
    }


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_one_of_answer_names_what_the_branch_the_body_picked_needs(idempotent_api, tmp_path):
    branches = [_method("card", "number"), _method("bank", "iban")]
    schema = {"type": "object", "properties": {"method": {"oneOf": branches}}}
    body = {"content": {"application/json": {"schema": schema}}}
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Pay", "version": "1"},
        "paths": {"/payments": {"post": {"requestBody": body, "responses": {"201": {}}}}},
    }
    (tmp_path / "pay.json").write_text(json.dumps(doc))
    idempotent_api.reset(variant_from_openapi(tmp_path / "pay.json"))
    picked = _post(idempotent_api, "/payments", {"method": {"type": "bank"}}, key="k1")
    assert picked.status_code == 400
    assert "'iban' is a required property" in picked.text
    unknown = _post(idempotent_api, "/payments", {"method": {"type": "cash"}}, key="k2")
    assert "is not valid under any of the given schemas" in unknown.text  # no branch picked
    assert (
        _post(
            idempotent_api, "/payments", {"method": {"type": "bank", "iban": "DE1"}}, key="k3"
        ).status_code
        == 201
    )
    assert len(idempotent_api.side_effects) == 1


# -- the marker option ------------------------------------------------------------------------------


def test_the_marker_names_a_document_directly(pytester):
    shutil.copy(DATA / "petstore-3.0.yaml", pytester.path / "api.yaml")
    pytester.makepyfile(
        """
        import pytest, requests

        @pytest.mark.idempotency(openapi="api.yaml", ttl=60)
        def test_create(idempotent_api):
            assert idempotent_api.name == "pet-store"
            assert idempotent_api.policy.ttl == 60
            kwargs = idempotent_api.request_kwargs({"name": "a", "age": 1}, key="k")
            for _ in range(2):
                requests.post(idempotent_api.url_for("/v1/pets"), **kwargs)
            idempotent_api.assert_exactly_once()

        @pytest.mark.idempotency(openapi="missing.yaml")
        def test_missing(idempotent_api):
            pass
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*openapi=...*missing.yaml*cannot read the OpenAPI document*"])
