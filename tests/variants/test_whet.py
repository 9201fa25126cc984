"""The Whet variant: every rule of the Whet idempotency page, against a real socket.

Source: docs/sources/whet.txt. The contract table is docs/variants/whet.md.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import pytest
import requests

pytestmark = pytest.mark.idempotency(variant="whet")

TIMEOUT = 5.0  # a safety net against a hung test, never a wait
KEY = "7d1f0c6e2b9a4c3d8e5f6a7b8c9d0e1f"  # a UUIDv4 without dashes: 32 hex characters
OTHER_KEY = "0b6c1a2d3e4f45a6b7c8d9e0f1a2b3c4"
INTENT = {"handle": "growth_dr", "intent": "Track for analytical drafts, daily."}


def post(
    api: Any, path: str, body: dict[str, Any] | None = None, *, key: str | None = None, **kw: Any
) -> requests.Response:
    kwargs = api.request_kwargs(body or {}, key=key, credential=kw.pop("credential", None))
    return requests.post(api.url_for(path), timeout=TIMEOUT, **kwargs, **kw)


def get(api: Any, path: str, **kw: Any) -> requests.Response:
    headers = api.headers(credential=kw.pop("credential", None))
    return requests.get(api.url_for(path), headers=headers, timeout=TIMEOUT, **kw)


def from_intent(api: Any, body: dict[str, Any] = INTENT, **kw: Any) -> requests.Response:
    return post(api, "/pipelines/from-intent", body, **kw)


def first_post_id(api: Any, pipeline_id: str) -> str:
    inbox = get(api, f"/pipelines/{pipeline_id}/inbox").json()
    return str(inbox["data"][0]["post_id"])


def an_artifact(api: Any) -> str:
    pipeline = from_intent(api).json()
    drafted = post(api, f"/posts/{first_post_id(api, pipeline['pipeline_id'])}/draft")
    return str(drafted.json()["artifact_id"])


def an_account(api: Any, handle: str = "growth_dr") -> str:
    connected = post(api, "/accounts/connect", {"provider": "bluesky", "handle": handle})
    return str(connected.json()["account_id"])


def effects(api: Any, kind: str) -> int:
    return len([s for s in api.side_effects if s.kind == kind])


# -- replays ---------------------------------------------------------------------------------------


def test_whet_from_intent_creates_a_pipeline_and_starts_a_run(idempotent_api):
    response = from_intent(idempotent_api, key=KEY)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["object"] == "pipeline"
    assert body["pipeline_id"].startswith("pl_")
    assert body["run_id"].startswith("run_")
    assert get(idempotent_api, f"/runs/{body['run_id']}").json()["status"] == "running"
    idempotent_api.assert_exactly_once(kind="pipeline.created")


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_whet_replay_returns_the_same_pipeline_id_and_run_id_and_repeats_no_side_effect(
    idempotent_api, client
):
    url = idempotent_api.url_for("/pipelines/from-intent")
    kwargs = idempotent_api.request_kwargs(INTENT, key=KEY)
    send = requests.post if client == "requests" else httpx.post

    first = send(url, timeout=TIMEOUT, **kwargs)
    replay = send(url, timeout=TIMEOUT, **kwargs)

    assert first.status_code == replay.status_code == 201
    assert replay.json()["pipeline_id"] == first.json()["pipeline_id"]
    assert replay.json()["run_id"] == first.json()["run_id"]
    assert replay.content == first.content
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_replayed(seq=2)


def test_whet_replay_of_draft_returns_the_same_artifact(idempotent_api):
    pipeline = from_intent(idempotent_api).json()
    post_id = first_post_id(idempotent_api, pipeline["pipeline_id"])

    first = post(idempotent_api, f"/posts/{post_id}/draft", {"instructions": "short"}, key=KEY)
    replay = post(idempotent_api, f"/posts/{post_id}/draft", {"instructions": "short"}, key=KEY)

    assert first.status_code == replay.status_code == 201
    assert replay.json()["artifact_id"] == first.json()["artifact_id"]
    idempotent_api.assert_exactly_once(kind="artifact.drafted")


def test_whet_draft_accepts_a_request_without_a_body(idempotent_api):
    pipeline = from_intent(idempotent_api).json()
    post_id = first_post_id(idempotent_api, pipeline["pipeline_id"])

    response = requests.post(
        idempotent_api.url_for(f"/posts/{post_id}/draft"),
        headers=idempotent_api.headers(),
        timeout=TIMEOUT,
    )

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "draft"
    idempotent_api.assert_exactly_once(kind="artifact.drafted")


def test_whet_replay_of_publish_returns_the_same_artifact_published_once(idempotent_api):
    artifact_id, account_id = an_artifact(idempotent_api), an_account(idempotent_api)
    path = f"/artifacts/{artifact_id}/publish"

    first = post(idempotent_api, path, {"account_id": account_id}, key=KEY)
    replay = post(idempotent_api, path, {"account_id": account_id}, key=KEY)

    assert first.status_code == replay.status_code == 200, first.text
    assert replay.content == first.content
    assert replay.json()["status"] == "published"
    idempotent_api.assert_exactly_once(kind="artifact.published")


def test_whet_replay_of_accounts_connect_returns_the_same_account(idempotent_api):
    body = {"provider": "bluesky", "handle": "growth_dr"}

    first = post(idempotent_api, "/accounts/connect", body, key=KEY)
    replay = post(idempotent_api, "/accounts/connect", body, key=KEY)

    assert first.status_code == replay.status_code == 201
    assert replay.json()["account_id"] == first.json()["account_id"]
    idempotent_api.assert_exactly_once(kind="account.connected")


def test_whet_lost_response_then_retry_with_the_same_key_creates_one_pipeline(idempotent_api):
    idempotent_api.faults.drop_response()

    with pytest.raises(requests.ConnectionError):
        from_intent(idempotent_api, key=KEY)
    retry = from_intent(idempotent_api, key=KEY)

    assert retry.status_code == 201
    (pipeline,) = idempotent_api.resources.all("org_example", "pipeline")
    assert retry.json()["pipeline_id"] == pipeline["pipeline_id"]
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_replayed(seq=2)


# -- runs and in-flight duplicates -----------------------------------------------------------------


def test_whet_replay_while_the_original_run_is_still_running_returns_its_run_id(idempotent_api):
    first = from_intent(idempotent_api, key=KEY).json()
    assert get(idempotent_api, f"/runs/{first['run_id']}").json()["status"] == "running"

    replay = from_intent(idempotent_api, key=KEY)

    assert replay.status_code == 201  # not 409: "There is no 409 idempotency_request_in_progress"
    assert replay.json()["run_id"] == first["run_id"]
    assert replay.json()["pipeline_id"] == first["pipeline_id"]
    assert get(idempotent_api, f"/runs/{first['run_id']}").json()["status"] == "running"
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_never_saw("in_flight")


def test_whet_run_is_running_until_the_fake_clock_passes_120_seconds_chosen(idempotent_api):
    run_id = from_intent(idempotent_api, key=KEY).json()["run_id"]

    idempotent_api.clock.advance(seconds=119)
    still = get(idempotent_api, f"/runs/{run_id}").json()
    idempotent_api.clock.advance(seconds=1)
    done = get(idempotent_api, f"/runs/{run_id}").json()
    replay = from_intent(idempotent_api, key=KEY)

    assert (still["status"], still["finished_at"]) == ("running", None)
    assert done["status"] == "succeeded"
    assert done["finished_at"] is not None
    assert replay.json()["run_id"] == run_id
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="whet", extra={"run_seconds": 5})
def test_whet_run_duration_override_through_the_marker(idempotent_api):
    run_id = from_intent(idempotent_api).json()["run_id"]

    idempotent_api.clock.advance(seconds=5)

    assert get(idempotent_api, f"/runs/{run_id}").json()["status"] == "succeeded"


def test_whet_http_duplicate_in_flight_waits_and_gets_the_original_answer(idempotent_api):
    hold = idempotent_api.faults.hold()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        original = pool.submit(from_intent, idempotent_api, key=KEY)
        hold.wait_until_held()
        duplicate = pool.submit(from_intent, idempotent_api, key=KEY)
        idempotent_api.wait_for_requests(2)
        with pytest.raises(concurrent.futures.TimeoutError):
            duplicate.result(timeout=0.3)  # no 409 in progress: it waits for the original
        hold.release()
        first, second = original.result(), duplicate.result()

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_never_saw("in_flight")


# -- key format and scope --------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 15, 129, 300])
def test_whet_key_outside_16_to_128_characters_returns_validation_failed(idempotent_api, length):
    response = from_intent(idempotent_api, key="k" * length)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert "idempotency_key" in error["message"]
    assert str(length) in error["message"]
    idempotent_api.assert_side_effects(0)


@pytest.mark.parametrize("length", [16, 32, 128])
def test_whet_key_of_16_to_128_characters_is_accepted(idempotent_api, length):
    first = from_intent(idempotent_api, key="k" * length)
    replay = from_intent(idempotent_api, key="k" * length)

    assert first.status_code == replay.status_code == 201
    assert replay.json()["pipeline_id"] == first.json()["pipeline_id"]
    idempotent_api.assert_exactly_once()


def test_whet_key_outside_printable_ascii_returns_validation_failed(idempotent_api):
    response = from_intent(idempotent_api, key="clé-idempotence-0001")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    idempotent_api.assert_side_effects(0)


def test_whet_optional_key_on_fetch_is_still_length_checked(idempotent_api):
    body = {"url": "https://example.com/a", "intent": "summarize"}

    response = post(idempotent_api, "/fetch", body, key="short-key")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"
    idempotent_api.assert_side_effects(0)


def test_whet_same_key_on_two_endpoints_is_two_operations(idempotent_api):
    pipeline = from_intent(idempotent_api, key=KEY)
    account = post(
        idempotent_api, "/accounts/connect", {"provider": "x", "handle": "growth_dr"}, key=KEY
    )

    assert pipeline.status_code == account.status_code == 201
    assert "account_id" in account.json()
    idempotent_api.assert_exactly_once(kind="pipeline.created")
    idempotent_api.assert_exactly_once(kind="account.connected")


def test_whet_same_key_on_two_posts_is_two_drafts_chosen_endpoint_is_the_concrete_path(
    idempotent_api,
):
    one = first_post_id(idempotent_api, from_intent(idempotent_api).json()["pipeline_id"])
    two = first_post_id(idempotent_api, from_intent(idempotent_api).json()["pipeline_id"])

    first = post(idempotent_api, f"/posts/{one}/draft", key=KEY)
    second = post(idempotent_api, f"/posts/{two}/draft", key=KEY)

    assert first.json()["post_id"] == one
    assert second.json()["post_id"] == two
    assert effects(idempotent_api, "artifact.drafted") == 2


def test_whet_two_organizations_never_collide(idempotent_api):
    acme = from_intent(idempotent_api, key=KEY, credential="org_acme.token_1")
    globex = from_intent(idempotent_api, key=KEY, credential="org_globex.token_1")

    assert acme.status_code == globex.status_code == 201
    assert acme.json()["pipeline_id"] != globex.json()["pipeline_id"]
    assert effects(idempotent_api, "pipeline.created") == 2


def test_whet_two_tokens_of_one_organization_share_keys_chosen(idempotent_api):
    first = from_intent(idempotent_api, key=KEY, credential="org_acme.token_1")
    replay = from_intent(idempotent_api, key=KEY, credential="org_acme.token_2")

    assert replay.json()["pipeline_id"] == first.json()["pipeline_id"]
    idempotent_api.assert_exactly_once()


# -- keys are not bound to the body ----------------------------------------------------------------


def test_whet_same_key_different_valid_body_replays_the_original(idempotent_api):
    first = from_intent(idempotent_api, key=KEY)
    other = from_intent(idempotent_api, {"handle": "other", "intent": "Weekly."}, key=KEY)

    assert other.status_code == 201
    assert other.content == first.content
    assert other.json()["handle"] == "growth_dr"
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_never_saw("conflict")


@pytest.mark.idempotency(variant="whet", assert_all_bodies_were_valid=False)
def test_whet_same_key_different_invalid_body_returns_validation_failed(idempotent_api):
    first = from_intent(idempotent_api, key=KEY)
    invalid = from_intent(idempotent_api, {"handle": "growth_dr"}, key=KEY)

    assert first.status_code == 201
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert error["code"] == "validation_failed"
    assert "intent" in error["message"]
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="whet", assert_all_bodies_were_valid=False)
def test_whet_invalid_body_gets_422_validation_failed_and_is_not_stored(idempotent_api):
    invalid = from_intent(idempotent_api, {"intent": "x"}, key=KEY)
    valid = from_intent(idempotent_api, key=KEY)

    assert invalid.status_code == 422
    assert set(invalid.json()["error"]) == {"code", "message", "request_id"}
    assert valid.status_code == 201
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="whet", assert_all_bodies_were_valid=False)
def test_whet_body_that_is_not_json_gets_422_not_500(idempotent_api):
    response = requests.post(
        idempotent_api.url_for("/pipelines/from-intent"),
        data=b"{not json",
        headers={**idempotent_api.headers(), "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


def test_whet_4xx_answer_is_not_stored_so_a_fixed_retry_succeeds(idempotent_api):
    artifact_id = an_artifact(idempotent_api)
    path = f"/artifacts/{artifact_id}/publish"

    refused = post(idempotent_api, path, {"account_id": "acct_missing"}, key=KEY)
    account_id = an_account(idempotent_api)
    retried = post(idempotent_api, path, {"account_id": account_id}, key=KEY)

    assert refused.status_code == 422
    assert "POST /accounts/connect" in refused.json()["error"]["message"]
    assert retried.status_code == 200
    assert retried.json()["account_id"] == account_id
    idempotent_api.assert_exactly_once(kind="artifact.published")


def test_whet_invariants_still_apply_to_a_new_key(idempotent_api):
    artifact_id, account_id = an_artifact(idempotent_api), an_account(idempotent_api)
    path = f"/artifacts/{artifact_id}/publish"

    post(idempotent_api, path, {"account_id": account_id}, key=KEY)
    again = post(idempotent_api, path, {"account_id": account_id}, key=OTHER_KEY)
    reconnect = post(
        idempotent_api, "/accounts/connect", {"provider": "bluesky", "handle": "growth_dr"}
    )

    assert again.status_code == 422
    assert "already published" in again.json()["error"]["message"]
    assert reconnect.status_code == 422
    assert "already connected" in reconnect.json()["error"]["message"]
    idempotent_api.assert_exactly_once(kind="artifact.published")


# -- GET, PATCH and DELETE ignore the field --------------------------------------------------------


def test_whet_get_ignores_the_idempotency_key(idempotent_api):
    pipeline_id = from_intent(idempotent_api).json()["pipeline_id"]
    params = {"idempotency_key": KEY}

    before = get(idempotent_api, f"/pipelines/{pipeline_id}", params=params)
    requests.patch(
        idempotent_api.url_for(f"/pipelines/{pipeline_id}"),
        **idempotent_api.request_kwargs({"status": "paused"}),
        timeout=TIMEOUT,
    )
    after = get(idempotent_api, f"/pipelines/{pipeline_id}", params=params)
    inbox = get(idempotent_api, f"/pipelines/{pipeline_id}/inbox", params=params)

    assert before.json()["status"] == "active"
    assert after.json()["status"] == "paused"  # fresh, not a replay of the first GET
    assert inbox.status_code == 200
    assert len(inbox.json()["data"]) == 1


def test_whet_patch_ignores_the_idempotency_key(idempotent_api):
    pipeline_id = from_intent(idempotent_api).json()["pipeline_id"]
    url = idempotent_api.url_for(f"/pipelines/{pipeline_id}")

    first = requests.patch(
        url, **idempotent_api.request_kwargs({"intent": "Daily."}, key="x"), timeout=TIMEOUT
    )
    second = requests.patch(
        url, **idempotent_api.request_kwargs({"intent": "Weekly."}, key="x"), timeout=TIMEOUT
    )

    assert first.status_code == second.status_code == 200  # a 1-char key is not even checked
    assert first.json()["intent"] == "Daily."
    assert second.json()["intent"] == "Weekly."
    assert effects(idempotent_api, "pipeline.updated") == 2


def test_whet_delete_ignores_the_idempotency_key(idempotent_api):
    pipeline_id = from_intent(idempotent_api).json()["pipeline_id"]
    url = idempotent_api.url_for(f"/pipelines/{pipeline_id}")
    kwargs = idempotent_api.request_kwargs({}, key=KEY)

    first = requests.delete(url, timeout=TIMEOUT, **kwargs)
    second = requests.delete(url, timeout=TIMEOUT, **kwargs)

    assert first.status_code == 200
    assert first.json()["deleted"] is True
    assert second.status_code == 404  # run again, not a replay of the 200
    assert second.json()["error"]["code"] == "not_found"


# -- records live as long as the resource ----------------------------------------------------------


def test_whet_replay_after_the_resource_is_deleted_returns_404_not_found(idempotent_api):
    pipeline_id = from_intent(idempotent_api, key=KEY).json()["pipeline_id"]
    requests.delete(
        idempotent_api.url_for(f"/pipelines/{pipeline_id}"),
        headers=idempotent_api.headers(),
        timeout=TIMEOUT,
    )

    replay = from_intent(idempotent_api, key=KEY)

    assert replay.status_code == 404
    error = replay.json()["error"]
    assert error["code"] == "not_found"
    assert KEY in error["message"]
    idempotent_api.assert_exactly_once(kind="pipeline.created")
    idempotent_api.assert_saw("gone", count=1)


def test_whet_every_later_replay_after_the_delete_also_returns_404(idempotent_api):
    pipeline_id = from_intent(idempotent_api, key=KEY).json()["pipeline_id"]
    requests.delete(
        idempotent_api.url_for(f"/pipelines/{pipeline_id}"),
        headers=idempotent_api.headers(),
        timeout=TIMEOUT,
    )

    replays = [from_intent(idempotent_api, key=KEY) for _ in range(3)]

    assert [r.status_code for r in replays] == [404, 404, 404]
    assert effects(idempotent_api, "pipeline.created") == 1
    idempotent_api.assert_saw("gone", count=3)


@pytest.mark.idempotency(gone_is_final=False)
def test_whet_gone_is_final_false_lets_the_key_start_a_new_operation(idempotent_api):
    pipeline_id = from_intent(idempotent_api, key=KEY).json()["pipeline_id"]
    requests.delete(
        idempotent_api.url_for(f"/pipelines/{pipeline_id}"),
        headers=idempotent_api.headers(),
        timeout=TIMEOUT,
    )

    gone = from_intent(idempotent_api, key=KEY)
    fresh = from_intent(idempotent_api, key=KEY)

    assert gone.status_code == 404
    assert fresh.status_code == 201
    assert fresh.json()["pipeline_id"] != pipeline_id
    assert effects(idempotent_api, "pipeline.created") == 2


def test_whet_deleting_a_pipeline_ends_the_records_of_its_drafts(idempotent_api):
    pipeline_id = from_intent(idempotent_api).json()["pipeline_id"]
    post_id = first_post_id(idempotent_api, pipeline_id)
    post(idempotent_api, f"/posts/{post_id}/draft", key=KEY)
    requests.delete(
        idempotent_api.url_for(f"/pipelines/{pipeline_id}"),
        headers=idempotent_api.headers(),
        timeout=TIMEOUT,
    )

    replay = post(idempotent_api, f"/posts/{post_id}/draft", key=KEY)

    assert replay.status_code == 404
    assert replay.json()["error"]["code"] == "not_found"
    idempotent_api.assert_exactly_once(kind="artifact.drafted")


def test_whet_replay_after_disconnecting_an_account_returns_404_not_found(idempotent_api):
    body = {"provider": "bluesky", "handle": "growth_dr"}
    account_id = post(idempotent_api, "/accounts/connect", body, key=KEY).json()["account_id"]
    requests.delete(
        idempotent_api.url_for(f"/accounts/{account_id}"),
        headers=idempotent_api.headers(),
        timeout=TIMEOUT,
    )

    replay = post(idempotent_api, "/accounts/connect", body, key=KEY)

    assert replay.status_code == 404
    assert replay.json()["error"]["code"] == "not_found"


def test_whet_record_has_no_ttl_while_the_resource_lives(idempotent_api):
    first = from_intent(idempotent_api, key=KEY)
    idempotent_api.clock.advance(days=365)

    replay = from_intent(idempotent_api, key=KEY)

    assert replay.json()["pipeline_id"] == first.json()["pipeline_id"]
    idempotent_api.assert_exactly_once()


# -- /fetch ----------------------------------------------------------------------------------------


def test_whet_fetch_repeat_url_intent_hits_the_response_cache_without_a_key(idempotent_api):
    body = {"url": "https://example.com/report", "intent": "summarize for analysts"}

    first = post(idempotent_api, "/fetch", body)
    again = post(idempotent_api, "/fetch", body)
    other_intent = post(idempotent_api, "/fetch", {**body, "intent": "extract quotes"})

    assert first.status_code == again.status_code == 200
    assert again.json()["fetch_id"] == first.json()["fetch_id"]
    assert other_intent.json()["fetch_id"] != first.json()["fetch_id"]
    assert effects(idempotent_api, "fetch.performed") == 2


def test_whet_fetch_cache_lasts_3600_seconds_chosen(idempotent_api):
    body = {"url": "https://example.com/report", "intent": "summarize"}

    first = post(idempotent_api, "/fetch", body)
    idempotent_api.clock.advance(seconds=3599)
    cached = post(idempotent_api, "/fetch", body)
    idempotent_api.clock.advance(seconds=1)
    refetched = post(idempotent_api, "/fetch", body)

    assert cached.json()["fetch_id"] == first.json()["fetch_id"]
    assert refetched.json()["fetch_id"] != first.json()["fetch_id"]
    assert effects(idempotent_api, "fetch.performed") == 2


def test_whet_fetch_key_replays_the_original_even_for_another_url(idempotent_api):
    first = post(idempotent_api, "/fetch", {"url": "https://a.example", "intent": "x"}, key=KEY)
    replay = post(idempotent_api, "/fetch", {"url": "https://b.example", "intent": "y"}, key=KEY)

    assert replay.content == first.content
    assert replay.json()["url"] == "https://a.example"
    idempotent_api.assert_exactly_once(kind="fetch.performed")
    idempotent_api.assert_replayed(seq=2)


# -- auth and faults -------------------------------------------------------------------------------


def test_whet_missing_bearer_token_gets_401(idempotent_api):
    response = requests.post(
        idempotent_api.url_for("/pipelines/from-intent"), json=INTENT, timeout=TIMEOUT
    )

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert "Authorization: Bearer" in error["message"]
    idempotent_api.assert_side_effects(0)


@pytest.mark.idempotency(error_after_keeps_record=False)
def test_whet_500_after_commit_is_not_stored_so_the_retry_runs_again_chosen(idempotent_api):
    idempotent_api.faults.error_after_commit(500)

    failed = from_intent(idempotent_api, key=KEY)
    retry = from_intent(idempotent_api, key=KEY)

    assert failed.status_code == 500
    assert retry.status_code == 201
    assert effects(idempotent_api, "pipeline.created") == 2
