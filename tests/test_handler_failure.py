"""A failure after the side effect never frees the key, and an input a handler cannot take is a
clear 4xx before any side effect; Moda's and Whet's records belong to the resource after an
injected 5xx that follows it.

Over real sockets: the fixture's loopback server, and a standalone server process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from hardening_support import Standalone

from pytest_idempotency import HandlerContext, IdempotentAPI, Reply, Route, get_variant

HUGE = int("9" * 4300)  # the reported case: json can read it, but not write it back doubled


def post(api: IdempotentAPI, path: str, body: Any, key: str | None) -> requests.Response:
    return requests.post(api.url_for(path), timeout=5, **api.request_kwargs(body, key=key))


# -- a handler that fails ---------------------------------------------------------------------


def _fails_after_its_side_effect(ctx: HandlerContext) -> Reply:
    ctx.side_effect("charge.created", "charge", ctx.resources.new_id("ch"))
    raise RuntimeError("the ledger write failed")


def _fails_once_before_any_side_effect(ctx: HandlerContext) -> Reply:
    seen = ctx.resources.get(ctx.tenant, "flag", "tried")
    if seen is None:
        ctx.resources.put(ctx.tenant, "flag", {"id": "tried"})
        raise RuntimeError("the fake's dependency was not ready")
    ctx.side_effect("charge.created", "charge", ctx.resources.new_id("ch"))
    return Reply(201, {"ok": True})


def _variant(handler: Any) -> Any:
    generic = get_variant("generic")
    return dataclasses.replace(
        generic, name="failing", routes=(Route("POST /v1/charges", handler),)
    )


@pytest.mark.idempotency(assert_fake_never_failed=False)
def test_a_handler_failing_after_its_side_effect_keeps_the_record(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.reset(_variant(_fails_after_its_side_effect))

    failed = post(idempotent_api, "/v1/charges", {"amount": 1}, "charge-1")
    retry = post(idempotent_api, "/v1/charges", {"amount": 1}, "charge-1")

    assert failed.status_code == 400  # never a retryable 500
    assert failed.headers["X-Pytest-Idempotency-Error"] == "internal-error"
    assert "RuntimeError: the ledger write failed" in failed.text
    assert (retry.status_code, retry.content) == (400, failed.content)
    first, second = idempotent_api.exchanges
    assert (first.decision, first.committed) == ("new", True)
    assert (second.decision, second.replay_of) == ("replayed", 1)
    idempotent_api.assert_exactly_once()  # one execution under one key
    assert [c for c, _ in idempotent_api.journal.problems] == ["internal"]


@pytest.mark.idempotency(assert_fake_never_failed=False)
def test_a_handler_failing_before_any_side_effect_frees_the_key(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.reset(_variant(_fails_once_before_any_side_effect))

    failed = post(idempotent_api, "/v1/charges", {"amount": 1}, "charge-1")
    retry = post(idempotent_api, "/v1/charges", {"amount": 1}, "charge-1")

    assert failed.status_code == 400
    assert retry.status_code == 201  # nothing was done, so the key starts over
    idempotent_api.assert_exactly_once()


# -- inputs a handler cannot take -----------------------------------------------------------------


@pytest.mark.idempotency(variant="phantom", assert_all_bodies_were_valid=False)
def test_phantom_delta_of_4300_digits_is_a_4xx_before_any_side_effect(
    idempotent_api: IdempotentAPI,
) -> None:
    body = {"user_id": "123", "delta": HUGE}

    refused = post(idempotent_api, "/api/v1/economy/adjust", body, "adj-1")
    again = post(idempotent_api, "/api/v1/economy/adjust", body, "adj-1")

    assert 400 <= refused.status_code < 500
    assert "delta" in refused.text
    assert again.status_code == refused.status_code
    idempotent_api.assert_side_effects(0)
    assert not [c for c, _ in idempotent_api.journal.problems if c == "internal"]


@pytest.mark.idempotency(variant="phantom", assert_all_bodies_were_valid=False)
def test_phantom_delta_past_the_json_safe_range_is_refused(idempotent_api: IdempotentAPI) -> None:
    refused = post(
        idempotent_api, "/api/v1/economy/adjust", {"user_id": "1", "delta": 2**53}, "adj-2"
    )
    fine = post(
        idempotent_api, "/api/v1/economy/adjust", {"user_id": "1", "delta": 2**53 - 1}, "adj-3"
    )

    assert refused.status_code == idempotent_api.variant.validation.status
    assert "delta" in refused.text
    assert fine.status_code == 200
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_any_variant_refuses_an_integer_past_19_digits_before_the_handler(
    idempotent_api: IdempotentAPI,
) -> None:
    refused = post(idempotent_api, "/v1/things", {"name": "x", "n": [1, 10**25]}, "k")

    assert 400 <= refused.status_code < 500
    assert "n/1: integers have at most 19 digits" in refused.text
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_a_long_run_of_digits_inside_a_string_is_not_refused(
    idempotent_api: IdempotentAPI,
) -> None:
    taken = post(idempotent_api, "/v1/things", {"name": "9" * 40}, "k")

    assert taken.status_code == 201
    idempotent_api.assert_exactly_once()


# -- Moda and Whet: the record belongs to the resource ---------------------------------------------


MODA_TASK = {"prompt": "Weekly focus-time deck"}
WHET_KEY = "7d1f0c6e2b9a4c3d8e5f6a7b8c9d0e1f"
INTENT = {"handle": "growth_dr", "intent": "Track for analytical drafts, daily."}


@pytest.mark.idempotency(variant="moda")
def test_moda_reusing_the_same_key_returns_the_existing_task_instead_of_creating_a_duplicate(
    idempotent_api: IdempotentAPI,
) -> None:
    """Moda: "Reusing the same key returns the existing task instead of creating a duplicate",
    also after an injected 5xx that followed the side effect."""
    idempotent_api.faults.error_after_commit(500)

    failed = post(idempotent_api, "/v1/tasks", MODA_TASK, "weekly-deck:2026-W17")
    retry = post(idempotent_api, "/v1/tasks", MODA_TASK, "weekly-deck:2026-W17")

    assert failed.status_code == 500
    assert retry.status_code == 201
    assert [s.kind for s in idempotent_api.side_effects] == ["task.created"]
    assert retry.json()["id"] == idempotent_api.side_effects[0].resource_id
    idempotent_api.assert_replayed(seq=2)


@pytest.mark.idempotency(variant="whet")
def test_whet_replays_with_the_same_key_return_the_same_run_id_pipeline_id_never_a_new_one(
    idempotent_api: IdempotentAPI,
) -> None:
    """Whet: "Replays with the same key return the same run_id / pipeline_id / artifact —
    never a new one", also after an injected 5xx that followed the side effect."""
    idempotent_api.faults.error_after_commit(503)

    failed = post(idempotent_api, "/pipelines/from-intent", INTENT, WHET_KEY)
    retry = post(idempotent_api, "/pipelines/from-intent", INTENT, WHET_KEY)

    assert failed.status_code == 503
    assert retry.status_code == 201
    created = idempotent_api.side_effects
    assert [s.kind for s in created] == ["pipeline.created"]
    assert retry.json()["pipeline_id"] == created[0].resource_id
    assert retry.json()["run_id"] == created[0].detail["run_id"]


