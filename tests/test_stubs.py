"""Stubbing one route's answer on a built-in variant (status, JSON, headers, n-th call, times),
through the fixture, the standalone server's admin API and a user's own pytest run.

The stub replaces the handler, not the idempotency layer: its answer is stored and replayed by
the variant's cache rules, and it records a side effect only when asked to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from hardening_support import Standalone

from pytest_idempotency import IdempotentAPI
from pytest_idempotency.stubs import StubError

TASK = {"id": "task_stubbed", "status": "queued"}


def create(api: IdempotentAPI, key: str | None) -> requests.Response:
    method, url, params = api.example()
    return requests.request(method, url, timeout=5, **api.request_kwargs(params, key=key))


@pytest.mark.idempotency(variant="moda")
def test_stub_answers_the_nth_call_only(idempotent_api: IdempotentAPI) -> None:
    stub = idempotent_api.stub(
        "POST /v1/tasks", status=201, json=TASK, headers={"X-Stub": "yes"}, nth=2, times=1
    )

    first, second, third = (create(idempotent_api, f"key-{i}") for i in range(3))

    assert first.json()["id"] != TASK["id"]
    assert (second.status_code, second.json(), second.headers["X-Stub"]) == (201, TASK, "yes")
    assert second.headers["Content-Type"] == "application/json"
    assert third.json()["id"] not in (TASK["id"], first.json()["id"])
    assert "X-Stub" not in third.headers
    assert (stub.calls, stub.fired) == (3, 1)
    # The stubbed call ran no handler, so it created no task.
    assert [e.exchange_seq for e in idempotent_api.side_effects] == [1, 3]


@pytest.mark.idempotency(variant="moda")
def test_a_stubbed_answer_is_stored_and_replayed_under_its_key(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.stub("POST /v1/tasks", status=201, json=TASK, times=1)

    stubbed = create(idempotent_api, "weekly-deck:2026-W17")
    retry = create(idempotent_api, "weekly-deck:2026-W17")

    assert (retry.status_code, retry.json()) == (201, TASK)
    assert retry.content == stubbed.content
    idempotent_api.assert_replayed(seq=2)
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(variant="phantom")
def test_a_stubbed_5xx_follows_the_variants_cache_rules(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.stub("POST /api/v1/economy/adjust", status=503, json={"error": "down"}, times=1)

    failed = create(idempotent_api, "adj-1")
    retry = create(idempotent_api, "adj-1")

    assert failed.status_code == 503
    assert retry.status_code == 200  # phantom does not cache 5xx: the retry runs the handler
    assert [e.decision for e in idempotent_api.exchanges] == ["new", "new"]
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="moda")
def test_a_stub_records_a_side_effect_when_asked(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.stub("POST /v1/tasks", status=201, json=TASK, side_effect="task.created")

    create(idempotent_api, "k1")
    create(idempotent_api, "k1")

    idempotent_api.assert_exactly_once()
    effect = idempotent_api.side_effects[0]
    assert (effect.kind, effect.resource, effect.resource_id) == (
        "task.created",
        "task",
        "task_stubbed",
    )


@pytest.mark.idempotency(variant="moda")
def test_a_stubbed_content_type_replaces_the_json_one(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.stub(
        "POST /v1/tasks", status=201, json=TASK, headers={"Content-Type": "application/vnd+json"}
    )

    answered = create(idempotent_api, "k1")

    assert answered.headers["Content-Type"] == "application/vnd+json"
    assert answered.json() == TASK


@pytest.mark.parametrize(
    ("route", "options", "words"),
    [
        ("POST /v1/nothing", {}, "has no route 'POST /v1/nothing'"),
        ("/v1/tasks", {}, 'name the route as "METHOD /path"'),
        ("POST /v1/tasks", {"status": 99}, "status must be an HTTP status"),
        ("POST /v1/tasks", {"nth": 0}, "nth counts from 1"),
        ("POST /v1/tasks", {"times": 0}, "times counts from 1"),
        ("POST /v1/tasks", {"json": {1, 2}}, "json must be JSON-encodable"),
        ("POST /v1/tasks", {"headers": {"X-A": "b\r\nSet-Cookie: x"}}, "cannot go on the wire"),
        ("POST /v1/tasks", {"headers": {"Content-Length": "3"}}, "set by the server"),
    ],
)
@pytest.mark.idempotency(variant="moda")
def test_a_bad_stub_is_refused_naming_the_fix(
    idempotent_api: IdempotentAPI, route: str, options: dict[str, Any], words: str
) -> None:
    with pytest.raises(StubError, match=words):
        idempotent_api.stub(route, **options)


def test_a_users_pytest_run_stubs_a_route(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import requests

        @pytest.mark.idempotency(variant="moda")
        def test_stubbed(idempotent_api):
            idempotent_api.stub("POST /v1/tasks", status=202, json={"id": "t"}, nth=1, times=1)
            method, url, params = idempotent_api.example()
            kwargs = idempotent_api.request_kwargs(params, key="k")
            answer = requests.request(method, url, timeout=5, **kwargs)
            assert (answer.status_code, answer.json()) == (202, {"id": "t"})
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


# -- the admin API, standalone ------------------------------------------------------------------


@pytest.fixture(scope="module")
def moda_server() -> Iterator[str]:
    """A standalone ``moda`` server process; yields its base URL."""
    server = Standalone("--variant=moda")
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        err = server.close()
        assert "Traceback" not in err, err


def test_admin_stubs_a_route_of_the_standalone_server(moda_server: str) -> None:
    with httpx.Client(base_url=moda_server, timeout=5) as client:
        client.post("/__admin/reset", json={})
        added = client.post(
            "/__admin/stubs",
            json={"route": "POST /v1/tasks", "status": 201, "json": TASK, "nth": 1, "times": 1},
        )
        assert added.status_code == 201, added.text
        body = {"prompt": "deck", "idempotency_key": "k-1"}
        headers = {"Authorization": "Bearer moda_test_key_a"}
        answered = client.post("/v1/tasks", json=body, headers=headers)
        listed = client.get("/__admin/stubs").json()["stubs"]
        cleared = client.delete("/__admin/stubs").json()["stubs"]
    assert (answered.status_code, answered.json()) == (201, TASK), answered.text
    assert (listed[0]["calls"], listed[0]["fired"]) == (1, 1)
    assert cleared == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"status": 201}, "name the route"),
        ({"route": "POST /v1/nope"}, "has no route"),
        ({"route": "POST /v1/tasks", "nth": "2"}, "nth counts from 1"),
        ({"route": "POST /v1/tasks", "colour": "red"}, "unknown field(s) colour"),
    ],
)
def test_admin_refuses_a_bad_stub_naming_the_fix(
    moda_server: str, body: dict[str, Any], words: str
) -> None:
    refused = httpx.post(f"{moda_server}/__admin/stubs", json=body, timeout=5)
    assert refused.status_code == 400
    assert words in refused.json()["error"]
