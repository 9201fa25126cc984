"""Contract files no team writes on purpose: TOML dates, dangling or looping $refs, routes
the OpenAPI reader refuses, nesting deep enough to break a recursive reader. Each is refused
when the file is read, naming its place (a JSON pointer into the file) and the fix (never a
raw exception, never an internal error at every request); what loads is served, over real
sockets and from the standalone server."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
import requests
from hardening_support import Standalone

from pytest_idempotency import DescriptionError, variant_from_contract, variant_from_openapi

ROUTE = '[[routes]]\nroute = "POST /o"\n'


def _write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text if isinstance(text, str) else json.dumps(text))
    return path


def _refused(path) -> DescriptionError:
    with pytest.raises(DescriptionError) as raised:
        variant_from_contract(path)
    return raised.value


def _serve_exit(*args):
    command = [sys.executable, "-m", "pytest_idempotency", "serve", "--port", "0", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr


# -- 1: every field type-checked, TOML dates included -------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[policy]\nttl = 1979-05-27\n" + ROUTE, "/policy/ttl"),
        (ROUTE + "response = { at = 1979-05-27T07:32:00Z }\n", "/routes/0/response/at"),
        (ROUTE + 'schema = { type = "string", default = 07:32:00 }\n', "/routes/0/schema/default"),
        ("[credential]\nexample = 1979-05-27\n" + ROUTE, "/credential/example"),
    ],
)
def test_a_toml_date_is_refused_naming_its_field(tmp_path, text, where):
    error = _refused(_write(tmp_path, text))
    assert error.where == where
    assert "is not a value a contract can hold" in error.problem
    assert "quote it as a string" in error.fix


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[credential]\nscheme = 5\n" + ROUTE, "/credential/scheme"),
        ('[credential]\nheader = ["X-Key"]\n' + ROUTE, "/credential/header"),
        ("[errors.fault]\ncode = 500\n" + ROUTE, "/errors/fault/code"),
        (
            '[errors]\ncontent_type = 7\ntemplate = { m = "{message}" }\n' + ROUTE,
            "/errors/content_type",
        ),
        ("[example]\nroute = 5\n" + ROUTE, "/example/route"),
        ("openapi = 3\n" + ROUTE, "/openapi"),
        (ROUTE + "resource = 5\n", "/routes/0/resource"),
        (ROUTE + "id_prefix = true\n", "/routes/0/id_prefix"),
        ('[[routes]]\nroute = ["POST /o"]\n', "/routes/0/route"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_naming_it(tmp_path, text, where):
    error = _refused(_write(tmp_path, text))
    assert error.where == where
    assert str(error).startswith(f"{tmp_path / 'c.toml'}: at {where}: ")


def test_a_toml_date_makes_serve_exit_2_naming_the_field(tmp_path):
    code, err = _serve_exit("--contract", _write(tmp_path, "[policy]\nttl = 1979-05-27\n" + ROUTE))
    assert code == 2
    assert "at /policy/ttl" in err


# -- 2: $refs resolved at load time -------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"$ref": "#/nope"}, "/routes/0/schema/$ref"),
        ({"properties": {"a": {"$ref": "#/$defs/Missing"}}}, "/routes/0/schema/properties/a/$ref"),
        ({"$ref": "https://example.com/s.json"}, "/routes/0/schema/$ref"),
    ],
)
def test_a_ref_that_points_nowhere_is_refused_at_load(tmp_path, schema, where):
    error = _refused(
        _write(tmp_path, {"routes": [{"route": "POST /o", "schema": schema}]}, "c.json")
    )
    assert error.where == where
    assert "points nowhere" in error.problem
    assert "$defs" in error.fix


def test_a_ref_loop_with_nothing_in_between_is_refused_at_load(tmp_path):
    schema = {"$defs": {"A": {"allOf": [{"$ref": "#/$defs/A"}]}}, "$ref": "#/$defs/A"}
    error = _refused(
        _write(tmp_path, {"routes": [{"route": "POST /o", "schema": schema}]}, "c.json")
    )
    assert error.where == "/routes/0/schema"
    assert "refers to itself without end" in error.problem


def test_an_unknown_schema_dialect_is_refused_at_load(tmp_path):
    schema = {"$schema": "https://example.com/my-draft", "type": "object"}
    error = _refused(
        _write(tmp_path, {"routes": [{"route": "POST /o", "schema": schema}]}, "c.json")
    )
    assert error.where == "/routes/0/schema/$schema"


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_ref_into_defs_is_served(idempotent_api, tmp_path):
    schema = {
        "$defs": {"Sku": {"type": "string", "minLength": 3}},
        "type": "object",
        "required": ["sku"],
        "properties": {"sku": {"$ref": "#/$defs/Sku"}},
    }
    idempotent_api.reset(
        variant_from_contract(
            _write(tmp_path, {"routes": [{"route": "POST /o", "schema": schema}]}, "c.json")
        )
    )
    url = idempotent_api.url_for("/o")
    assert requests.post(url, json={"sku": "tea"}).status_code == 201
    refused = requests.post(url, json={"sku": "t"})
    assert refused.status_code == 400
    assert "sku" in refused.json()["error"]["message"]


# -- 3: routes held to the OpenAPI reader's rules -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (
            '[[routes]]\nroute = "POST /o?x=1"\n',
            "/routes/0/route",
            "'?' cannot appear in a URL path",
        ),
        ('[[routes]]\nroute = "POST /a b"\n', "/routes/0/route", "POST /a b"),
        ('[[routes]]\nroute = "GET /o/{a-b}"\n', "/routes/0/route", "{a-b}"),
        (ROUTE + ROUTE, "/routes/1/route", "is the route at /routes/0 again"),
        (
            '[[routes]]\nroute = "GET /o/{x}"\n[[routes]]\nroute = "GET /o/{y}"\n',
            "/routes/1/route",
            "again",
        ),
        (
            '[credential]\nscheme = "header"\nheader = "X Bad"\n' + ROUTE,
            "/credential/header",
            "X Bad",
        ),
        ('[credential]\nexample = "a\\r\\nX-Evil: 1"\n' + ROUTE, "/credential/example", "CR, LF"),
        (
            '[credential]\nscheme = "basic"\nexample = "no-colon"\n' + ROUTE,
            "/credential/example",
            "HTTP Basic",
        ),
        ('[[routes]]\nroute = "PUT /o"\n', "/routes/0/action", "cannot tell what PUT /o does"),
        ('[[routes]]\nroute = "DELETE /o"\n', "/routes/0/action", 'action = "static"'),
    ],
)
def test_a_route_or_credential_the_openapi_reader_refuses_is_refused(tmp_path, text, where, words):
    error = _refused(_write(tmp_path, text))
    assert error.where == where
    assert words in str(error)


def test_both_readers_refuse_a_query_in_a_path_in_the_same_words(tmp_path):
    contract = _refused(_write(tmp_path, '[[routes]]\nroute = "POST /o?x=1"\n'))
    document = {
        "openapi": "3.1.0",
        "info": {"title": "T", "version": "1"},
        "paths": {"/o?x=1": {"post": {"responses": {"201": {"description": "ok"}}}}},
    }
    with pytest.raises(DescriptionError) as raised:
        variant_from_openapi(_write(tmp_path, document, "api.json"))
    assert contract.problem == raised.value.problem
    assert contract.fix == raised.value.fix


def test_a_put_on_a_collection_that_says_what_it_does_is_served(idempotent_api, tmp_path):
    text = '[[routes]]\nroute = "PUT /settings"\naction = "static"\nresponse = { saved = true }\n'
    idempotent_api.reset(variant_from_contract(_write(tmp_path, text)))
    answer = requests.put(idempotent_api.url_for("/settings"), json={})
    assert (answer.status_code, answer.json()) == (200, {"saved": True})


# -- 4: nesting ---------------------------------------------------------------------------------


def _nested(levels):
    """A contract whose one route's schema nests ``levels`` objects deep (as JSON text)."""
    schema = '{"type": "object", "properties": {"a": ' * levels + "{}" + "}}" * levels
    return '{"routes": [{"route": "POST /o", "schema": ' + schema + "}]}"


