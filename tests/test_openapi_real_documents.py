"""What real published documents do that small hand-written ones rarely do: YAML dates,
scheme-less server URLs, operations in other files, range response codes, list envelopes,
typed ids, writeOnly fields, suffixed item paths. Each is served over a real socket, or
refused at load time naming its place and the fix (every refusal at once)."""

from __future__ import annotations

import json
import re

import pytest
import requests

from pytest_idempotency import DescriptionError, variant_from_openapi
from pytest_idempotency.openapi.operations import Operation

OK = {"200": {"description": "ok"}}


def _doc(paths, **root):
    return {"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": paths, **root}


def _write(tmp_path, data, name="api.json"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _serve(api, tmp_path, data, name="api.json"):
    api.reset(variant_from_openapi(_write(tmp_path, data, name)))
    return api


def _refused(tmp_path, data, name="api.json") -> DescriptionError:
    with pytest.raises(DescriptionError) as raised:
        variant_from_openapi(_write(tmp_path, data, name))
    return raised.value


def _body_op(schema, responses=None):
    content = {"application/json": {"schema": schema}}
    return {"post": {"requestBody": {"content": content}, "responses": responses or OK}}


# -- YAML --------------------------------------------------------------------------------------

DATES_YAML = """
openapi: 3.0.3
info: {title: Dates, version: "1"}
paths:
  /things:
    post:
      responses:
        '201':
          description: created
          content:
            application/json:
              schema: {type: object, properties: {id: {type: string}, when: {type: string}}}
              example: {id: t1, when: 2024-05-01, at: 2024-05-01T10:00:00Z}
"""


def test_yaml_dates_in_examples_are_answered_as_the_strings_written(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, DATES_YAML, "dates.yaml")
    answer = requests.post(api.url_for("/things"), json={})
    assert answer.status_code == 201
    assert answer.json()["when"] == "2024-05-01"
    assert answer.json()["at"] == "2024-05-01T10:00:00Z"


def test_yaml_is_read_with_the_c_loader_when_libyaml_is_there():
    yaml = pytest.importorskip("yaml")
    from pytest_idempotency.openapi.document import _yaml_loader

    if yaml.__with_libyaml__:
        assert issubclass(_yaml_loader(), yaml.CSafeLoader)
    assert yaml.load("d: 2024-05-01", Loader=_yaml_loader()) == {"d": "2024-05-01"}


# -- invalid schemas ---------------------------------------------------------------------------

_AT = "/paths/~1a/post/requestBody/content/application~1json/schema"


@pytest.mark.parametrize(
    ("schema", "where", "fix"),
    [
        (
            {"type": "object", "properties": {"n": {"type": "string", "required": True}}},
            _AT + "/properties/n/required",
            "required: [name]",
        ),
        ({"type": "obj"}, _AT + "/type", "use one of array, boolean"),
        (
            {"properties": {"n": {"pattern": "(unclosed"}}},
            _AT + "/properties/n/pattern",
            "regular expression",
        ),
    ],
)
def test_an_invalid_schema_is_refused_at_load_naming_its_pointer(tmp_path, schema, where, fix):
    error = _refused(tmp_path, _doc({"/a": _body_op(schema)}))
    assert error.where == where
    assert fix in error.fix


def test_an_invalid_component_schema_is_named_where_it_is_defined(tmp_path):
    data = _doc(
        {"/a": _body_op({"$ref": "#/components/schemas/A"})},
        components={"schemas": {"A": {"type": "object", "required": "name"}}},
    )
    assert _refused(tmp_path, data).where == "/components/schemas/A/required"


# -- servers and paths -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["api.example.com/v1", "localhost:8080/v1/", "v1"])
def test_a_scheme_less_server_url_is_read_as_host_and_path(idempotent_api, tmp_path, url):
    api = _serve(
        idempotent_api, tmp_path, _doc({"/a": {"get": {"responses": OK}}}, servers=[{"url": url}])
    )
    assert requests.get(api.url_for("/v1/a")).status_code == 200


def test_a_server_url_placeholder_that_is_not_a_variable_is_refused(tmp_path):
    error = _refused(
        tmp_path, _doc({"/a": {"get": {"responses": OK}}}, servers=[{"url": "{{baseUrl}}/v1"}])
    )
    assert error.where == "/servers/0/url"
    assert "servers[0].variables" in error.fix


@pytest.mark.parametrize(
    ("template", "route"),
    [
        ("/d/{a-b}/{a_b}/info", "/d/{a_b}/{a_b_2}/info"),
        ("/x/{a_b}/{a_b_2}/{a-b}/info", "/x/{a_b}/{a_b_2}/{a_b_3}/info"),
        ("/x/{a_b}/{a_b_3}/{a-b}/{a.b}/info", "/x/{a_b}/{a_b_3}/{a_b_2}/{a_b_4}/info"),
    ],
)
def test_path_parameters_that_sanitise_alike_get_distinct_names(
    idempotent_api, tmp_path, template, route
):
    assert Operation("GET", template, "", {}, []).route_path("") == route
    ok = {"get": {"responses": OK}}
    api = _serve(idempotent_api, tmp_path, _doc({"/health": ok, template: ok}))
    assert requests.get(api.url_for("/health")).status_code == 200
    concrete = re.sub(r"\{[^}]+\}", "v", template)
    assert requests.get(api.url_for(concrete)).status_code == 200


def test_a_ref_with_a_non_number_array_index_is_refused_naming_it(tmp_path):
    op = {"parameters": [{"$ref": "#/paths/~1a/post/parameters/x"}], "responses": OK}
    error = _refused(tmp_path, _doc({"/a": {"post": op}}))
    assert error.where == "/paths/~1a/post/parameters/0/$ref"
    assert "'x' is not an index" in error.problem
    assert "from 0" in error.fix


# -- operations --------------------------------------------------------------------------------


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)  # one body is refused on purpose
def test_an_operation_given_as_a_ref_to_a_file_is_followed(idempotent_api, tmp_path):
    key = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    _write(tmp_path, key, "shared/key.json")  # referenced from the operation's own file
    created = {"schema": {"type": "object"}, "example": {"ssh_key": {"id": 512190}}}
    operation = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "../shared/key.json"}}},
        },
        "responses": {"201": {"description": "ok", "content": {"application/json": created}}},
    }
    _write(tmp_path, operation, "ops/keys_create.json")
    data = _doc({"/v2/account/keys": {"post": {"$ref": "ops/keys_create.json"}}})
    api = _serve(idempotent_api, tmp_path, data)
    assert requests.post(api.url_for("/v2/account/keys"), json={}).status_code == 400
    answer = requests.post(api.url_for("/v2/account/keys"), json={"name": "k"})
    assert answer.status_code == 201
    assert answer.json()["ssh_key"] == {"id": 512190}


