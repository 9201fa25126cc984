"""Documents the fake cannot serve are refused at load time, naming the place (a JSON
pointer) and the fix: never a 500 at request time."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_idempotency import DescriptionError, variant_from_openapi

MINIMAL = {
    "openapi": "3.1.0",
    "info": {"title": "T", "version": "1"},
    "paths": {"/things": {"post": {"responses": {"201": {"description": "ok"}}}}},
}


def _write(tmp_path, data, name="api.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def _refused(tmp_path, data, name="api.json") -> DescriptionError:
    with pytest.raises(DescriptionError) as raised:
        variant_from_openapi(_write(tmp_path, data, name))
    return raised.value


def test_a_file_that_is_not_openapi(tmp_path):
    error = _refused(tmp_path, {"name": "a package.json"})
    assert "not an OpenAPI document (no top-level 'openapi' field)" in str(error)
    assert "contract file" in error.fix


@pytest.mark.parametrize(
    ("data", "where", "words"),
    [
        ({"swagger": "2.0", "paths": {}}, "/swagger", "convert it to OpenAPI 3"),
        ({**MINIMAL, "openapi": "4.0.0"}, "/openapi", "OpenAPI 4.0.0 is not supported"),
        ({**MINIMAL, "paths": {}}, "/paths", "the document has no paths"),
    ],
)
def test_unsupported_versions_and_empty_documents(tmp_path, data, where, words):
    error = _refused(tmp_path, data)
    assert error.where == where
    assert words in str(error)


def test_a_dangling_ref_names_its_pointer(tmp_path):
    data = json.loads(json.dumps(MINIMAL))
    data["paths"]["/things"]["post"]["requestBody"] = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}
    }
    error = _refused(tmp_path, data)
    assert error.where == "/paths/~1things/post/requestBody/content/application~1json/schema/$ref"
    assert "'#/components/schemas/Thing' points nowhere" in error.problem
    assert "#/components/schemas/Name" in error.fix


def test_a_ref_to_another_server_asks_for_a_bundled_document(tmp_path):
    data = {**MINIMAL, "components": {"schemas": {"A": {"$ref": "https://x.test/a.json#/A"}}}}
    error = _refused(tmp_path, data)
    assert error.where == "/components/schemas/A/$ref"
    assert "bundle" in error.fix


def test_a_ref_to_a_relative_file_is_followed(tmp_path):
    (tmp_path / "thing.json").write_text(json.dumps({"type": "object", "required": ["name"]}))
    data = json.loads(json.dumps(MINIMAL))
    data["paths"]["/things"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "thing.json"}}},
    }
    variant = variant_from_openapi(_write(tmp_path, data))
    assert variant.routes[0].schema["required"] == ["name"]


def test_an_operation_the_fake_cannot_make_stateful(tmp_path):
    data = json.loads(json.dumps(MINIMAL))
    data["paths"]["/things"]["put"] = {"responses": {"200": {"description": "ok"}}}
    error = _refused(tmp_path, data)
    assert error.where == "/paths/~1things/put"
    assert "cannot make PUT /things stateful" in error.problem
    assert "x-idempotency: {action: static}" in error.fix
    # the fix works
    data["paths"]["/things"]["put"]["x-idempotency"] = {"action": "static"}
    specs = [r.spec for r in variant_from_openapi(_write(tmp_path, data)).routes]
    assert "PUT /things" in specs


@pytest.mark.parametrize(
    ("extension", "where", "words"),
    [
        ({"keyed": True, "colour": "red"}, "/paths/~1things/post/x-idempotency", "colour"),
        ({"action": "frobnicate"}, "/paths/~1things/post/x-idempotency/action", "frobnicate"),
        ("yes", "/paths/~1things/post/x-idempotency", "true, false or an object"),
    ],
)
def test_a_bad_operation_extension(tmp_path, extension, where, words):
    data = json.loads(json.dumps(MINIMAL))
    data["paths"]["/things"]["post"]["x-idempotency"] = extension
    error = _refused(tmp_path, data)
    assert (error.where, words in str(error)) == (where, True)


def test_a_bad_root_extension_names_the_policy_option(tmp_path):
    error = _refused(tmp_path, {**MINIMAL, "x-idempotency": {"ttl": "a day"}})
    assert error.where == "/x-idempotency"
    assert "ttl must be" in error.problem
    error = _refused(tmp_path, {**MINIMAL, "x-idempotency": {"tll": 5}})
    assert "unknown policy option(s) tll" in error.problem


def test_invalid_json_and_yaml(tmp_path):
    assert "not valid JSON" in str(_refused(tmp_path, "{", "api.json"))
    assert "not valid YAML" in str(_refused(tmp_path, "a: [", "api.yaml"))


def test_yaml_without_pyyaml_names_the_extra(tmp_path):
    path = _write(tmp_path, "openapi: 3.1.0\n", "api.yaml")
    script = (
        "import sys\nsys.modules['yaml'] = None\n"
        "from pytest_idempotency import variant_from_openapi, DescriptionError\n"
        "try:\n    variant_from_openapi(sys.argv[1])\n"
        "except DescriptionError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert "pip install pytest-idempotency[yaml]" in done.stdout, done.stderr


def test_an_unknown_policy_keyword_is_refused(tmp_path):
    with pytest.raises(DescriptionError) as raised:
        variant_from_openapi(_write(tmp_path, MINIMAL), colour="red")
    error = raised.value
    assert "unknown policy option(s) colour" in str(error)


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_recursive_schema_is_validated(idempotent_api, tmp_path):
    import requests

    data = json.loads(json.dumps(MINIMAL))
    data["components"] = {
        "schemas": {
            "Node": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                },
            }
        }
    }
    data["paths"]["/things"]["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node"}}},
    }
    idempotent_api.reset(variant_from_openapi(_write(tmp_path, data)))
    url = idempotent_api.url_for("/things")
    tree = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    assert requests.post(url, json=tree).status_code == 201
    broken = {"name": "a", "children": [{"children": []}]}
    assert requests.post(url, json=broken).status_code == 400