def test_a_json_contract_nested_thousands_deep_is_refused_without_recursing(tmp_path):
    text = _nested(3000)
    error = _refused(_write(tmp_path, text, "c.json"))
    assert "more than 256 levels deep" in error.problem


def test_a_toml_contract_nested_thousands_deep_is_refused_without_recursing(tmp_path):
    error = _refused(
        _write(tmp_path, ROUTE + "schema = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n")
    )
    assert "more than 256 levels deep" in error.problem


def test_a_schema_too_deep_to_check_is_refused_at_load_as_the_app_would(tmp_path):
    text = _nested(120)
    error = _refused(_write(tmp_path, text, "c.json"))
    assert error.where == "/routes/0/schema"
    assert error.problem == "the schema of route 'POST /o' nests too deep to check"
    assert error.fix == "flatten it"


def test_a_schema_too_deep_to_check_makes_serve_exit_2(tmp_path):
    text = _nested(120)
    code, err = _serve_exit("--contract", _write(tmp_path, text, "c.json"))
    assert code == 2
    assert "at /routes/0/schema: the schema of route 'POST /o' nests too deep to check" in err


# -- the 2019-09 dialect's unevaluatedProperties, bounded ---------------------------------------

SLOW = "^(a|aa)+$"


def test_a_2019_09_unevaluated_properties_pattern_is_bounded_and_the_server_goes_on(tmp_path):
    schema = {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "type": "object",
        "allOf": [{"patternProperties": {SLOW: {}}}],
        "unevaluatedProperties": False,
    }
    path = _write(tmp_path, {"routes": [{"route": "POST /o", "schema": schema}]}, "c.json")
    target = Standalone("--contract", str(path))
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{target.port}", timeout=60) as client:
            slow = client.post("/o", json={"a" * 64 + "b": 1})
            assert slow.status_code == 400
            assert "backtracks without end" in slow.json()["error"]["message"]
            assert client.post("/o", json={"aa": 1}).status_code == 201  # still serving
            assert client.post("/o", json={"zz": 1}).status_code == 400  # matches no pattern
    finally:
        assert "Traceback" not in target.close()
