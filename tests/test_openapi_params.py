"""What a document says about a request beyond its body, served faithfully: path, query and
header parameters checked against their schemas (400 in the document's error body, the
server still serving), percent-encoded paths matched decoded, and a oneOf's OpenAPI
discriminator choosing the branch. Over real sockets with requests."""

from __future__ import annotations

import json

import pytest
import requests

from pytest_idempotency import DescriptionError, variant_from_openapi

OK = {"200": {"description": "ok"}}
ITEM = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _document(tmp_path, paths, schemas=None, version="3.1.0"):
    data = {"openapi": version, "info": {"title": "T", "version": "1"}, "paths": paths}
    data["components"] = {"schemas": schemas or {}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(data))
    return variant_from_openapi(path)


def _items(tmp_path, *parameters):
    post = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}
    return _document(
        tmp_path,
        {
            "/items": {"post": {**post, "responses": {"201": {"description": "ok"}}}},
            "/items/{id}": {"get": {"parameters": [ITEM, *parameters], "responses": OK}},
        },
    )


@pytest.fixture
def items(idempotent_api, tmp_path):
    idempotent_api.reset(_items(tmp_path))
    return idempotent_api


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
@pytest.mark.parametrize("sent", ["abc", "0", "1.5"])
def test_a_path_parameter_of_the_wrong_type_is_a_400_naming_it(items, sent):
    answer = requests.get(items.url_for(f"/items/{sent}"), headers=items.headers())
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "validation_failed"
    assert "the path parameter 'id'" in error["message"]
    assert [category for category, _ in items.journal.problems] == ["schema"]


def test_a_path_parameter_of_its_type_reaches_the_handler(items):
    answer = requests.get(items.url_for("/items/7"), headers=items.headers())
    assert answer.status_code == 404  # checked, then looked up: nothing is stored
    assert "No items with id '7'" in answer.json()["error"]["message"]


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_required_query_parameter_must_be_sent(idempotent_api, tmp_path):
    page = {"name": "page", "in": "query", "required": True, "schema": {"type": "integer"}}
    idempotent_api.reset(_items(tmp_path, page))
    url = idempotent_api.url_for("/items/7")
    missing = requests.get(url, headers=idempotent_api.headers())
    assert missing.status_code == 400
    assert "the query parameter 'page' is required" in missing.json()["error"]["message"]
    wrong = requests.get(url, params={"page": "two"}, headers=idempotent_api.headers())
    assert wrong.status_code == 400
    assert "'two' is not of type 'integer'" in wrong.json()["error"]["message"]
    sent = requests.get(url, params={"page": 2}, headers=idempotent_api.headers())
    assert sent.status_code == 404  # past the check: the item is not stored


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_repeated_query_parameter_is_an_array_checked_item_by_item(idempotent_api, tmp_path):
    tags = {"type": "array", "items": {"enum": ["red", "blue"]}}
    idempotent_api.reset(_items(tmp_path, {"name": "tag", "in": "query", "schema": tags}))
    url = idempotent_api.url_for("/items/7")
    good = requests.get(
        url, params=[("tag", "red"), ("tag", "blue")], headers=idempotent_api.headers()
    )
    assert good.status_code == 404
    bad = requests.get(
        url, params=[("tag", "red"), ("tag", "green")], headers=idempotent_api.headers()
    )
    assert bad.status_code == 400
    assert "(at 1)" in bad.json()["error"]["message"]


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_required_header_parameter_must_be_sent(idempotent_api, tmp_path):
    version = {
        "name": "X-Api-Version",
        "in": "header",
        "required": True,
        "schema": {"enum": ["2024"]},
    }
    idempotent_api.reset(_items(tmp_path, version))
    url = idempotent_api.url_for("/items/7")
    missing = requests.get(url, headers=idempotent_api.headers())
    assert "the header parameter 'X-Api-Version' is required" in missing.json()["error"]["message"]
    headers = {**idempotent_api.headers(), "X-Api-Version": "2024"}
    assert requests.get(url, headers=headers).status_code == 404


def test_a_bad_parameter_schema_is_refused_at_load(tmp_path):
    bad = {**ITEM, "schema": {"type": "int"}}
    with pytest.raises(DescriptionError) as raised:
        _document(tmp_path, {"/items/{id}": {"get": {"parameters": [bad], "responses": OK}}})
    assert raised.value.where == "/paths/~1items~1{id}/get/parameters/0/schema/type"


def test_a_percent_encoded_segment_matches_its_templated_route(idempotent_api, tmp_path):
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    found = {"description": "ok", "content": {"application/json": {"example": {"found": True}}}}
    get = {"parameters": [name], "responses": {"200": found}, "x-idempotency": {"action": "static"}}
    idempotent_api.reset(_document(tmp_path, {"/my%20files/{name}": {"get": get}}))
    url = idempotent_api.url_for("/my%20files/a%20b")
    answer = requests.get(url, headers=idempotent_api.headers())
    assert (answer.status_code, answer.json()) == (200, {"found": True})  # matched decoded


# -- discriminator ------------------------------------------------------------------------------

PETS = {
    "Cat": {
        "type": "object",
        "properties": {"kind": {"type": "string"}, "meow": {"type": "boolean"}},
    },
    "Dog": {
        "type": "object",
        "properties": {"kind": {"type": "string"}, "bark": {"type": "boolean"}},
    },
    "Pet": {
        "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
        "discriminator": {
            "propertyName": "kind",
            "mapping": {"cat": "#/components/schemas/Cat", "dog": "Dog"},
        },
    },
}