def test_an_operation_or_path_item_that_is_not_an_object_is_refused(tmp_path):
    error = _refused(tmp_path, _doc({"/a": {"post": "see createA"}, "/b": ["get"]}))
    assert {e.where for e in error.errors} == {"/paths/~1a/post", "/paths/~1b"}
    assert "an operation must be an object" in str(error)
    assert "a path item must be an object" in str(error)


def test_every_refusal_is_listed_at_once(tmp_path):
    paths = {f"/t{i}": {"put": {"responses": OK}} for i in range(60)}
    error = _refused(tmp_path, _doc(paths))
    assert len(error.errors) == 60
    assert "60 places the fake cannot serve" in error.problem
    assert "/paths/~1t49/put" in error.problem
    assert "/paths/~1t50/put" not in error.problem
    assert "and 10 more" in error.problem
    assert "x-idempotency: {action: static}" in error.fix


def test_a_2XX_range_response_is_the_success_answer(idempotent_api, tmp_path):
    media = {"schema": {"type": "object"}, "example": {"count": 42}}
    responses = {"2XX": {"description": "ok", "content": {"application/json": media}}}
    api = _serve(idempotent_api, tmp_path, _doc({"/stats": {"get": {"responses": responses}}}))
    answer = requests.get(api.url_for("/stats"))
    assert (answer.status_code, answer.json()) == (200, {"count": 42})


# -- answers -----------------------------------------------------------------------------------


def _json(schema, code="200"):
    media = {"application/json": {"schema": schema}}
    return {code: {"description": "ok", "content": media}}


THING = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}


def test_a_list_answer_keeps_the_envelopes_other_fields(idempotent_api, tmp_path):
    listing = {
        "type": "object",
        "required": ["object", "data", "first_id", "last_id", "has_more"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": THING},
            "first_id": {"type": "string"},
            "last_id": {"type": "string"},
            "has_more": {"type": "boolean"},
        },
    }
    things = {"post": {"responses": _json(THING, "201")}, "get": {"responses": _json(listing)}}
    api = _serve(idempotent_api, tmp_path, _doc({"/things": things}))
    made = [requests.post(api.url_for("/things")).json() for _ in range(2)]
    body = requests.get(api.url_for("/things")).json()
    assert body == {
        "object": "list",
        "data": made,
        "first_id": made[0]["id"],
        "last_id": made[1]["id"],
        "has_more": False,
    }


