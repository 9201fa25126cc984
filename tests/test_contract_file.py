"""Contract files (TOML or JSON): a policy plus routes without Python."""

from __future__ import annotations

import json
import shutil

import pytest
import requests
from openapi_specs import DATA

from pytest_idempotency import DescriptionError, register_variant, variant_from_contract

NOTES = {
    "name": "notes",
    "policy": {"keyed_routes": ["POST /notes", "PATCH /notes/{id}"], "ttl": 60},
    "credential": {"scheme": "bearer", "example": "notes_token"},
    "example": {"route": "POST /notes", "body": {"text": "hi"}},
    "routes": [
        {"route": "POST /notes", "schema": {"type": "object", "required": ["text"]}},
        {"route": "GET /notes"},
        {"route": "GET /notes/{id}"},
        {"route": "PATCH /notes/{id}"},
        {"route": "DELETE /notes/{id}"},
    ],
}


def _contract(tmp_path, data, name="c.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_a_json_contract_serves_crud_with_its_policy(idempotent_api, tmp_path):
    idempotent_api.reset(variant_from_contract(_contract(tmp_path, NOTES)))
    assert idempotent_api.policy.ttl == 60
    method, url, params = idempotent_api.example()
    kwargs = idempotent_api.request_kwargs(params, key="n1")
    note = requests.request(method, url, **kwargs).json()
    assert requests.request(method, url, **kwargs).json() == note  # replay
    item = idempotent_api.url_for(f"/notes/{note['id']}")
    headers = idempotent_api.headers()
    assert requests.patch(item, json={"text": "yo"}, headers=headers).json()["text"] == "yo"
    assert requests.get(url, headers=headers).json() == [{**note, "text": "yo"}]
    assert requests.delete(item, headers=headers).status_code == 204
    assert requests.get(item, headers=headers).status_code == 404
    assert [e.kind for e in idempotent_api.side_effects] == [
        "notes.created",
        "notes.updated",
        "notes.deleted",
    ]


def test_a_contract_file_selected_by_name_in_a_suite(pytester):
    _contract(pytester.path, NOTES, "notes.json")
    pytester.makeconftest(
        """
        from pathlib import Path
        from pytest_idempotency import register_variant, variant_from_contract
        register_variant(variant_from_contract(Path(__file__).parent / "notes.json"), replace=True)
        """
    )
    pytester.makepyfile(
        """
        import pytest, requests

        @pytest.mark.idempotency(variant="notes")
        def test_once(idempotent_api):
            method, url, params = idempotent_api.example()
            for _ in range(2):
                requests.request(method, url, **idempotent_api.request_kwargs(params, key="k"))
            idempotent_api.assert_exactly_once()
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_a_contract_can_start_from_an_openapi_document(idempotent_api, tmp_path):
    shutil.copy(DATA / "petstore-3.0.yaml", tmp_path / "pets.yaml")
    toml = _contract(
        tmp_path, 'openapi = "pets.yaml"\nname = "pets-1h"\n[policy]\nttl = 3600\n', "c.toml"
    )
    variant = variant_from_contract(toml)
    assert (variant.name, variant.policy.ttl, variant.policy.key_max_length) == (
        "pets-1h",
        3600,
        40,
    )
    register_variant(variant, replace=True)  # the registry is restored after each test


@pytest.mark.parametrize(
    ("data", "where", "words"),
    [
        ({**NOTES, "colour": 1}, "/", "unknown field(s) colour"),
        ({**NOTES, "routes": [{"route": "POST /x", "verb": 1}]}, "/routes/0", "verb"),
        (
            {**NOTES, "routes": [{"route": "POST /x"}, {"route": "GET /x", "action": "peek"}]},
            "/routes/1/action",
            "unknown action 'peek'",
        ),
        ({**NOTES, "routes": [{"route": "FETCH /x"}]}, "/routes/0/route", "unknown method"),
        ({**NOTES, "policy": {"ttl": "soon"}}, "/policy/ttl", "ttl must be"),
        ({**NOTES, "policy": {"on_reuse": "maybe"}}, "/policy/on_reuse", "on_reuse"),
        ({**NOTES, "credential": {"scheme": "digest"}}, "/credential/scheme", "digest"),
        ({"name": "empty"}, "/routes", "declares no routes"),
        (
            {**NOTES, "routes": [{"route": "POST /x", "status": 999}]},
            "/routes/0/status",
            "(got 999)",
        ),
        (
            {**NOTES, "routes": [{"route": "POST /x", "status": "201"}]},
            "/routes/0/status",
            '(got "201")',
        ),
        (
            {**NOTES, "routes": [{"route": "POST /x", "id_field": 5}]},
            "/routes/0/id_field",
            "(got 5)",
        ),
        ({**NOTES, "max_body_bytes": -1}, "/max_body_bytes", "whole number >= 1"),
        ({**NOTES, "max_body_bytes": "x"}, "/max_body_bytes", "whole number >= 1"),
        ({**NOTES, "example": {"route": "POST /notes", "body": "x"}}, "/example/body", "table"),
        ({**NOTES, "example": {"route": "POST /nowhere"}}, "/example/route", "no route serves"),
        ({**NOTES, "name": 5}, "/name", "printable text"),
        ({**NOTES, "name": "a\u0000b"}, "/name", "printable text"),
        ({**NOTES, "errors": {"template": 5}}, "/errors/template", "table"),
        (
            {**NOTES, "errors": {"template": {"m": "{message}"}, "content_type": "a/b\r\nX: y"}},
            "/errors/content_type",
            "control",
        ),
    ],
)
def test_bad_contracts_name_the_place_and_the_fix(tmp_path, data, where, words):
    with pytest.raises(DescriptionError) as raised:
        variant_from_contract(_contract(tmp_path, data))
    assert raised.value.where in (where, "")
    assert str(raised.value).startswith(f"{tmp_path / 'c.json'}: at {where}: ")
    assert words in str(raised.value)


def test_bad_toml_is_named(tmp_path):
    with pytest.raises(DescriptionError, match="not valid TOML"):
        variant_from_contract(_contract(tmp_path, "name = ", "c.toml"))