@pytest.fixture(params=["3.0.3", "3.1.0"])
def pets(idempotent_api, tmp_path, request):
    pet = {"$ref": "#/components/schemas/Pet"}
    post = {"requestBody": {"required": True, "content": {"application/json": {"schema": pet}}}}
    paths = {"/pets": {"post": {**post, "responses": {"201": {"description": "ok"}}}}}
    idempotent_api.reset(_document(tmp_path, paths, PETS, version=request.param))
    return idempotent_api


@pytest.mark.parametrize("body", [{"kind": "cat", "meow": True}, {"kind": "dog"}, {"kind": "Cat"}])
def test_the_discriminator_picks_the_branch_of_a_body_that_fits_both(pets, body):
    answer = requests.post(pets.url_for("/pets"), json=body, headers=pets.headers())
    assert answer.status_code == 201, answer.text


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kind": "cat", "meow": 5}, "meow: 5 is not of type 'boolean'"),
        ({"kind": "cow"}, "'cow' is not one of the values of the discriminator 'kind'"),
        ({"meow": True}, "'kind' is a required property"),
    ],
)
def test_a_body_the_discriminator_refuses_is_a_400_saying_why(pets, body, words):
    answer = requests.post(pets.url_for("/pets"), json=body, headers=pets.headers())
    assert answer.status_code == 400
    assert words in answer.json()["error"]["message"]


def test_a_mapping_to_no_schema_is_refused_at_load(tmp_path):
    schemas = {
        **PETS,
        "Pet": {
            **PETS["Pet"],
            "discriminator": {"propertyName": "kind", "mapping": {"cow": "Cow"}},
        },
    }
    pet = {"$ref": "#/components/schemas/Pet"}
    paths = {
        "/pets": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": pet}}},
                "responses": OK,
            }
        }
    }
    with pytest.raises(DescriptionError) as raised:
        _document(tmp_path, paths, schemas)
    assert raised.value.where == "/components/schemas/Pet/discriminator/mapping/cow"
    assert "'#/components/schemas/Cow' points nowhere" in raised.value.problem


def test_the_generated_example_of_a_discriminated_union_names_its_branch(idempotent_api, tmp_path):
    pet = {"$ref": "#/components/schemas/Pet"}
    post = {"requestBody": {"required": True, "content": {"application/json": {"schema": pet}}}}
    paths = {"/pets": {"post": {**post, "responses": {"201": {"description": "ok"}}}}}
    idempotent_api.reset(_document(tmp_path, paths, PETS))
    method, url, body = idempotent_api.example()
    assert body == {"kind": "cat"}
    assert requests.request(method, url, **idempotent_api.request_kwargs(body)).status_code == 201


# -- every Adyen operation's generated values fit its own schemas -------------------------------


def _adyen_operations():
    from openapi_specs import specs_dir

    from pytest_idempotency.openapi.document import Document
    from pytest_idempotency.openapi.operations import operations

    for path in sorted(specs_dir().glob("adyen-*.json")):
        doc = Document(path)
        yield from ((path.name, doc, op) for op in operations(doc, []))


def test_every_adyen_operation_generates_values_its_own_schemas_take():
    from pytest_idempotency import schemas
    from pytest_idempotency.openapi.instances import minimal_instance
    from pytest_idempotency.openapi.operations import json_media
    from pytest_idempotency.openapi.plans import _success, request_media
    from pytest_idempotency.openapi.schema import request_schema, response_schema

    checked, broken = 0, []
    for name, doc, op in _adyen_operations():
        media, _ = request_media(doc, op)
        response, _ = doc.deref(_success(op)[1] or {}, "")
        answer = json_media(response.get("content")) if isinstance(response, dict) else None
        for build, found in ((request_schema, media), (response_schema, answer)):
            if found and "schema" in found:
                checked += 1
                value = minimal_instance(doc, found["schema"])
                problem = schemas.problem(build(doc, found["schema"]), value)
                if problem:
                    broken.append(f"{name} {op.method} {op.template}: {problem}")
    assert checked > 50
    assert broken == []


def test_the_idempotency_key_header_is_left_to_the_keys_own_checks(idempotent_api, tmp_path):
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
    }
    post = {"parameters": [key], "requestBody": {"content": {"application/json": {"schema": {}}}}}
    paths = {"/orders": {"post": {**post, "responses": {"201": {"description": "ok"}}}}}
    idempotent_api.reset(_document(tmp_path, paths))
    url = idempotent_api.url_for("/orders")
    sent = requests.post(url, json={}, headers=idempotent_api.headers("k1"))
    assert sent.status_code == 201
    missing = requests.post(url, json={}, headers=idempotent_api.headers())
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] != "validation_failed"  # the key's own answer


def test_a_form_field_sent_twice_is_an_array_the_schema_takes(idempotent_api, tmp_path):
    """``tags=a&tags=b`` (OpenAPI's ``style: form, explode: true``, what requests sends for a
    list) is the array of both values, so a schema array takes it; it used to keep only the
    last value and be refused."""
    schema = {
        "type": "object",
        "required": ["tags"],
        "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 2}},
    }
    form = {"application/x-www-form-urlencoded": {"schema": schema}}
    created = {"201": {"description": "ok"}}
    paths = {"/tags": {"post": {"requestBody": {"content": form}, "responses": created}}}
    idempotent_api.reset(_document(tmp_path, paths))
    answer = requests.post(
        idempotent_api.url_for("/tags"),
        data={"tags": ["a", "b"]},
        headers=idempotent_api.headers("form-twice"),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["tags"] == ["a", "b"]
    idempotent_api.assert_exactly_once()