def _created_id(api, tmp_path, id_schema):
    schema = {"type": "object", "required": ["id"], "properties": {"id": id_schema}}
    _serve(api, tmp_path, _doc({"/pets": {"post": {"responses": _json(schema, "201")}}}))
    return [requests.post(api.url_for("/pets")).json()["id"] for _ in range(2)]


def test_an_integer_id_is_a_counter(idempotent_api, tmp_path):
    first, second = _created_id(idempotent_api, tmp_path, {"type": "integer", "format": "int64"})
    assert isinstance(first, int)
    assert second == first + 1


def test_a_patterned_id_fits_its_pattern_and_length(idempotent_api, tmp_path):
    sid = {"type": "string", "pattern": "^PT[0-9a-f]{32}$", "minLength": 34, "maxLength": 34}
    ids = _created_id(idempotent_api, tmp_path, sid)
    assert all(re.fullmatch(r"PT[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]


def test_a_created_integer_id_reads_back_from_its_item_path(idempotent_api, tmp_path):
    pet = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
    item = {"parameters": [{"name": "id", "in": "path", "required": True}]}
    paths = {
        "/pets": {"post": _body_op(pet, _json(pet, "201"))["post"]},
        "/pets/{id}": {**item, "get": {"responses": _json(pet)}},
    }
    api = _serve(idempotent_api, tmp_path, _doc(paths))
    made = requests.post(api.url_for("/pets"), json={"name": "rex"}).json()
    assert requests.get(api.url_for(f"/pets/{made['id']}")).json() == made


def test_a_write_only_property_is_never_answered(idempotent_api, tmp_path):
    user = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "readOnly": True},
            "name": {"type": "string"},
            "password": {"type": "string", "writeOnly": True},
        },
    }
    item = {"parameters": [{"name": "id", "in": "path", "required": True}]}
    paths = {
        "/users": {"post": _body_op(user, _json(user, "201"))["post"]},
        "/users/{id}": {
            **item,
            "get": {"responses": _json(user)},
            "patch": {**_body_op(user)["post"], "responses": _json(user)},
        },
    }
    api = _serve(idempotent_api, tmp_path, _doc(paths))
    made = requests.post(api.url_for("/users"), json={"name": "ann", "password": "hunter2"})
    url = api.url_for(f"/users/{made.json()['id']}")
    updated = requests.patch(url, json={"password": "s3cret"})
    for answer in (made, updated, requests.get(url)):
        assert "password" not in answer.json()
        assert answer.json()["name"] == "ann"


def test_an_item_path_with_a_suffix_is_read_updated_and_deleted(idempotent_api, tmp_path):
    msg = {"type": "object", "properties": {"sid": {"type": "string"}, "body": {"type": "string"}}}
    item = {"parameters": [{"name": "Sid", "in": "path", "required": True}]}
    paths = {
        "/Messages.json": {"post": _body_op(msg, _json(msg, "201"))["post"]},
        "/Messages/{Sid}.json": {
            **item,
            "get": {"responses": _json(msg)},
            "post": {**_body_op(msg)["post"], "responses": _json(msg)},
            "delete": {"responses": {"204": {"description": "gone"}}},
        },
    }
    api = _serve(idempotent_api, tmp_path, _doc(paths))
    sid = requests.post(api.url_for("/Messages.json"), json={"body": "hi"}).json()["sid"]
    assert sid.startswith("message_")
    url = api.url_for(f"/Messages/{sid}.json")
    assert requests.get(url).json() == {"sid": sid, "body": "hi"}  # as created, no other id
    assert requests.post(url, json={"body": "bye"}).json()["body"] == "bye"
    assert requests.delete(url).status_code == 204
    assert requests.get(url).status_code == 404


# -- form bodies -------------------------------------------------------------------------------

FORM_DOC = _doc(
    {
        "/messages": {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["To", "Body"],
                                "properties": {
                                    "To": {"type": "string"},
                                    "Body": {"type": "string"},
                                    "Count": {"type": "integer"},
                                    "Urgent": {"type": "boolean"},
                                },
                            }
                        }
                    },
                },
                "responses": _json(
                    {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "To": {"type": "string"},
                            "Body": {"type": "string"},
                        },
                    },
                    "201",
                ),
            }
        }
    }
)


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)  # bad forms are sent on purpose
def test_a_form_body_is_validated_and_its_fields_copied_into_the_answer(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, FORM_DOC)
    url = api.url_for("/messages")
    sent = {"To": "+15550001", "Body": "Hi", "Count": "5", "Urgent": "true"}
    made = requests.post(url, data=sent)
    assert made.status_code == 201
    assert made.json() == {"id": made.json()["id"], "To": "+15550001", "Body": "Hi"}
    assert requests.post(url, data={"Count": "5"}).status_code == 400  # To, Body missing
    assert requests.post(url, data={**sent, "Count": "many"}).status_code == 400


