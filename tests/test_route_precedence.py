"""Routes match most specific first, whatever order they are declared in (OpenAPI's rule for
paths, and werkzeug's): a literal segment before a parameter, more literal text before less,
a path before a wildcard, a method before ``*``. Real documents (Twilio, Box, DigitalOcean)
declare ``/items/{id}`` before ``/items/summary``; those operations used to be unreachable.
Over real sockets with requests."""

from __future__ import annotations

import json

import pytest
import requests

from pytest_idempotency import Policy, Reply, Route, Variant, variant_from_openapi
from pytest_idempotency.routes import parse_route, specificity
from pytest_idempotency.variant import HandlerContext


def _named(name: str):  # a handler that says which route answered
    def handler(ctx: HandlerContext) -> Reply:
        return Reply(200, {"route": name, "params": ctx.params})

    return handler


def _variant(*specs: str) -> Variant:
    return Variant(
        name="precedence",
        policy=Policy(key_header="Idempotency-Key", keyed_routes=()),
        routes=tuple(Route(spec, _named(spec)) for spec in specs),
        authenticate=lambda headers: "anyone",
    )


@pytest.mark.parametrize(
    ("path", "answered_by"),
    [
        ("/v1/tasks/stats", "GET /v1/tasks/stats"),
        ("/v1/tasks/t_1", "GET /v1/tasks/{id}"),
        ("/v1/tasks/t_1.json", "GET /v1/tasks/{id}.json"),
        ("/v1/tasks/t_1/runs", "GET /v1/tasks/{id}/runs"),
        ("/v1/other/thing", "GET /v1/*"),
    ],
)
def test_the_most_specific_route_answers_whatever_the_declaration_order(
    idempotent_api, path, answered_by
):
    idempotent_api.reset(
        _variant(
            "GET /v1/*",
            "* /v1/tasks/{id}/runs",
            "GET /v1/tasks/{id}",
            "GET /v1/tasks/{id}.json",
            "GET /v1/tasks/stats",
            "GET /v1/tasks/{id}/runs",
        )
    )
    answer = requests.get(idempotent_api.url_for(path), timeout=10)
    assert answer.status_code == 200
    assert answer.json()["route"] == answered_by


def test_routes_equal_in_specificity_keep_their_declared_order() -> None:
    specs = ["GET /a/{x}", "* /a/{y}", "GET /a/{z}"]
    ordered = sorted(specs, key=lambda spec: specificity(parse_route(spec)))
    assert ordered == ["GET /a/{x}", "GET /a/{z}", "* /a/{y}"]


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)  # the refused Sid is intended
def test_a_concrete_openapi_path_after_a_templated_one_is_served(idempotent_api, tmp_path):
    """Twilio's ``.../IncomingPhoneNumbers/{Sid}.json`` comes before ``.../Local.json``:
    ``Local.json`` used to be read as the Sid ``Local`` and refused by its pattern."""
    sid = {"name": "Sid", "in": "path", "required": True, "schema": {"pattern": "^PN[0-9a-f]{4}$"}}
    listing = {"200": {"description": "ok", "content": {"application/json": {"schema": {}}}}}
    document = {
        "openapi": "3.0.1",
        "info": {"title": "Numbers", "version": "1"},
        "paths": {
            "/Numbers/{Sid}.json": {"get": {"parameters": [sid], "responses": listing}},
            "/Numbers/Local.json": {"get": {"responses": listing}},
        },
    }
    path = tmp_path / "numbers.json"
    path.write_text(json.dumps(document))
    idempotent_api.reset(variant_from_openapi(path))
    local = requests.get(idempotent_api.url_for("/Numbers/Local.json"), timeout=10)
    assert local.status_code == 200, local.text
    refused = requests.get(idempotent_api.url_for("/Numbers/Nope.json"), timeout=10)
    assert refused.status_code == 400  # still the {Sid} route, its pattern checked
    assert "Sid" in refused.text