@pytest.mark.idempotency(variant="moda", error_after_keeps_record=False)
def test_moda_error_after_keeps_record_false_lets_the_retry_create_again(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.error_after_commit(500)

    post(idempotent_api, "/v1/tasks", MODA_TASK, "k-1")
    post(idempotent_api, "/v1/tasks", MODA_TASK, "k-1")

    idempotent_api.assert_side_effects(2)


@pytest.mark.idempotency(variant="phantom")
def test_phantom_keeps_its_rule_5xx_are_not_cached_and_the_retry_runs_again(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.error_after_commit(500)
    body = {"user_id": "123", "delta": 500}

    post(idempotent_api, "/api/v1/economy/adjust", body, "adj-1")
    post(idempotent_api, "/api/v1/economy/adjust", body, "adj-1")

    idempotent_api.assert_side_effects(2)


# -- the standalone server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantom_server() -> Iterator[Standalone]:
    """A standalone ``phantom`` server process."""
    server = Standalone("--variant=phantom")
    try:
        yield server
    finally:
        server.close()


def test_standalone_refuses_the_huge_delta_and_goes_on_serving(
    phantom_server: Standalone,
) -> None:
    url = f"http://127.0.0.1:{phantom_server.port}"
    phantom = get_variant("phantom")
    headers = {"Authorization": f"Bearer {phantom.example_credential}", "Idempotency-Key": "a-1"}
    body = '{"user_id": "123", "delta": ' + str(HUGE) + "}"
    with httpx.Client(base_url=url, timeout=5) as client:
        client.post("/__admin/reset", json={})
        refused = client.post(
            "/api/v1/economy/adjust",
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        fine = client.post(
            "/api/v1/economy/adjust",
            json={"user_id": "123", "delta": 5},
            headers={**headers, "Idempotency-Key": "a-2"},
        )
        effects = client.get("/__admin/side-effects").json()["count"]
    err = phantom_server.close()
    assert 400 <= refused.status_code < 500
    assert fine.status_code == 200
    assert effects == 1
    assert "Traceback" not in err, err