def test_request_kwargs_send_a_form_when_the_document_takes_forms(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, FORM_DOC)
    kwargs = api.request_kwargs({"To": "+15550001", "Body": "Hi"})
    assert kwargs["data"] == {"To": "+15550001", "Body": "Hi"}
    assert requests.post(api.url_for("/messages"), **kwargs).json()["Body"] == "Hi"


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)  # one body is refused on purpose
def test_the_error_body_of_operations_in_other_files_is_used(idempotent_api, tmp_path):
    problem = {
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"type": "string"}},
    }
    operation = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": THING}}},
        "responses": {**_json(THING, "201"), **_json(problem, "400")},
    }
    _write(tmp_path, operation, "ops/create.json")
    api = _serve(idempotent_api, tmp_path, _doc({"/things": {"post": {"$ref": "ops/create.json"}}}))
    refused = requests.post(api.url_for("/things"), json={})
    assert refused.status_code == 400
    assert "'id' is a required property" in refused.json()["detail"]


def test_a_ref_in_place_of_the_properties_object_is_refused(tmp_path):
    error = _refused(tmp_path, _doc({"/a": _body_op({"properties": {"$ref": "#/x"}})}, x={}))
    assert error.where == _AT + "/properties/$ref"
    assert "allOf" in error.fix


def test_a_file_referenced_many_times_is_read_once(tmp_path, monkeypatch):
    from pytest_idempotency.openapi import document

    _write(tmp_path, {"A": THING, "B": THING, "C": THING}, "models.json")
    paths = {f"/{n}": _body_op({"$ref": f"models.json#/{n}"}) for n in "ABC"}
    reads = []
    real = document.read_data_file
    monkeypatch.setattr(document, "read_data_file", lambda p, w: reads.append(p) or real(p, w))
    variant_from_openapi(_write(tmp_path, _doc(paths)))
    assert [p.name for p in reads] == ["api.json", "models.json"]


# -- uploads -----------------------------------------------------------------------------------

_CREATED = {
    "201": {
        "description": "ok",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"id": {"type": "string"}}}
            }
        },
    }
}
UPLOADS = _doc(
    {
        "/uploads": {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {"file": {"type": "string", "format": "binary"}},
                            }
                        }
                    },
                },
                "responses": _CREATED,
            }
        },
        "/blobs": {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {"application/octet-stream": {"schema": {"type": "string"}}},
                },
                "responses": _CREATED,
            }
        },
    },
    **{"x-idempotency": {"keyed_routes": ["POST /blobs", "POST /uploads"]}},
)


def test_a_declared_upload_is_taken_as_bytes_and_replayed_by_its_bytes(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, UPLOADS)
    auth = api.headers()
    upload = requests.post(
        api.url_for("/uploads"), files={"file": ("a.txt", b"hello")}, headers=auth, timeout=10
    )
    assert upload.status_code == 201, upload.text

    def blob(data, key):
        headers = {**auth, "Content-Type": "application/octet-stream", "Idempotency-Key": key}
        return requests.post(api.url_for("/blobs"), data=data, headers=headers, timeout=10)

    first, again = blob(b"\x00\x01", "k1"), blob(b"\x00\x01", "k1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()  # a replay of the same bytes
    other = blob(b"\x00\x02", "k1")
    assert other.status_code == 409  # other bytes under the same key
    assert len(api.side_effects) == 2
    assert api.problems() == []


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)  # the refusal is the point
def test_a_body_without_the_routes_upload_content_type_is_read_as_json(idempotent_api, tmp_path):
    api = _serve(idempotent_api, tmp_path, UPLOADS)
    answer = requests.post(
        api.url_for("/blobs"), data=b"not json", headers=api.headers(), timeout=10
    )
    assert answer.status_code == 400  # no Content-Type of the route's: read as JSON, refused
    assert "not valid JSON" in answer.text


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)  # the refusal of 0 is the point
def test_a_31_document_that_kept_the_boolean_exclusive_minimum_is_read_as_30_reads_it(
    idempotent_api, tmp_path
):
    schema = {
        "type": "object",
        "properties": {"rate": {"type": "number", "minimum": 0, "exclusiveMinimum": True}},
    }
    document = {**_doc({"/things": _body_op(schema, _CREATED)}), "openapi": "3.1.0"}
    api = _serve(idempotent_api, tmp_path, document)

    def create(rate):
        return requests.post(
            api.url_for("/things"), json={"rate": rate}, headers=api.headers(), timeout=10
        )

    assert create(0.5).status_code == 201
    refused = create(0)
    assert refused.status_code == 400  # 0 is not above the exclusive minimum
    assert "rate" in refused.text
