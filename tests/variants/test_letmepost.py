"""LetMePost (``letmepost``): every rule of its idempotency page, over real HTTP.

Source: docs/sources/letmepost.txt; contract table: docs/variants/letmepost.md.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import requests

from pytest_idempotency import Answer, IdempotentAPI

pytestmark = pytest.mark.idempotency(variant="letmepost")

POSTS = "/v1/posts"
PAGE_KEY = "01HY6X4AWBJM2K9F2PTQMRD9JQ"
BATCH: dict[str, Any] = {
    "targets": [
        {"accountId": "acc_twitter"},
        {"accountId": "acc_linkedin"},
        {"accountId": "acc_bluesky"},
    ],
    "text": "shipped",
}
OTHER_API_KEY = "lmp_live_70e1d2c3b4a59687"


def new_key() -> str:
    return str(uuid.uuid4())


def post(
    api: IdempotentAPI, body: Any, key: str | None, api_key: str | None = None
) -> requests.Response:
    return requests.post(
        api.url_for(POSTS), json=body, headers=api.headers(key, credential=api_key)
    )


def published(api: IdempotentAPI) -> list[str]:
    """The account of every real platform call, in order."""
    return [s.detail["accountId"] for s in api.side_effects if s.kind == "post.published"]


def headers_but_date(response: requests.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() != "date"}


def with_targets(*account_ids: str, text: str = "shipped") -> dict[str, Any]:
    return {"targets": [{"accountId": a} for a in account_ids], "text": text}


# -- verbatim replay of the whole batch ------------------------------------------------------


def test_letmepost_retry_with_same_key_returns_the_first_response_verbatim(
    idempotent_api: IdempotentAPI,
) -> None:
    first = post(idempotent_api, BATCH, PAGE_KEY)
    retry = post(idempotent_api, BATCH, PAGE_KEY)

    assert first.status_code == 201
    envelope = first.json()
    assert envelope["status"] == "published"
    assert [r["accountId"] for r in envelope["results"]] == [
        "acc_twitter",
        "acc_linkedin",
        "acc_bluesky",
    ]
    assert {r["status"] for r in envelope["results"]} == {"published"}
    assert retry.status_code == first.status_code
    assert retry.content == first.content  # same envelope, same results[], byte for byte
    assert headers_but_date(retry) == headers_but_date(first)  # no replay marker either
    idempotent_api.assert_replayed(seq=2)


def test_letmepost_each_target_publishes_at_most_once_across_retries(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    with httpx.Client(base_url=idempotent_api.url) as client:
        responses = [
            client.post(POSTS, json=BATCH, headers=idempotent_api.headers(key)) for _ in range(4)
        ]
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert sorted(published(idempotent_api)) == ["acc_bluesky", "acc_linkedin", "acc_twitter"]


def test_letmepost_partial_success_is_207_and_replays_with_the_failed_target_still_failed(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    body = with_targets("acc_twitter", "disconnected_linkedin", "acc_bluesky")
    first = post(idempotent_api, body, key)
    reconnect = requests.patch(
        idempotent_api.url_for("/v1/accounts/disconnected_linkedin"),
        json={"state": "connected"},
        headers=idempotent_api.headers(),
    )
    retry = post(idempotent_api, body, key)

    assert first.status_code == 207
    envelope = first.json()
    assert envelope["status"] == "partially_published"
    assert envelope["summary"] == {"total": 3, "published": 2, "failed": 1}
    failed = envelope["results"][1]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "account_disconnected"
    assert failed["error"]["retryable"] is False
    assert reconnect.status_code == 200
    assert retry.status_code == 207
    assert retry.content == first.content  # the reconnected target is not retried
    assert published(idempotent_api) == ["acc_twitter", "acc_bluesky"]


def test_letmepost_scripted_transient_target_failure_is_replayed_not_retried(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.partial_batch({"acc_linkedin": "transient"}, path=POSTS)
    key = new_key()
    first = post(idempotent_api, BATCH, key)
    retry = post(idempotent_api, BATCH, key)

    assert first.status_code == 207
    result = first.json()["results"][1]
    assert result["accountId"] == "acc_linkedin"
    assert result["status"] == "failed"
    assert result["error"] == {
        "code": "platform_unavailable",
        "message": result["error"]["message"],
        "retryable": True,
    }
    assert retry.status_code == 207
    assert retry.content == first.content
    assert published(idempotent_api) == ["acc_twitter", "acc_bluesky"]


def test_letmepost_rate_limited_account_fails_its_target_as_retryable(
    idempotent_api: IdempotentAPI,
) -> None:
    response = post(idempotent_api, with_targets("rate_limited_x", "acc_b"), new_key())
    assert response.status_code == 207
    error = response.json()["results"][0]["error"]
    assert (error["code"], error["retryable"]) == ("rate_limited", True)
    assert published(idempotent_api) == ["acc_b"]


def test_letmepost_all_targets_failed_is_207_with_status_failed(
    idempotent_api: IdempotentAPI,
) -> None:
    response = post(idempotent_api, with_targets("disconnected_a", "rate_limited_b"), new_key())
    assert response.status_code == 207
    assert response.json()["status"] == "failed"
    assert published(idempotent_api) == []


@pytest.mark.idempotency(variant="letmepost", extra={"partial_status": 200})
def test_letmepost_partial_status_override_through_extra(idempotent_api: IdempotentAPI) -> None:
    partial = post(idempotent_api, with_targets("acc_a", "disconnected_b"), new_key())
    complete = post(idempotent_api, with_targets("acc_c"), new_key())
    assert partial.status_code == 200
    assert partial.json()["status"] == "partially_published"
    assert complete.status_code == 201


@pytest.mark.idempotency(
    variant="letmepost", extra={"partial_status": 500}, assert_fake_never_failed=False
)
def test_letmepost_bad_partial_status_option_gets_a_clear_error_not_a_500(
    idempotent_api: IdempotentAPI,
) -> None:
    response = post(idempotent_api, BATCH, new_key())
    assert response.status_code == 400
    assert "partial_status" in response.text
    assert "207" in response.text
    assert published(idempotent_api) == []


# -- what counts as the same request ---------------------------------------------------------


@pytest.mark.parametrize(
    "changed",
    [
        with_targets("acc_twitter", "acc_linkedin", "acc_bluesky", "acc_mastodon"),  # add D
        with_targets("acc_twitter", "acc_linkedin"),  # remove C
        with_targets("acc_twitter", "acc_threads", "acc_bluesky"),  # swap an accountId
        with_targets("acc_twitter", "acc_linkedin", "acc_bluesky", text="shipped!"),
    ],
    ids=["add-target", "remove-target", "swap-account", "change-text"],
)
def test_letmepost_changed_targets_or_text_is_409_idempotency_conflict(
    idempotent_api: IdempotentAPI, changed: dict[str, Any]
) -> None:
    key = new_key()
    first = post(idempotent_api, BATCH, key)
    conflict = post(idempotent_api, changed, key)
    assert first.status_code == 201
    assert conflict.status_code == 409
    error = conflict.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert key in error["message"]
    assert error["requestId"].startswith("req_")
    assert sorted(published(idempotent_api)) == ["acc_bluesky", "acc_linkedin", "acc_twitter"]


def test_letmepost_body_hash_is_over_the_exact_bytes_so_reordered_json_conflicts(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    headers = {**idempotent_api.headers(key), "Content-Type": "application/json"}
    reordered = json.dumps({"text": BATCH["text"], "targets": BATCH["targets"]})
    with httpx.Client(base_url=idempotent_api.url, headers=headers) as client:
        first = client.post(POSTS, content=json.dumps(BATCH))
        same_bytes = client.post(POSTS, content=json.dumps(BATCH))
        other_bytes = client.post(POSTS, content=reordered)
    assert first.status_code == 201
    assert same_bytes.content == first.content
    assert other_bytes.status_code == 409
    assert other_bytes.json()["error"]["code"] == "idempotency_conflict"


@pytest.mark.idempotency(
    variant="letmepost",
    mismatch=Answer(422, "idempotency_conflict", "Key '{key}' was used with another body."),
)
def test_letmepost_conflict_status_override_through_mismatch_answer(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    post(idempotent_api, BATCH, key)
    conflict = post(idempotent_api, with_targets("acc_twitter"), key)
    assert conflict.status_code == 422
    assert conflict.json()["error"]["code"] == "idempotency_conflict"


def test_letmepost_keys_are_per_api_key(idempotent_api: IdempotentAPI) -> None:
    key = new_key()
    mine = post(idempotent_api, BATCH, key)
    theirs = post(idempotent_api, with_targets("acc_twitter", text="other"), key, OTHER_API_KEY)
    assert mine.status_code == 201
    assert theirs.status_code == 201  # no conflict, no replay: another API key's cache
    assert theirs.json()["id"] != mine.json()["id"]
    assert len(published(idempotent_api)) == 4


def test_letmepost_accounts_are_per_api_key(idempotent_api: IdempotentAPI) -> None:
    created = requests.post(
        idempotent_api.url_for("/v1/accounts"),
        json={"id": "acc_shared_name", "platform": "linkedin", "state": "disconnected"},
        headers=idempotent_api.headers(),
    )
    mine = post(idempotent_api, with_targets("acc_shared_name"), new_key())
    theirs = post(idempotent_api, with_targets("acc_shared_name"), new_key(), OTHER_API_KEY)
    assert created.status_code == 201
    assert mine.json()["results"][0]["status"] == "failed"
    assert theirs.json()["results"][0]["status"] == "published"
    assert [s.tenant for s in idempotent_api.side_effects if s.kind == "post.published"] == [
        OTHER_API_KEY
    ]


def test_letmepost_two_different_keys_with_the_same_body_publish_twice(
    idempotent_api: IdempotentAPI,
) -> None:
    first = post(idempotent_api, BATCH, new_key())
    second = post(idempotent_api, BATCH, new_key())
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert sorted(published(idempotent_api)) == sorted(
        ["acc_twitter", "acc_linkedin", "acc_bluesky"] * 2
    )


def test_letmepost_ttl_is_24_hours_then_the_key_is_fresh(idempotent_api: IdempotentAPI) -> None:
    key = new_key()
    first = post(idempotent_api, BATCH, key)
    idempotent_api.clock.advance(hours=23, minutes=59)
    within = post(idempotent_api, BATCH, key)
    idempotent_api.clock.advance(minutes=1)  # 24 hours after the first request
    after = post(idempotent_api, BATCH, key)

    assert within.content == first.content
    assert after.status_code == 201
    assert after.json()["id"] != first.json()["id"]
    assert len(published(idempotent_api)) == 6


# -- the key itself --------------------------------------------------------------------------


def test_letmepost_without_a_key_every_request_publishes(idempotent_api: IdempotentAPI) -> None:
    post(idempotent_api, BATCH, None)
    post(idempotent_api, BATCH, None)
    assert len(published(idempotent_api)) == 6


@pytest.mark.idempotency(variant="letmepost", key_required_routes=("POST /v1/posts",))
def test_letmepost_key_required_override_refuses_a_post_without_a_key(
    idempotent_api: IdempotentAPI,
) -> None:
    response = post(idempotent_api, BATCH, None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_missing"
    assert published(idempotent_api) == []


def test_letmepost_page_key_is_accepted_and_a_key_over_255_characters_is_400(
    idempotent_api: IdempotentAPI,
) -> None:
    accepted = post(idempotent_api, BATCH, PAGE_KEY)
    longest = post(idempotent_api, with_targets("acc_x"), "k" * 255)
    refused = post(idempotent_api, BATCH, "k" * 256)
    assert accepted.status_code == 201
    assert longest.status_code == 201
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert "at most 255" in error["message"]
    assert len(published(idempotent_api)) == 4


# -- in flight, lost responses, server errors ------------------------------------------------


def test_letmepost_in_flight_duplicate_gets_409_idempotency_in_progress(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    fault = idempotent_api.faults.hold(path=POSTS)
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            original = pool.submit(post, idempotent_api, BATCH, key)
            fault.wait_until_held()
            duplicate = post(idempotent_api, BATCH, key)
        finally:
            fault.release()
        first = original.result()

    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_in_progress"
    assert first.status_code == 201
    assert len(published(idempotent_api)) == 3


@pytest.mark.idempotency(variant="letmepost", on_in_flight="wait")
def test_letmepost_in_flight_override_wait_replays_the_first_response(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    fault = idempotent_api.faults.hold(path=POSTS)
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            original = pool.submit(post, idempotent_api, BATCH, key)
            fault.wait_until_held()
            duplicate = pool.submit(post, idempotent_api, BATCH, key)
            idempotent_api.wait_for_requests(2)
        finally:
            fault.release()
        first, second = original.result(), duplicate.result()

    assert first.status_code == 201
    assert second.content == first.content
    assert len(published(idempotent_api)) == 3


def test_letmepost_lost_response_then_retry_publishes_each_target_once(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    idempotent_api.faults.drop_response(path=POSTS)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(idempotent_api, BATCH, key)
    retry = post(idempotent_api, BATCH, key)
    assert retry.status_code == 201
    idempotent_api.assert_replayed(key=key)
    assert sorted(published(idempotent_api)) == ["acc_bluesky", "acc_linkedin", "acc_twitter"]


def test_letmepost_5xx_after_publishing_is_replayed_so_no_target_publishes_twice(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    idempotent_api.faults.error_after_commit(500, path=POSTS)
    failed = post(idempotent_api, BATCH, key)
    retry = post(idempotent_api, BATCH, key)
    assert failed.status_code == 500
    assert retry.status_code == 500
    assert retry.content == failed.content
    assert len(published(idempotent_api)) == 3


@pytest.mark.idempotency(variant="letmepost", cache_5xx=False)
def test_letmepost_cache_5xx_override_false_lets_the_retry_publish_again(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    idempotent_api.faults.error_after_commit(500, path=POSTS)
    post(idempotent_api, BATCH, key)
    retry = post(idempotent_api, BATCH, key)
    assert retry.status_code == 201
    assert len(published(idempotent_api)) == 6


# -- validation and credentials --------------------------------------------------------------


@pytest.mark.idempotency(variant="letmepost", assert_all_bodies_were_valid=False)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "shipped"}, "targets"),
        ({"targets": [], "text": "shipped"}, "targets"),
        (with_targets("acc_a", "acc_a"), "targets"),  # one target twice in one batch
        ({"targets": [{"account": "acc_a"}], "text": "shipped"}, "accountId"),
        (with_targets("acc_a", text=""), "text"),
        ([1, 2, 3], "object"),
    ],
    ids=["no-targets", "empty-targets", "duplicate-target", "misnamed-field", "empty-text", "list"],
)
def test_letmepost_invalid_body_gets_400_validation_error_and_is_not_stored(
    idempotent_api: IdempotentAPI, body: Any, field: str
) -> None:
    key = new_key()
    invalid = post(idempotent_api, body, key)
    valid = post(idempotent_api, BATCH, key)
    assert invalid.status_code == 400
    error = invalid.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"]
    assert valid.status_code == 201  # the key was not spent on the invalid body
    assert len(published(idempotent_api)) == 3


@pytest.mark.idempotency(variant="letmepost", assert_all_bodies_were_valid=False)
def test_letmepost_malformed_json_gets_400_validation_error_not_500(
    idempotent_api: IdempotentAPI,
) -> None:
    headers = {**idempotent_api.headers(new_key()), "Content-Type": "application/json"}
    response = requests.post(idempotent_api.url_for(POSTS), data=b'{"targets": [', headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer lmp_", "Bearer sk_live_abc", "Token lmp_test_1"]
)
def test_letmepost_missing_or_malformed_api_key_gets_401(
    idempotent_api: IdempotentAPI, authorization: str | None
) -> None:
    headers = {"Idempotency-Key": new_key()}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = requests.post(idempotent_api.url_for(POSTS), json=BATCH, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert "Bearer lmp_" in error["message"]
    assert published(idempotent_api) == []


# -- reading back, portable pieces -----------------------------------------------------------


def test_letmepost_published_post_reads_back_with_its_results(
    idempotent_api: IdempotentAPI,
) -> None:
    created = post(idempotent_api, with_targets("acc_a", "disconnected_b"), new_key())
    post_id = created.json()["id"]
    read = requests.get(
        idempotent_api.url_for(f"/v1/posts/{post_id}"), headers=idempotent_api.headers()
    )
    missing = requests.get(
        idempotent_api.url_for("/v1/posts/post_999999"), headers=idempotent_api.headers()
    )
    assert read.status_code == 200
    assert read.json() == created.json()
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_letmepost_example_operation_creates_exactly_one_side_effect(
    idempotent_api: IdempotentAPI,
) -> None:
    method, url, params = idempotent_api.example()
    key = new_key()
    first = requests.request(method, url, **idempotent_api.request_kwargs(params, key=key))
    again = requests.request(method, url, **idempotent_api.request_kwargs(params, key=key))
    assert first.status_code == 201
    assert again.content == first.content
    idempotent_api.assert_exactly_once()


def test_letmepost_contract_reports_the_documented_numbers(idempotent_api: IdempotentAPI) -> None:
    contract = idempotent_api.contract
    assert contract.key_header == "Idempotency-Key"
    assert contract.conflict_code == "idempotency_conflict"
    assert contract.replay_marker is None
    assert contract.ttl == 24 * 3600
    assert idempotent_api.policy.fingerprint == "raw"
    assert idempotent_api.policy.scope == ("credential", "endpoint")
