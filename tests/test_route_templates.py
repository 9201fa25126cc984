"""A route template that can never match a request is refused where it is written, naming the
fix: an unclosed or stray brace, a parameter that is not a name, a query or fragment, a ``*``
that is not the last segment, a spec that is not a str. Before, ``Route("POST /v1/{x")`` was
accepted and every request to it was a silent 404. A well-formed template still serves."""

from __future__ import annotations

import pytest
import requests

from pytest_idempotency import Policy, Reply, Route, Variant
from pytest_idempotency.routes import parse_route
from pytest_idempotency.variant import HandlerContext


def _ok(ctx: HandlerContext) -> Reply:
    return Reply(200, {"params": ctx.params})


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("POST /v1/{x", "unclosed '{'"),
        ("POST /v1/x}", "'}' that closes nothing"),
        ("GET /v1/{}", "{} is not a parameter"),
        ("GET /v1/{a-b}", "{a-b} is not a parameter"),
        ("GET /v1/{1st}", "{1st} is not a parameter"),
        ("GET /v1/{{id}}", "unclosed '{'"),
        ("GET /v1/things?limit=1", "query or fragment"),
        ("GET /v1/things#top", "query or fragment"),
        ("GET /v1/*/runs", "'*' matches any path only"),
        ("GET /v1/t*", "'*' matches any path only"),
    ],
)
def test_a_template_that_can_never_match_is_refused_naming_the_fix(spec, named):
    with pytest.raises(ValueError, match=r"^route ") as caught:
        Route(spec, _ok)
    message = str(caught.value)
    assert repr(spec) in message
    assert named in message
    assert "e.g. 'GET /v1/things/{thing_id}'" in message  # the fix, in every refusal
    assert "%7B" in message  # and how to write a literal brace


@pytest.mark.parametrize("spec", [123, None, b"POST /v1/things", ("POST", "/v1/things")])
def test_a_route_spec_that_is_not_a_str_is_a_type_error_naming_the_form(spec):
    with pytest.raises(TypeError, match=r"Route\(spec\) is the route as a str such as 'POST /v1"):
        Route(spec, _ok)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec", ["POST *", "* /v1/*", "GET /v1/things/{thing_id}", "GET /v1/{a}.{b}", "GET /v1/%7Bx%7D"]
)
def test_well_formed_templates_are_still_accepted(spec):
    assert Route(spec, _ok).spec == spec
    assert parse_route(spec).path == spec.split()[1]


def test_a_wildcard_tail_and_parameters_still_serve_over_a_socket(idempotent_api):
    idempotent_api.reset(
        Variant(
            name="templates",
            policy=Policy(key_header="Idempotency-Key", keyed_routes=()),
            routes=(Route("GET /v1/{a}.{b}", _ok), Route("GET /v2/*", _ok)),
            authenticate=lambda headers: "anyone",
        )
    )
    dotted = requests.get(idempotent_api.url_for("/v1/report.csv"), timeout=10)
    assert dotted.status_code == 200
    assert dotted.json()["params"] == {"a": "report", "b": "csv"}
    assert requests.get(idempotent_api.url_for("/v2/any/depth"), timeout=10).status_code == 200


def test_a_user_sees_the_refusal_as_a_clear_error_at_collection(pytester):
    pytester.makeconftest(
        """
        from pytest_idempotency import Reply, Route

        BROKEN = Route("POST /v1/{order_id", lambda ctx: Reply(200, {}))
        """
    )
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["*ValueError: route 'POST /v1/{order_id': the path has an unclosed*"]
    )
