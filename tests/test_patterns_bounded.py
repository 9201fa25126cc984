"""Regular expressions from an API's author, matched against what clients send.

A schema's ``pattern`` (and ``patternProperties``) and a policy's ``key_pattern`` that backtrack
without end (``^(a|aa)+$`` against ``aaaa...b``) get a clear refusal naming the pattern, not a
server stalled for ever; a route schema that is no JSON Schema is refused when the fake takes the
variant, not at its first request. Over real sockets, in process and in the standalone process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hardening_support import Standalone, Target, clean_stderr, split
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_idempotency import schemas
from pytest_idempotency.app import App
from pytest_idempotency.patterns import (
    MAX_PATTERN_PIECES,
    PatternTimeout,
    bounded_fullmatch,
    bounded_search,
    pieces,
)
from pytest_idempotency.policy import Policy, PolicyError
from pytest_idempotency.server import IdempotencyServer
from pytest_idempotency.variant import Route, Variant, default_create_handler

#: ``regex`` matches this in exponential time on a long run of ``a`` followed by ``b``.
SLOW = "^(a|aa)+$"
SLOW_TEXT = "a" * 64 + "b"


def _variant(schema: dict[str, Any], **policy: Any) -> Variant:
    return Variant(
        name="patterned",
        policy=Policy(keyed_routes=("POST /things",), **policy),
        routes=(Route("POST /things", default_create_handler("thing", "thg"), schema=schema),),
    )


def _post(port: int, body: Any, key: str = "k1") -> tuple[int, Any]:
    payload = json.dumps(body).encode()
    request = (
        f"POST /things HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: {key}\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
    status, _, answer = split(Target.raw_to(port, request, half_close=False))
    return status, json.loads(answer)


def test_a_pattern_that_backtracks_without_end_is_refused_naming_it() -> None:
    app = App(
        _variant({"type": "object", "properties": {"n": {"type": "string", "pattern": SLOW}}})
    )
    with IdempotencyServer(app) as server:
        status, body = _post(server.port, {"n": SLOW_TEXT})
        assert status == 400
        assert "backtracks without end" in body["error"]["message"]
        assert SLOW in body["error"]["message"]
        assert _post(server.port, {"n": "aaaa"}, key="k2")[0] == 201  # still serving
    assert len(app.state.journal.side_effects) == 1  # the refused body ran nothing
    assert [category for category, _ in app.state.journal.problems] == ["schema"]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "patternProperties": {SLOW: {}}, "additionalProperties": False},
        {  # 2020-12's unevaluatedProperties consults the patternProperties of its allOf
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "allOf": [{"patternProperties": {SLOW: {}}}],
            "unevaluatedProperties": False,
        },
    ],
    ids=["additionalProperties", "unevaluatedProperties"],
)
def test_a_pattern_property_that_backtracks_without_end_is_refused_naming_it(
    schema: dict[str, Any],
) -> None:
    app = App(_variant(schema))
    with IdempotencyServer(app) as server:
        status, body = _post(server.port, {SLOW_TEXT: 1})
        assert status == 400
        assert "backtracks without end" in body["error"]["message"]
        assert _post(server.port, {"aa": 1}, key="k2")[0] == 201
        assert _post(server.port, {"zz": 1}, key="k3")[0] == 400  # matches no pattern
    assert len(app.state.journal.side_effects) == 1


def test_a_key_pattern_that_backtracks_without_end_refuses_the_key_naming_it() -> None:
    app = App(_variant({"type": "object"}, key_pattern=SLOW))
    with IdempotencyServer(app) as server:
        status, body = _post(server.port, {}, key=SLOW_TEXT)
        assert status == 400
        assert "key_pattern cannot check this key" in body["error"]["message"]
        assert _post(server.port, {}, key="aaaa")[0] == 201
    assert len(app.state.journal.side_effects) == 1


def test_the_standalone_server_refuses_a_slow_key_and_goes_on_serving() -> None:
    target = Standalone("--set", f"key_pattern={SLOW}")
    try:
        status, body = target.call("POST", "/v1/things", {"n": 1}, Idempotency_Key=SLOW_TEXT)
        assert status == 400
        assert "backtracks without end" in json.dumps(body)
        assert target.create("aaaa") == 201
        assert target.effects() == 1
    finally:
        err = target.close()
    assert clean_stderr(err) == []


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"type": "object", "properties": {"n": {"multipleOf": 0}}}, "/properties/n/multipleOf"),
        ({"type": "obj"}, "/type"),
        ({"properties": {"n": {"pattern": "("}}}, "/properties/n/pattern"),
        ({"patternProperties": {"(": {}}}, "/patternProperties"),
        ({"uniqueItems": "yes"}, "/uniqueItems"),
    ],
)
def test_a_route_schema_that_is_no_json_schema_is_refused_when_the_fake_takes_it(
    schema: dict[str, Any], where: str
) -> None:
    with pytest.raises(ValueError, match="the schema of route 'POST /things'") as refused:
        App(_variant(schema))
    assert "fix the schema" in str(refused.value)
    assert f"(at {where}); fix the schema" in str(refused.value)


def test_a_contract_with_an_invalid_route_schema_exits_2_naming_the_route(tmp_path: Path) -> None:
    contract = tmp_path / "orders.toml"
    contract.write_text(
        'name = "orders"\n[policy]\nkeyed_routes = ["POST /orders"]\n'
        '[[routes]]\nroute = "POST /orders"\nschema = { type = "object", '
        "properties = { n = { multipleOf = 0 } } }\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_idempotency",
            "serve",
            "--port",
            "0",
            "--contract",
            contract,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "the schema of route 'POST /orders'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_schema_that_reaches_itself_without_end_is_a_validation_answer() -> None:
    schema = {"$defs": {"loop": {"allOf": [{"$ref": "#/$defs/loop"}]}}, "$ref": "#/$defs/loop"}
    app = App(_variant(schema))
    with IdempotencyServer(app) as server:
        status, body = _post(server.port, {"n": 1})
    assert status == 400
    assert "refers to itself without end" in body["error"]["message"]
    assert app.state.journal.side_effects == []


def test_bounded_matching_times_out_instead_of_running_for_ever() -> None:
    with pytest.raises(PatternTimeout, match="backtracks without end"):
        bounded_search(SLOW, SLOW_TEXT)
    with pytest.raises(PatternTimeout):
        bounded_fullmatch(SLOW, SLOW_TEXT)
    assert bounded_fullmatch(SLOW, "aaaa")


_PATTERNS = st.sampled_from(["^[a-z]+$", r"\d{3}", "^x-", "b", "^$", "[A-Z]", "a|b"])
_TEXT = st.text(alphabet="abxAZ-019", max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    pattern=_PATTERNS,
    text=_TEXT,
    names=st.lists(_TEXT, max_size=4),
    extra=st.sampled_from([True, False, {"type": "string"}]),
    patterned=st.sampled_from(["one", "empty", "none"]),
    value=st.sampled_from([1, "v"]),
)
def test_bounded_validators_answer_what_jsonschemas_own_do(
    pattern: str, text: str, names: list[str], extra: Any, patterned: str, value: Any
) -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": pattern}},
        "additionalProperties": extra,
    }
    if patterned != "none":
        schema["patternProperties"] = {pattern: {"type": "integer"}} if patterned == "one" else {}
    data = {"s": text, **dict.fromkeys(names, value)}
    expected = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(data)
    )
    got = schemas.problem(schema, data)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert got == ("/".join(map(str, expected.absolute_path)) or "(body)", expected.message)


_SUBSCHEMAS = st.sampled_from(
    [
        {"properties": {"a": {"type": "integer"}}},
        {"patternProperties": {"^x-": {}}},
        {"properties": {"b": {}}, "required": ["b"]},
        {"$ref": "#/$defs/C"},
        {
            "if": {"required": ["a"]},
            "then": {"properties": {"t": {}}},
            "else": {"properties": {"e": {}}},
        },
        {"dependentSchemas": {"d": {"properties": {"z": {}}}}},
        {"additionalProperties": {"type": "string"}},
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(_SUBSCHEMAS, max_size=3),
    combiner=st.sampled_from(["allOf", "anyOf", "oneOf"]),
    unevaluated=st.sampled_from([False, {"type": "string"}]),
    data=st.dictionaries(
        st.sampled_from(["a", "b", "c", "x-y", "t", "e", "d", "z"]),
        st.sampled_from([1, "v"]),
        max_size=5,
    ),
)
def test_bounded_unevaluated_properties_answer_what_jsonschemas_own_do(
    parts: list[Any], combiner: str, unevaluated: Any, data: dict[str, Any]
) -> None:
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"C": {"properties": {"c": {}}}},
        "unevaluatedProperties": unevaluated,
    }
    if parts:
        schema[combiner] = parts
    expected = jsonschema.Draft202012Validator(schema).iter_errors(data)
    got = schemas.validator(schema).iter_errors(data)
    assert [e.message for e in got] == [e.message for e in expected]


#: ``regex`` writes out fixed counts: this one would take a billion pieces (all the memory).
HUGE = "(?:(?:a{1000}){1000}){1000}"


def test_a_key_pattern_that_would_take_all_memory_is_refused_naming_the_fix() -> None:
    with pytest.raises(PolicyError) as refused:
        Policy(key_pattern=HUGE)
    assert "past 20,000 pieces" in str(refused.value)
    assert "write a range" in str(refused.value)


def test_the_admin_api_refuses_a_huge_key_pattern_and_goes_on_serving() -> None:
    """The call used to grow the server by gigabytes until the system killed it."""
    target = Standalone()
    try:
        before = _peak_kib(target.proc.pid)
        status, body = target.call("POST", "/__admin/reset", {"policy": {"key_pattern": HUGE}})
        assert status == 400
        assert "past 20,000 pieces" in body["error"]
        assert target.create("after-the-bomb") == 201
        assert _peak_kib(target.proc.pid) - before < 50 * 1024
    finally:
        err = target.close()
    assert clean_stderr(err) == []


def test_serve_with_a_huge_key_pattern_exits_2_naming_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_idempotency", "serve", "--set", f"key_pattern={HUGE}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "key_pattern" in done.stderr
    assert "past 20,000 pieces" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_schema_pattern_that_would_take_all_memory_is_refused_at_the_route() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "string", "pattern": HUGE}}}
    with pytest.raises(ValueError, match="past 20,000 pieces") as refused:
        App(_variant(schema))
    assert "/properties/n/pattern:" in str(refused.value)


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (r"^[0-9a-f]{64}$", "ab" * 32, True),
        (r"^\d{4}-\d{2}-\d{2}$", "2026-12-02", True),
        (r"^.{0,100000}$", "x" * 1000, True),
        (r"^(?:ab){0,65535}$", "abab", True),
        (r"^\p{L}{3}$", "caf", True),
        (r"^\p{L}{3}$", "ca1", False),
    ],
)
def test_real_patterns_with_counts_are_served(pattern: str, text: str, found: bool) -> None:
    """Counts that compile small (a range, a class, a short fixed count) are not refused, and
    match as the regex engine does."""
    assert pieces(pattern) <= MAX_PATTERN_PIECES
    assert bounded_search(pattern, text) is found


def _peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
