"""Documents no generator writes but a reader meets: alias bombs, special files, deep nesting,
malformed structures and values the fake could not build. Each is refused at load time with a
DescriptionError naming its place and the fix (never a traceback, a hang or a request-time
error); `serve` exits 2 saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from pytest_idempotency import DescriptionError, variant_from_openapi
from pytest_idempotency.openapi.errors import pointer

OK = {"200": {"description": "ok"}}
HEAD = "openapi: 3.1.0\ninfo: {title: T, version: '1'}\npaths:\n  /a: {get: {responses: {'200': {description: x}}}}\n"


def _doc(paths=None, schemas=None, **root):
    thing = {"$ref": "#/components/schemas/Thing"}
    paths = paths or {
        "/things": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": thing}}},
                "responses": {
                    "201": {"description": "ok", "content": {"application/json": {"schema": thing}}}
                },
            }
        }
    }
    schemas = schemas or {"Thing": {"type": "object", "properties": {"id": {"type": "string"}}}}
    data = {"openapi": "3.1.0", "info": {"title": "T", "version": "1"}, "paths": paths}
    return {**data, "components": {"schemas": schemas}, **root}


def _write(tmp_path, data, name="api.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _refused(path) -> DescriptionError:
    with pytest.raises(DescriptionError) as raised:
        variant_from_openapi(path)
    return raised.value


def _response(schema, **media):
    content = {"application/json": {"schema": schema, **media}}
    return {"/things": {"post": {"responses": {"201": {"description": "ok", "content": content}}}}}


def _serve_exit(path):
    command = [sys.executable, "-m", "pytest_idempotency", "serve", "--port", "0", "--openapi"]
    done = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr


# -- A: YAML aliases ---------------------------------------------------------------------------


def _bomb(levels):
    text = HEAD + "a0: &a0 [" + ",".join(["x"] * 10) + "]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


def test_a_yaml_alias_bomb_is_refused_without_expanding_it(tmp_path):
    error = _refused(_write(tmp_path, _bomb(10), "api.yaml"))  # 10**10 values if expanded
    assert "YAML aliases" in error.problem
    assert error.where.startswith("/a9")


def test_modest_yaml_aliases_load(tmp_path):
    variant_from_openapi(_write(tmp_path, _bomb(4), "api.yaml"))


def test_a_yaml_alias_bomb_makes_serve_exit_2(tmp_path):
    code, err = _serve_exit(_write(tmp_path, _bomb(10), "api.yaml"))
    assert code == 2
    assert "YAML aliases" in err


def test_a_node_that_contains_itself_is_refused(tmp_path):
    error = _refused(_write(tmp_path, HEAD + "x: &x [*x]\n", "api.yaml"))
    assert "contain itself" in error.problem


# -- B: files behind $ref ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "said"), [("/dev/zero", "not a regular file"), (".", "a directory")]
)
def test_a_ref_to_a_special_file_is_refused_saying_why(tmp_path, target, said):
    doc = _doc(schemas={"Thing": {"$ref": target}})
    error = _refused(_write(tmp_path, doc))
    assert error.where == "/components/schemas/Thing/$ref"
    assert said in error.problem


@pytest.mark.parametrize("name", ["secrets.env", "passwd", "notes.txt"])
def test_a_ref_to_a_file_that_is_no_document_is_refused_unread(tmp_path, name):
    (tmp_path / name).write_text("TOKEN=sk_live_do_not_quote\n")
    error = _refused(_write(tmp_path, _doc(schemas={"Thing": {"$ref": name}})))
    assert error.where == "/components/schemas/Thing/$ref"
    assert "only a .json, .yaml or .yml file" in error.problem
    assert "sk_live_do_not_quote" not in str(error)


def test_a_ref_to_a_document_file_in_another_folder_is_followed(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "api").mkdir()
    thing = {"type": "object", "properties": {"sku": {"type": "string", "maxLength": 9}}}
    (tmp_path / "common" / "Thing.JSON").write_text(json.dumps(thing))  # any case of .json
    doc = _doc(schemas={"Thing": {"$ref": "../common/Thing.JSON"}})
    (route,) = variant_from_openapi(_write(tmp_path / "api", doc)).routes
    assert json.loads(json.dumps(dict(route.schema)))["properties"]["sku"]["maxLength"] == 9


def test_a_ref_to_a_fifo_is_refused_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "pipe.json")
    error = _refused(_write(tmp_path, _doc(schemas={"Thing": {"$ref": "pipe.json"}})))
    assert "not a regular file" in error.problem


def test_a_ref_to_a_file_that_is_not_utf8_says_so(tmp_path):
    (tmp_path / "latin.json").write_bytes(b'{"Thing": {"description": "caf\xe9"}}')
    error = _refused(_write(tmp_path, _doc(schemas={"Thing": {"$ref": "latin.json#/Thing"}})))
    assert "utf-8" in error.problem
    assert "latin.json" in error.problem


def test_a_ref_to_dev_zero_makes_serve_exit_2(tmp_path):
    code, err = _serve_exit(_write(tmp_path, _doc(schemas={"Thing": {"$ref": "/dev/zero"}})))
    assert code == 2
    assert "not a regular file" in err


def test_a_json_document_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "api.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_doc()).encode())
    variant_from_openapi(path)


# -- C: nesting --------------------------------------------------------------------------------


def test_a_document_nested_200000_deep_is_refused(tmp_path):
    text = json.dumps(_doc())[:-1] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    assert "256 levels" in _refused(_write(tmp_path, text)).problem


def test_a_schema_nested_400_levels_is_refused_naming_where(tmp_path):
    schema: dict = {"type": "string"}
    for _ in range(200):
        schema = {"type": "object", "properties": {"a": schema}}
    error = _refused(_write(tmp_path, _doc(schemas={"Thing": schema})))
    assert error.where.startswith("/components/schemas/Thing/properties/a")
    assert "256 levels" in error.problem


def test_a_ref_to_a_deeply_nested_file_is_refused(tmp_path):
    (tmp_path / "deep.yaml").write_text("Thing: {type: object}\njunk: " + "[" * 600 + "]" * 600)
    error = _refused(_write(tmp_path, _doc(schemas={"Thing": {"$ref": "deep.yaml#/Thing"}})))
    assert "256 levels" in error.problem
    assert "deep.yaml" in error.problem


def test_a_deep_document_makes_serve_exit_2(tmp_path):
    text = json.dumps(_doc())[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"
    code, err = _serve_exit(_write(tmp_path, text))
    assert code == 2
    assert "256 levels" in err


# -- D: malformed structures -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("servers", "where"),
    [
        ({"url": "/v1"}, "/servers"),
        ([{"url": 5}], "/servers/0"),
        (["/v1"], "/servers/0"),
        ([{}], "/servers/0"),
        ([{"url": "/{v}", "variables": [1]}], "/servers/0/variables"),
        ([{"url": "/{v}", "variables": {"v": {}}}], "/servers/0/variables/v/default"),
        (
            [{"url": "/{v}", "variables": {"v": {"default": "b", "enum": ["a"]}}}],
            "/servers/0/variables/v/enum",
        ),
        ([{"url": "https://x/a b"}], "/servers/0/url"),
    ],
)
def test_a_malformed_server_is_refused_naming_it(tmp_path, servers, where):
    assert _refused(_write(tmp_path, _doc(servers=servers))).where == where


@pytest.mark.parametrize(
    ("scheme", "where"),
    [
        ({"type": 5}, "/type"),
        ({"type": "apiKey", "in": "body", "name": "K"}, "/in"),
        ({"type": "apiKey", "in": "header", "name": ""}, "/name"),
        ({"type": "apiKey", "in": "header", "name": "X Key"}, "/name"),
    ],
)
def test_a_malformed_security_scheme_is_refused_naming_it(tmp_path, scheme, where):
    doc = _doc()
    doc["components"]["securitySchemes"] = {"A": scheme}
    assert _refused(_write(tmp_path, doc)).where == "/components/securitySchemes/A" + where


def test_security_schemes_as_a_list_are_refused(tmp_path):
    doc = _doc()
    doc["components"]["securitySchemes"] = [{"type": "http", "scheme": "bearer"}]
    assert _refused(_write(tmp_path, doc)).where == "/components/securitySchemes"


@pytest.mark.parametrize(
    ("security", "where"),
    [({"A": []}, "/security"), (["A"], "/security/0"), ([{"A": "read"}], "/security/0/A")],
)
def test_a_malformed_security_requirement_is_refused(tmp_path, security, where):
    assert _refused(_write(tmp_path, _doc(security=security))).where == where


def test_responses_given_as_a_list_are_refused(tmp_path):
    doc = _doc(paths={"/things": {"post": {"responses": [1]}}})
    assert _refused(_write(tmp_path, doc)).where == "/paths/~1things/post/responses"


@pytest.mark.parametrize(
    "text", ['{"type": "integer", "minimum": 1e400}', '{"type": "number", "minimum": NaN}']
)
def test_a_bound_that_is_not_a_finite_number_is_refused_naming_it(tmp_path, text):
    doc = json.dumps(_doc(schemas={"Thing": {"type": "object", "properties": {"n": "HOLE"}}}))
    error = _refused(_write(tmp_path, doc.replace('"HOLE"', text)))
    assert error.where == "/components/schemas/Thing/properties/n/minimum"


# -- E: what the fake would fail at request time -----------------------------------------------


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "string", "minLength": 3_000_000_000}, "minLength"),
        ({"type": "array", "minItems": 3_000_000_000}, "minItems"),
    ],
)
def test_an_answer_too_large_to_build_is_refused(tmp_path, schema, keyword):
    resp = {"type": "object", "required": ["s"], "properties": {"s": schema}}
    error = _refused(
        _write(
            tmp_path, _doc(paths=_response({"$ref": "#/components/schemas/R"}), schemas={"R": resp})
        )
    )
    assert error.where == f"/components/schemas/R/properties/s/{keyword}"


def test_an_id_pattern_too_wide_to_build_loads(tmp_path):
    ident = {"type": "string", "pattern": "^[0-9]{900000000}$"}
    schema = {"type": "object", "properties": {"ref_id": ident, "n": {"type": "string"}}}
    variant_from_openapi(_write(tmp_path, _doc(paths=_response(schema))))


@pytest.mark.parametrize("examples", ["x", [{"value": 1}]])
def test_media_examples_that_are_not_an_object_are_refused(tmp_path, examples):
    error = _refused(_write(tmp_path, _doc(paths=_response({"type": "object"}, examples=examples))))
    assert error.where == "/paths/~1things/post/responses/201/content/application~1json/examples"


@pytest.mark.parametrize(
    ("ext", "field"),
    [
        ({"status": 999}, "status"),
        ({"status": "abc"}, "status"),
        ({"id_field": 5}, "id_field"),
        ({"keyed": "no"}, "keyed"),
    ],
)
def test_a_malformed_operation_extension_is_refused(tmp_path, ext, field):
    doc = _doc()
    doc["paths"]["/things"]["post"]["x-idempotency"] = ext
    assert _refused(_write(tmp_path, doc)).where == f"/paths/~1things/post/x-idempotency/{field}"


def test_a_schema_that_contains_itself_through_all_of_is_refused(tmp_path):
    doc = _doc(schemas={"Thing": {"allOf": [{"$ref": "#/components/schemas/Thing"}]}})
    error = _refused(_write(tmp_path, doc))
    assert error.where == "/components/schemas/Thing"
    assert "contains itself" in error.problem


def test_a_schema_recursive_through_its_properties_loads(tmp_path):
    node = {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Thing"}}}
    variant_from_openapi(_write(tmp_path, _doc(schemas={"Thing": node})))


# -- F: size -----------------------------------------------------------------------------------


def test_each_operation_is_planned_once_and_each_create_once_more(tmp_path, monkeypatch):
    """Planning is linear: every operation once, and each collection's create once more for
    the id field its items show (remembered, however many items there are)."""
    from pytest_idempotency.openapi import build, plans

    calls = []
    real = plans.plan_for

    def counted(doc, op, catalog):
        calls.append(op.template)
        return real(doc, op, catalog)

    monkeypatch.setattr(plans, "plan_for", counted)
    monkeypatch.setattr(build, "plan_for", counted)
    ok = {"201": {"description": "x"}}
    paths = {}
    for i in range(200):
        paths[f"/r{i}"] = {"post": {"responses": ok}}
        paths[f"/r{i}/{{id}}"] = {"get": {"responses": OK}, "delete": {"responses": OK}}
    variant_from_openapi(_write(tmp_path, _doc(paths=paths)))
    assert len(calls) == 200 * 4  # 3 operations per collection, and its create once more
    assert calls.count("/r7") == 2


# -- G: values and paths the fake cannot serve -------------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".inf", "!!binary aGVsbG8="])
def test_a_yaml_example_that_is_not_json_is_refused(tmp_path, value):
    text = HEAD.replace(
        "{description: x}",
        f"{{description: x, content: {{application/json: {{example: {value}}}}}}}",
    )
    error = _refused(_write(tmp_path, text, "api.yaml"))
    assert error.where == "/paths/~1a/get/responses/200/content/application~1json/example"


@pytest.mark.parametrize(
    "path", ["/a/{}", "/a/{a/b}", "/a/{{id}}", "/a/{id", "/a/{ñame}", "/a?x=1", "/a b/{id}"]
)
def test_a_path_that_can_never_match_is_refused_naming_it(tmp_path, path):
    error = _refused(_write(tmp_path, _doc(paths={path: {"get": {"responses": OK}}})))
    assert error.where == pointer("paths", path)
    assert "never match" in error.problem


def test_paths_that_differ_only_in_parameter_names_are_refused(tmp_path):
    get = {"get": {"responses": OK}}
    error = _refused(_write(tmp_path, _doc(paths={"/a/{x}": get, "/a/{y}": get})))
    assert error.where == "/paths/~1a~1{y}"


def test_a_malformed_openapi_version_is_refused(tmp_path):
    assert _refused(_write(tmp_path, _doc(openapi="3.0foo"))).where == "/openapi"


# -- $ref chains -------------------------------------------------------------------------------


def _chain(hops: int) -> dict:
    schemas = {f"S{i}": {"$ref": f"#/components/schemas/S{i + 1}"} for i in range(hops - 1)}
    schemas[f"S{hops - 1}"] = {"type": "object", "properties": {"id": {"type": "string"}}}
    return _doc(schemas={**schemas, "Thing": {"$ref": "#/components/schemas/S0"}})


def test_a_ref_chain_of_60_hops_is_followed(tmp_path):
    (route,) = variant_from_openapi(_write(tmp_path, _chain(60))).routes
    assert dict(route.schema)["properties"] == {"id": {"type": "string"}}  # the chain's end


def test_a_ref_chain_longer_than_64_hops_is_refused_as_too_long_not_as_a_loop(tmp_path):
    error = _refused(_write(tmp_path, _chain(200)))
    assert "is longer than 64 hops" in error.problem
    assert "loops" not in error.problem


def test_a_ref_chain_that_comes_back_to_itself_is_refused_naming_the_loop_once(tmp_path):
    schemas = {
        "Thing": {"$ref": "#/components/schemas/A"},
        "A": {"$ref": "#/components/schemas/B"},
        "B": {"$ref": "#/components/schemas/A"},
    }
    error = _refused(_write(tmp_path, _doc(schemas=schemas)))
    assert error.where == "/components/schemas/A"
    assert "contains itself through #/components/schemas/A -> #/components/schemas/B -> " in (
        error.problem
    )


# -- the structure of what is read, type-checked where it is read -------------------------------


def _with_op(**fields):
    return _doc(
        paths={"/things": {"post": {"responses": {"201": {"description": "ok"}}, **fields}}}
    )


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({**_doc(), "info": "x"}, "/info"),
        ({**_doc(), "info": {"title": ["T"], "version": "1"}}, "/info/title"),
        (_with_op(parameters=["x"]), "/paths/~1things/post/parameters/0"),
        (
            _with_op(parameters=[{"name": "q", "in": "body"}]),
            "/paths/~1things/post/parameters/0/in",
        ),
        (
            _with_op(parameters=[{"name": 5, "in": "query"}]),
            "/paths/~1things/post/parameters/0/name",
        ),
        (
            _with_op(parameters=[{"name": "q", "in": "query", "schema": "x"}]),
            "/paths/~1things/post/parameters/0/schema",
        ),
        (_with_op(responses={"201": "x"}), "/paths/~1things/post/responses/201"),
        (
            _with_op(responses={"201": {"description": "ok", "content": "x"}}),
            "/paths/~1things/post/responses/201/content",
        ),
        (
            _with_op(
                responses={
                    "201": {
                        "description": "ok",
                        "content": {"application/json": {"examples": {"a": 1}}},
                    }
                }
            ),
            "/paths/~1things/post/responses/201/content/application~1json/examples/a",
        ),
        (_with_op(operationId={"a": 1}), "/paths/~1things/post/operationId"),
        (
            _doc(paths={"/things": {"parameters": "x", "get": {"responses": OK}}}),
            "/paths/~1things/parameters",
        ),
        (_doc(**{"x-idempotency": {"credential": "a\r\nX-Evil: 1"}}), "/x-idempotency/credential"),
    ],
)
def test_a_part_of_the_wrong_type_is_refused_naming_its_pointer(tmp_path, data, where):
    error = _refused(_write(tmp_path, data))
    assert error.where == where
    assert str(error).startswith(f"{tmp_path / 'api.json'}: at {where}: ")


# -- generated values fit the schema they come from ---------------------------------------------


def test_the_generated_example_keeps_every_bound_of_its_schema(idempotent_api, tmp_path):
    schema = {
        "type": "object",
        "required": ["code", "count", "price", "both", "ref"],
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{4}$"},
            "count": {"type": "integer", "minimum": 3, "maximum": 9, "multipleOf": 4},
            "price": {"type": "number", "exclusiveMaximum": -1},
            "both": {"allOf": [{"type": "string", "maxLength": 3}, {"minLength": 2}]},
            "ref": {"type": "string", "maxLength": 4},
        },
    }
    doc = _doc(
        paths={
            "/things": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": schema}},
                    },
                    "responses": {"201": {"description": "ok"}},
                }
            }
        }
    )
    idempotent_api.reset(variant_from_openapi(_write(tmp_path, doc)))
    method, url, body = idempotent_api.example()
    assert body == {"code": "AA-0000", "count": 4, "price": -2, "both": "str", "ref": "stri"}
    answer = requests.request(method, url, **idempotent_api.request_kwargs(body))
    assert answer.status_code == 201, answer.text
