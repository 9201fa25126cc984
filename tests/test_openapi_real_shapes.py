"""Shapes of published documents the reader served wrongly or refused for no reason: OpenAI's
discriminators whose branches fix the tag with an enum, its 2019-09 ``$recursiveRef``, and
``required`` lists naming a field twice; DigitalOcean's operations written as a ``$ref`` with
``x-idempotency`` beside it and its discriminator mappings relative to their own file;
Stripe's singleton ``GET /v1/account``; Box's required fields ``properties`` does not
declare; ``$ref``s inside vendor extensions; a webhook-only document. Each is served over a
real socket, or refused at load time naming its place and the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from jsonschema import Draft201909Validator

from pytest_idempotency import DescriptionError, variant_from_openapi
from pytest_idempotency.schemas import schema_refusal

CREATED = {"201": {"description": "created"}}
OK = {"200": {"description": "ok"}}


def _doc(paths, schemas=None, version="3.1.0", **root):
    data = {"openapi": version, "info": {"title": "T", "version": "1"}, "paths": paths, **root}
    if schemas is not None:
        data["components"] = {"schemas": schemas}
    return data


def _write(tmp_path, data, name="api.json"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _serve(api, path, overlay=None):
    api.reset(variant_from_openapi(path, overlay=overlay))
    return api


def _refused(path, overlay=None) -> DescriptionError:
    with pytest.raises(DescriptionError) as raised:
        variant_from_openapi(path, overlay=overlay)
    return raised.value


def _post(schema, responses=None):
    content = {"application/json": {"schema": schema}}
    return {"post": {"requestBody": {"content": content}, "responses": responses or CREATED}}


def _send(api, path, body):
    return requests.post(api.url_for(path), json=body, headers=api.headers())


# -- #2: a discriminator whose branches fix the tag with an enum ---------------------------------


def _message(role, **more):
    props = {"role": {"type": "string", "enum": [role]}, "content": {"type": "string"}, **more}
    return {"type": "object", "properties": props, "required": ["role", "content"]}


CHAT = {
    "UserMessage": _message("user"),
    "ToolMessage": _message("tool", tool_call_id={"type": "string"}),
    "Note": {"type": "object", "properties": {"role": {"type": "string"}}},
    "Message": {
        "oneOf": [
            {"$ref": "#/components/schemas/UserMessage"},
            {"$ref": "#/components/schemas/ToolMessage"},
            {"$ref": "#/components/schemas/Note"},
        ],
        "discriminator": {"propertyName": "role"},
    },
}
MESSAGES = {
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": {"$ref": "#/components/schemas/Message"},
        }
    },
    "required": ["messages"],
}


@pytest.fixture
def chat(idempotent_api, tmp_path):
    return _serve(idempotent_api, _write(tmp_path, _doc({"/chat": _post(MESSAGES)}, CHAT)))


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_discriminator_value_a_branch_fixes_with_enum_selects_that_branch(chat):
    assert (
        _send(chat, "/chat", {"messages": [{"role": "user", "content": "hi"}]}).status_code == 201
    )
    missing = _send(
        chat, "/chat", {"messages": [{"role": "tool", "content": "x", "tool_call_id": 1}]}
    )
    assert missing.status_code == 400
    assert (
        "messages/0/tool_call_id: 1 is not of type 'string'" in missing.json()["error"]["message"]
    )
    assert _send(chat, "/chat", {"messages": [{"role": "Note"}]}).status_code == 201  # by name
    unknown = _send(chat, "/chat", {"messages": [{"role": "robot", "content": "hi"}]})
    assert unknown.status_code == 400
    assert "not one of the values of the discriminator 'role'" in unknown.json()["error"]["message"]


def test_the_generated_example_of_a_discriminated_body_is_accepted(chat):
    method, path, body = chat.variant.example
    assert body == {"messages": [{"role": "user", "content": "string"}]}
    assert requests.request(method, chat.url_for(path), json=body).status_code == 201


def test_a_discriminator_branch_no_value_can_select_is_refused_at_its_pointer(tmp_path):
    inline = {"type": "object", "properties": {"role": {"type": "string"}}}
    schemas = {**CHAT, "Message": {**CHAT["Message"], "oneOf": [*CHAT["Message"]["oneOf"], inline]}}
    error = _refused(_write(tmp_path, _doc({"/chat": _post(MESSAGES)}, schemas)))
    assert error.where == "/components/schemas/Message/discriminator"
    assert "can select branch 3" in error.problem
    assert "discriminator.mapping" in error.fix


# -- #4: x-idempotency beside an operation written as a $ref -------------------------------------

PLAN_FILE = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}
PLAN_FILE["responses"] = {"200": {"description": "ok"}}


def _ref_operation(tmp_path, **beside):
    _write(tmp_path, PLAN_FILE, "resources/addons/update_plan.json")
    patch = {"$ref": "resources/addons/update_plan.json", **beside}
    return _write(tmp_path, _doc({"/v2/add-ons/{id}/plan": {"patch": patch}}))


def test_x_idempotency_beside_a_ref_operation_is_read(idempotent_api, tmp_path):
    error = _refused(_ref_operation(tmp_path))  # without it: refused, naming this fix
    assert error.where == "/paths/~1v2~1add-ons~1{id}~1plan/patch"
    assert "x-idempotency: {action: static}" in error.fix
    path = _ref_operation(tmp_path, **{"x-idempotency": {"action": "static"}})
    api = _serve(idempotent_api, path)
    answer = requests.patch(api.url_for("/v2/add-ons/a1/plan"), json={}, headers=api.headers())
    assert answer.status_code == 200


def test_an_overlay_adding_x_idempotency_beside_a_ref_operation_is_applied(
    idempotent_api, tmp_path
):
    overlay = {
        "paths": {"/v2/add-ons/{id}/plan": {"patch": {"x-idempotency": {"action": "static"}}}}
    }
    api = _serve(idempotent_api, _ref_operation(tmp_path), _write(tmp_path, overlay, "ov.json"))
    answer = requests.patch(api.url_for("/v2/add-ons/a1/plan"), json={}, headers=api.headers())
    assert answer.status_code == 200


# -- #5: discriminator mappings in a referenced file ---------------------------------------------

RECORD_TYPES = {
    "record_a": {
        "type": "object",
        "properties": {"type": {"type": "string"}, "data": {"type": "string", "format": "ipv4"}},
        "required": ["type", "data"],
    },
    "record_txt": {
        "type": "object",
        "properties": {"type": {"type": "string"}, "data": {"type": "string", "maxLength": 5}},
        "required": ["type", "data"],
    },
    "record": {
        "oneOf": [{"$ref": "#/record_a"}, {"$ref": "#/record_txt"}],
        "discriminator": {
            "propertyName": "type",
            "mapping": {"A": "#/record_a", "TXT": "#/record_txt"},
        },
    },
}
CREATE_RECORD = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "models/record_types.json#/record_a"},
                        {"$ref": "models/record_types.json#/record_txt"},
                    ],
                    "discriminator": {
                        "propertyName": "type",
                        "mapping": {
                            "A": "models/record_types.json#/record_a",
                            "TXT": "models/record_types.json#/record_txt",
                        },
                    },
                }
            }
        }
    },
    "responses": CREATED,
}


@pytest.fixture
def records(idempotent_api, tmp_path):
    _write(tmp_path, RECORD_TYPES, "resources/domains/models/record_types.json")
    _write(tmp_path, CREATE_RECORD, "resources/domains/create_record.json")
    nested = _post({"$ref": "resources/domains/models/record_types.json#/record"})["post"]
    paths = {
        "/v2/records": {"post": {"$ref": "resources/domains/create_record.json"}},
        "/v2/nested": {"post": nested},
    }
    return _serve(idempotent_api, _write(tmp_path, _doc(paths, version="3.0.3")))


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
@pytest.mark.parametrize("path", ["/v2/records", "/v2/nested"])
def test_discriminator_mapping_in_a_referenced_file_is_relative_to_that_file(records, path):
    assert _send(records, path, {"type": "TXT", "data": "hello"}).status_code == 201
    assert _send(records, path, {"type": "A", "data": "127.0.0.1"}).status_code == 201
    too_long = _send(records, path, {"type": "TXT", "data": "127.0.0.1"})
    assert too_long.status_code == 400
    assert "data: '127.0.0.1' is too long" in too_long.json()["error"]["message"]


# -- #6: 2019-09 $recursiveRef, and schemas the validator would refuse ---------------------------

COMPARISON = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "enum": ["eq", "ne"]},
        "key": {"type": "string"},
        "value": {"type": ["string", "number"]},
    },
    "required": ["type", "key", "value"],
}
COMPOUND = {
    "$recursiveAnchor": True,
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "enum": ["and", "or"]},
        "filters": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"$ref": "#/components/schemas/ComparisonFilter"},
                    {"$recursiveRef": "#"},
                ],
                "discriminator": {"propertyName": "type"},
            },
        },
    },
    "required": ["type", "filters"],
}
FILTERS = {"ComparisonFilter": COMPARISON, "CompoundFilter": COMPOUND}
SEARCH = {
    "type": "object",
    "properties": {
        "filters": {
            "oneOf": [
                {"$ref": "#/components/schemas/ComparisonFilter"},
                {"$ref": "#/components/schemas/CompoundFilter"},
            ]
        }
    },
}
EQ = {"type": "eq", "key": "a", "value": "b"}
FILTER_BODIES = [
    {"type": "and", "filters": [EQ]},
    {
        "type": "and",
        "filters": [EQ, {"type": "or", "filters": [{"type": "ne", "key": "c", "value": 1}]}],
    },
    {"type": "and", "filters": [{"type": "or", "filters": [{"type": "and", "filters": [EQ]}]}]},
    {"type": "and", "filters": [{"type": "or", "filters": [{"type": "eq", "key": "c"}]}]},
    {"type": "and", "filters": [{"type": "or", "filters": [{"type": "xor", "filters": []}]}]},
    {"type": "and", "filters": [{"type": "or", "filters": [EQ], "extra": 1}]},
]


def _search_doc(tmp_path):
    return _write(tmp_path, _doc({"/v1/search": _post(SEARCH, OK)}, FILTERS))


def _compound_2019():
    """The same filter as one 2019-09 schema, to validate with jsonschema's own
    implementation of $recursiveRef."""
    text = json.dumps(COMPOUND).replace("#/components/schemas/ComparisonFilter", "#/$defs/cmp")
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        **json.loads(text),
        "$defs": {"cmp": COMPARISON},
    }


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_recursive_ref_validates_nested_filters_as_json_schema_2019_09_does(
    idempotent_api, tmp_path
):
    api = _serve(idempotent_api, _search_doc(tmp_path))
    reference = Draft201909Validator(_compound_2019())
    for body in FILTER_BODIES:
        answer = _send(api, "/v1/search", {"filters": body})
        assert (answer.status_code == 200) == reference.is_valid(body), body
    assert [reference.is_valid(b) for b in FILTER_BODIES] == [True] * 3 + [False] * 3


def test_serve_starts_on_a_document_with_recursive_anchor(tmp_path):
    command = [sys.executable, "-m", "pytest_idempotency", "serve", "--port", "0", "--openapi"]
    proc = subprocess.Popen(
        [*command, str(_search_doc(tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "serving" in line, line
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert "error" not in err


def test_a_recursive_ref_with_no_anchor_around_it_is_refused_at_its_place(tmp_path):
    schema = {"type": "object", "properties": {"next": {"$recursiveRef": "#"}}}
    error = _refused(_write(tmp_path, _doc({"/v1/search": _post(schema, OK)})))
    assert error.where == (
        "/paths/~1v1~1search/post/requestBody/content/application~1json/schema/properties/next"
        "/$recursiveRef"
    )
    assert "$recursiveAnchor: true" in error.fix


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("$dynamicAnchor", True),
        ("$anchor", "1 not a name"),
        ("$id", "https://example.com/a#frag"),
        ("format", 5),
        ("uniqueItems", "yes"),
        ("multipleOf", 0),
        ("minContains", -1),
        ("type", ["string", "string"]),
        ("dependentRequired", {"a": "b"}),
        ("dependencies", {"a": 5}),
        ("$vocabulary", {"https://example.com": "yes"}),
        ("patternProperties", {"([": {}}),
    ],
)
def test_a_schema_the_validator_would_refuse_is_refused_at_load_naming_its_pointer(
    tmp_path, keyword, value
):
    bad = {"type": "object", keyword: value}
    assert schema_refusal(
        "POST /x", {"$schema": "https://json-schema.org/draft/2020-12/schema", **bad}
    )
    schemas = {"Thing": {"type": "object", "properties": {"inner": bad}}}
    error = _refused(
        _write(tmp_path, _doc({"/x": _post({"$ref": "#/components/schemas/Thing"})}, schemas))
    )
    assert error.where.startswith(f"/components/schemas/Thing/properties/inner/{keyword}")
    assert error.fix
    assert "fix the schema" not in error.fix


# -- #8: a singleton GET ------------------------------------------------------------------------

ACCOUNT = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "object": {"type": "string", "enum": ["account"]}},
    "required": ["id", "object"],
}
LIST = {"type": "object", "properties": {"data": {"type": "array", "items": ACCOUNT}}}


def _answer(schema):
    return {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}


def test_a_singleton_get_answers_the_object_not_a_list(idempotent_api, tmp_path):
    paths = {
        "/v1/account": {
            **_post({"type": "object"}, _answer(ACCOUNT)),
            "get": {"responses": _answer(ACCOUNT)},
        },
        "/v1/customers": {
            **_post({"type": "object"}, _answer(ACCOUNT)),
            "get": {"responses": _answer(LIST)},
        },
    }
    api = _serve(idempotent_api, _write(tmp_path, _doc(paths)))
    account = requests.get(api.url_for("/v1/account"), headers=api.headers())
    assert account.status_code == 200
    assert account.json() == {"id": "string", "object": "account"}
    listed = requests.get(api.url_for("/v1/customers"), headers=api.headers())
    assert listed.json() == {"data": []}


# -- #11: required properties that properties does not declare ----------------------------------


def test_a_minimal_instance_has_the_required_properties_properties_does_not_declare(
    idempotent_api, tmp_path
):
    user = {"type": "object", "properties": {"login": {"type": "string"}}, "required": ["id"]}
    ranked = {"type": "object", "additionalProperties": {"type": "integer"}, "required": ["rank"]}
    schema = {
        "type": "object",
        "properties": {"actionable_by": user, "ranked": ranked},
        "required": ["actionable_by", "ranked"],
    }
    api = _serve(idempotent_api, _write(tmp_path, _doc({"/invites": _post(schema)})))
    method, path, body = api.variant.example
    assert body == {"actionable_by": {"id": "string"}, "ranked": {"rank": 0}}
    assert requests.request(method, api.url_for(path), json=body).status_code == 201


# -- #12: vendor extensions, duplicate required names, webhooks, error places -------------------


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_ref_inside_a_vendor_extension_is_not_followed(idempotent_api, tmp_path):
    _write(tmp_path, "# Getting started", "docs/getting-started.md")
    _write(tmp_path, {"type": "string", "maxLength": 3}, "models/code.json")
    topics = [{"title": "Start", "content": {"$ref": "./docs/getting-started.md"}}]
    schema = {"type": "object", "properties": {"x-code": {"$ref": "models/code.json"}}}
    data = _doc({"/things": _post(schema)}, **{"x-topics": topics})
    api = _serve(idempotent_api, _write(tmp_path, data))
    assert _send(api, "/things", {"x-code": "abc"}).status_code == 201
    assert _send(api, "/things", {"x-code": "abcd"}).status_code == 400  # a property, read


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_required_list_naming_a_field_twice_is_read_once(idempotent_api, tmp_path):
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
        "required": ["id", "name", "id", "name"],
    }
    data = _doc({"/things": _post({"$ref": "#/components/schemas/Thing"})}, {"Thing": schema})
    api = _serve(idempotent_api, _write(tmp_path, data))
    assert _send(api, "/things", {"id": "a", "name": "b"}).status_code == 201
    missing = _send(api, "/things", {"id": "a"})
    assert missing.status_code == 400
    assert "'name' is a required property" in missing.json()["error"]["message"]


def test_a_webhook_only_document_is_refused_saying_webhooks_are_not_served(tmp_path):
    data = {"openapi": "3.1.0", "info": {"title": "T", "version": "1"}}
    data["webhooks"] = {"newPet": {"post": {"responses": OK}}}
    error = _refused(_write(tmp_path, data))
    assert error.where == "/paths"
    assert "webhooks" in error.problem
    assert "not serve" in error.problem
    assert "paths" in error.fix


def test_errors_in_referenced_files_are_named_as_file_and_pointer(tmp_path):
    _write(tmp_path, {"id": {"type": "string"}}, "models/props.json")
    _write(tmp_path, {"type": "object", "properties": {"$ref": "props.json"}}, "models/lb.json")
    _write(tmp_path, {"allOf": [{"$ref": "lb.json"}]}, "models/lb_create.json")
    _write(tmp_path, {"loop": {"anyOf": [{"$ref": "#/loop"}]}}, "models/loop.json")
    paths = {
        "/lbs": _post({"$ref": "models/lb_create.json"}),
        "/loops": _post({"$ref": "models/loop.json#/loop"}),
    }
    error = _refused(_write(tmp_path, _doc(paths, version="3.0.3")))
    places = sorted(e.where for e in error.errors)
    assert places == ["models/lb.json#/properties/$ref", "models/loop.json#/loop"]
    assert "file:" not in str(error)


def _fan_out(tmp_path, depth):
    """Components that each use the next one twice: written out, 2**depth copies."""
    schemas = {}
    for level in range(depth):
        below = (
            {"$ref": f"#/components/schemas/C{level + 1}"}
            if level + 1 < depth
            else {"type": "string", "maxLength": 3}
        )
        schemas[f"C{level}"] = {"type": "object", "properties": {"a": below, "b": below}}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/C0"}}}}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "Fan", "version": "1"},
        "paths": {
            "/things": {
                "post": {"requestBody": body, "responses": {"201": {"description": "made"}}}
            }
        },
        "components": {"schemas": schemas},
    }
    path = tmp_path / "fan.json"
    path.write_text(json.dumps(document))
    return variant_from_openapi(path)


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_components_that_fan_out_are_referred_to_not_copied_2_to_the_depth(
    idempotent_api, tmp_path
):
    """40 levels of components each using the next twice: the route's schema keeps each
    component once (it used to be copied 2**40 times over: the server never started)."""
    variant = _fan_out(tmp_path, 40)
    schema = dict(variant.routes[0].schema)
    assert len(json.dumps(schema)) < 20_000
    assert sorted(schema["$defs"]) == sorted(f"C{level}" for level in range(40))  # each once
    idempotent_api.reset(variant)
    deep = {"a": {"b": {"a": {}}}}
    made = requests.post(
        idempotent_api.url_for("/things"), json=deep, headers=idempotent_api.headers("fan-1")
    )
    assert made.status_code == 201, made.text
    wrong = {"a": {"b": {"a": "no object"}}}
    refused = requests.post(
        idempotent_api.url_for("/things"), json=wrong, headers=idempotent_api.headers("fan-2")
    )
    assert refused.status_code == 400
    assert "a/b/a" in refused.text


def test_a_small_fan_out_is_still_copied_in(tmp_path):
    schema = dict(_fan_out(tmp_path, 4).routes[0].schema)
    assert "$defs" not in schema  # copied: a validator that follows no $ref is faster
