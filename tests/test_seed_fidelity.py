"""Seed-page rules that a line-by-line reading found the fake breaking, and the choices the
pages leave open, each with its override. Real sockets, real clients.

Contract tables: docs/variants/whet.md, moda.md, letmepost.md.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Any

import httpx
import pytest
import requests

TIMEOUT = 5.0  # a safety net against a hung test, never a wait
KEY = "7d1f0c6e2b9a4c3d8e5f6a7b8c9d0e1f"
FRESH = "0b6c1a2d3e4f45a6b7c8d9e0f1a2b3c4"
INTENT = {"handle": "growth_dr", "intent": "Track for analytical drafts, daily."}

whet = pytest.mark.idempotency(variant="whet")


def post(api: Any, path: str, body: dict[str, Any] | None = None, *, key: str | None = None):
    kwargs = api.request_kwargs(body or {}, key=key)
    return requests.post(api.url_for(path), timeout=TIMEOUT, **kwargs)


def get(api: Any, path: str) -> requests.Response:
    return requests.get(api.url_for(path), headers=api.headers(), timeout=TIMEOUT)


def effects(api: Any, kind: str) -> int:
    return len([s for s in api.side_effects if s.kind == kind])


def an_artifact(api: Any) -> str:
    pipeline = post(api, "/pipelines/from-intent", INTENT).json()
    inbox = get(api, f"/pipelines/{pipeline['pipeline_id']}/inbox").json()
    drafted = post(api, f"/posts/{inbox['data'][0]['post_id']}/draft")
    return str(drafted.json()["artifact_id"])


def an_account(api: Any, handle: str) -> str:
    connected = post(api, "/accounts/connect", {"provider": "bluesky", "handle": handle})
    return str(connected.json()["account_id"])


# -- 1. Whet: a duplicate while the original is in flight -----------------------------------------


@whet
def test_whet_duplicate_of_a_held_from_intent_returns_at_once_with_the_original_ids(
    idempotent_api,
):
    hold = idempotent_api.faults.hold()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        original = pool.submit(post, idempotent_api, "/pipelines/from-intent", INTENT, key=KEY)
        hold.wait_until_held()
        duplicate = post(idempotent_api, "/pipelines/from-intent", INTENT, key=KEY)
        run = get(idempotent_api, f"/runs/{duplicate.json()['run_id']}")  # "Poll that run"
        hold.release()
        first = original.result(timeout=TIMEOUT)

    assert duplicate.status_code == 201, duplicate.text  # never 409 in progress
    assert (run.status_code, run.json()["status"]) == (200, "running")
    assert first.status_code == 201
    assert duplicate.content == first.content  # same pipeline_id, run_id, timestamps
    idempotent_api.assert_exactly_once(kind="pipeline.created")
    idempotent_api.assert_never_saw("in_flight")
    idempotent_api.assert_replayed(seq=2)


@whet
def test_whet_ids_handed_to_a_duplicate_die_with_an_original_lost_in_a_restart(idempotent_api):
    hold = idempotent_api.faults.hold()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        original = pool.submit(post, idempotent_api, "/pipelines/from-intent", INTENT, key=KEY)
        hold.wait_until_held()
        told = post(idempotent_api, "/pipelines/from-intent", INTENT, key=KEY).json()
        idempotent_api.restart()
        with pytest.raises(requests.ConnectionError):
            original.result(timeout=TIMEOUT)
    assert idempotent_api.journal[0].finished.wait(TIMEOUT)

    run = get(idempotent_api, f"/runs/{told['run_id']}")
    retry = post(idempotent_api, "/pipelines/from-intent", INTENT, key=KEY)

    assert run.status_code == 404  # the original never created it
    assert retry.status_code == 201
    assert retry.json()["pipeline_id"] != told["pipeline_id"]
    idempotent_api.assert_exactly_once(kind="pipeline.created")


@whet
def test_whet_duplicate_of_a_held_connect_waits_and_replays_never_409(idempotent_api):
    hold = idempotent_api.faults.hold()
    body = {"provider": "bluesky", "handle": "growth_dr"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        original = pool.submit(post, idempotent_api, "/accounts/connect", body, key=KEY)
        hold.wait_until_held()
        duplicate = pool.submit(post, idempotent_api, "/accounts/connect", body, key=KEY)
        idempotent_api.wait_for_requests(2)
        hold.release()
        first, second = original.result(TIMEOUT), duplicate.result(TIMEOUT)

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    idempotent_api.assert_exactly_once(kind="account.connected")
    idempotent_api.assert_never_saw("in_flight")


@pytest.mark.idempotency(variant="whet", on_in_flight="reject")
def test_whet_on_in_flight_reject_override_gives_409_in_progress(idempotent_api):
    hold = idempotent_api.faults.hold()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        original = pool.submit(post, idempotent_api, "/pipelines/from-intent", INTENT, key=KEY)
        hold.wait_until_held()
        duplicate = post(idempotent_api, "/pipelines/from-intent", INTENT, key=KEY)
        hold.release()
        original.result(timeout=TIMEOUT)

    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_request_in_progress"


# -- 2. Whet: the same key with another body ------------------------------------------------------


@whet
def test_whet_reused_key_publishing_to_another_account_gets_422_like_a_fresh_key(
    idempotent_api,
):
    artifact = an_artifact(idempotent_api)
    first_account, other_account = an_account(idempotent_api, "a"), an_account(idempotent_api, "b")
    publish = f"/artifacts/{artifact}/publish"
    first = post(idempotent_api, publish, {"account_id": first_account}, key=KEY)

    fresh = post(idempotent_api, publish, {"account_id": other_account}, key=FRESH)
    reused = post(idempotent_api, publish, {"account_id": other_account}, key=KEY)
    replay = post(idempotent_api, publish, {"account_id": first_account}, key=KEY)

    assert first.status_code == 200
    assert (fresh.status_code, fresh.json()["error"]["code"]) == (422, "validation_failed")
    assert (reused.status_code, reused.json()["error"]["code"]) == (422, "validation_failed")
    assert "already published" in reused.json()["error"]["message"]
    assert replay.content == first.content
    idempotent_api.assert_exactly_once(kind="artifact.published")
    assert idempotent_api.journal[-2].decision == "rejected"


@whet
def test_whet_reused_key_publishing_to_an_unknown_account_gets_422(idempotent_api):
    artifact = an_artifact(idempotent_api)
    account = an_account(idempotent_api, "a")
    publish = f"/artifacts/{artifact}/publish"
    post(idempotent_api, publish, {"account_id": account}, key=KEY)

    reused = post(idempotent_api, publish, {"account_id": "acct_nope"}, key=KEY)

    assert reused.status_code == 422
    assert "not a connected account" in reused.json()["error"]["message"]


@whet
def test_whet_reused_key_connecting_another_handle_replays_unless_it_is_taken(idempotent_api):
    taken = an_account(idempotent_api, "taken")
    first = post(idempotent_api, "/accounts/connect", {"provider": "x", "handle": "a"}, key=KEY)

    other = post(idempotent_api, "/accounts/connect", {"provider": "x", "handle": "b"}, key=KEY)
    clash = post(
        idempotent_api, "/accounts/connect", {"provider": "bluesky", "handle": "taken"}, key=KEY
    )

    assert first.status_code == 201
    assert other.content == first.content  # keys are not bound to the body
    assert clash.status_code == 422
    assert taken in clash.json()["error"]["message"]
    assert effects(idempotent_api, "account.connected") == 2  # "taken" and "a"


@whet
def test_whet_fetch_with_a_reused_key_and_another_url_is_refused_not_the_first_content(
    idempotent_api,
):
    first = post(idempotent_api, "/fetch", {"url": "https://a.example", "intent": "x"}, key=KEY)
    other = post(idempotent_api, "/fetch", {"url": "https://b.example", "intent": "x"}, key=KEY)
    same = post(idempotent_api, "/fetch", {"url": "https://a.example", "intent": "x"}, key=KEY)

    assert (other.status_code, other.json()["error"]["code"]) == (422, "validation_failed")
    message = other.json()["error"]["message"]
    assert "https://a.example" in message
    assert "https://b.example" in message
    assert "new idempotency_key" in message
    assert same.content == first.content
    idempotent_api.assert_exactly_once(kind="fetch.performed")


@pytest.mark.idempotency(variant="whet", on_mismatch="replay")
def test_whet_on_mismatch_replay_override_replays_without_checking(idempotent_api):
    artifact = an_artifact(idempotent_api)
    first_account, other_account = an_account(idempotent_api, "a"), an_account(idempotent_api, "b")
    publish = f"/artifacts/{artifact}/publish"
    first = post(idempotent_api, publish, {"account_id": first_account}, key=KEY)
    reused = post(idempotent_api, publish, {"account_id": other_account}, key=KEY)

    assert reused.content == first.content


# -- 4. the questionable choices, each with an override -------------------------------------------


@pytest.mark.idempotency(variant="letmepost")
def test_letmepost_all_targets_failed_stays_207_by_default(idempotent_api):
    body = {"targets": [{"accountId": "disconnected_a"}], "text": "shipped"}
    response = post(idempotent_api, "/v1/posts", body, key=str(uuid.uuid4()))

    assert (response.status_code, response.json()["status"]) == (207, "failed")


@pytest.mark.idempotency(variant="letmepost", extra={"all_failed_status": 502})
def test_letmepost_all_failed_status_override(idempotent_api):
    key = str(uuid.uuid4())
    failed = {"targets": [{"accountId": "disconnected_a"}], "text": "shipped"}
    partial = {"targets": [{"accountId": "acc_a"}, {"accountId": "disconnected_b"}], "text": "x"}

    response = post(idempotent_api, "/v1/posts", failed, key=key)
    replay = post(idempotent_api, "/v1/posts", failed, key=key)
    mixed = post(idempotent_api, "/v1/posts", partial, key=str(uuid.uuid4()))

    assert (response.status_code, response.json()["status"]) == (502, "failed")
    assert replay.content == response.content  # LetMePost caches every status class
    assert mixed.status_code == 207


@pytest.mark.idempotency(
    variant="letmepost", extra={"all_failed_status": 302}, assert_fake_never_failed=False
)
def test_letmepost_bad_all_failed_status_gets_a_clear_error(idempotent_api):
    body = {"targets": [{"accountId": "disconnected_a"}], "text": "shipped"}
    response = post(idempotent_api, "/v1/posts", body, key=str(uuid.uuid4()))

    assert response.status_code == 400
    assert "all_failed_status" in response.text


@pytest.mark.idempotency(variant="whet", scope=("credential", "route"))
def test_whet_scope_route_override_shares_a_key_across_posts_of_one_template(idempotent_api):
    pipeline = post(idempotent_api, "/pipelines/from-intent", INTENT).json()
    second = post(idempotent_api, "/pipelines/from-intent", INTENT).json()
    posts = [
        get(idempotent_api, f"/pipelines/{p['pipeline_id']}/inbox").json()["data"][0]["post_id"]
        for p in (pipeline, second)
    ]

    first = post(idempotent_api, f"/posts/{posts[0]}/draft", key=KEY)
    other = post(idempotent_api, f"/posts/{posts[1]}/draft", key=KEY)

    assert other.content == first.content
    idempotent_api.assert_exactly_once(kind="artifact.drafted")


@pytest.mark.parametrize(
    ("variant", "path", "body", "code"),
    [
        ("moda", "/v1/tasks", {"prompt": "hello"}, "validation_error"),
        ("whet", "/pipelines/from-intent", INTENT, "validation_failed"),
    ],
)
def test_json_apis_refuse_a_form_encoded_body_naming_the_option(
    idempotent_api, variant, path, body, code
):
    idempotent_api.reset(variant=variant)
    response = requests.post(
        idempotent_api.url_for(path),
        data={**body, "idempotency_key": KEY},
        headers=idempotent_api.headers(),
        timeout=TIMEOUT,
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code
    assert "application/json" in error["message"]
    assert "form_bodies" in error["message"]
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(variant="moda", extra={"form_bodies": True})
def test_moda_form_bodies_override_accepts_them(idempotent_api):
    url = idempotent_api.url_for("/v1/tasks")
    data = {"prompt": "hello", "idempotency_key": KEY}
    first = httpx.post(url, data=data, headers=idempotent_api.headers(), timeout=TIMEOUT)
    again = httpx.post(url, data=data, headers=idempotent_api.headers(), timeout=TIMEOUT)

    assert first.status_code == 201, first.text
    assert again.content == first.content
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="letmepost", assert_all_bodies_were_valid=False)
def test_letmepost_refuses_a_form_encoded_body(idempotent_api):
    response = requests.post(
        idempotent_api.url_for("/v1/posts"),
        data={"targets[0][accountId]": "acc_a", "text": "shipped"},
        headers=idempotent_api.headers(str(uuid.uuid4())),
        timeout=TIMEOUT,
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(variant="moda")
def test_moda_null_idempotency_key_is_treated_as_absent(idempotent_api):
    body = {"prompt": "hello", "idempotency_key": None}
    url = idempotent_api.url_for("/v1/tasks")
    first = requests.post(url, json=body, headers=idempotent_api.headers(), timeout=TIMEOUT)
    second = requests.post(url, json=body, headers=idempotent_api.headers(), timeout=TIMEOUT)

    assert first.status_code == second.status_code == 201, first.text
    assert first.json()["idempotency_key"] is None
    assert first.json()["id"] != second.json()["id"]  # no key, no dedupe
    assert [e.decision for e in idempotent_api.journal] == ["no_key", "no_key"]


@pytest.mark.idempotency(variant="moda", null_key="reject", assert_all_bodies_were_valid=False)
def test_moda_null_key_reject_override_gives_422(idempotent_api):
    body = {"prompt": "hello", "idempotency_key": None}
    response = requests.post(
        idempotent_api.url_for("/v1/tasks"), json=body, headers=idempotent_api.headers()
    )

    assert response.status_code == 422
    assert "idempotency_key must be a string" in response.json()["error"]["message"]
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(variant="whet", scope=("credential",))
def test_whet_in_flight_key_of_another_endpoint_is_not_answered_as_a_pipeline(idempotent_api):
    hold = idempotent_api.faults.hold()
    body = {"provider": "bluesky", "handle": "growth_dr"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        original = pool.submit(post, idempotent_api, "/accounts/connect", body, key=KEY)
        hold.wait_until_held()
        duplicate = pool.submit(post, idempotent_api, "/pipelines/from-intent", INTENT, key=KEY)
        idempotent_api.journal.wait_for(
            lambda j: len(j) >= 2 and j[1].attempt is not None, what="the duplicate's key"
        )
        hold.release()
        first, second = original.result(TIMEOUT), duplicate.result(TIMEOUT)

    assert second.content == first.content  # it waited and got the account, not a pipeline
    assert second.json()["object"] == "account"
    idempotent_api.assert_side_effects(0, kind="pipeline.created")
