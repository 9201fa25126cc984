"""Phantom (``phantom``): every rule of its idempotency page, over real HTTP.

Source: docs/sources/phantom.txt; contract table: docs/variants/phantom.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import requests

from pytest_idempotency import IdempotentAPI

pytestmark = pytest.mark.idempotency(variant="phantom")

ADJUST = "/api/v1/economy/adjust"
PRIZE = {"user_id": "123", "delta": 500, "reason": "Tournament prize"}
OTHER_TOKEN = "phk_live_0a1b2c3d4e5f6789"


def new_key() -> str:
    return str(uuid.uuid4())


def adjust(
    api: IdempotentAPI, body: dict[str, Any], key: str | None, token: str | None = None
) -> requests.Response:
    return requests.post(api.url_for(ADJUST), json=body, headers=api.headers(key, credential=token))


def balance(api: IdempotentAPI, user_id: str = "123", token: str | None = None) -> int:
    response = requests.get(
        api.url_for(f"/api/v1/economy/balance/{user_id}"), headers=api.headers(credential=token)
    )
    assert response.status_code == 200
    value: int = response.json()["balance"]
    return value


def open_case(api: IdempotentAPI) -> str:
    response = requests.post(
        api.url_for("/api/v1/cases"),
        json={"member_id": "42", "reason": "spam", "action": "warn"},
        headers=api.headers(new_key()),
    )
    assert response.status_code == 201
    case_id: str = response.json()["id"]
    return case_id


@contextmanager
def background() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


# -- replay ----------------------------------------------------------------------------------


def test_phantom_same_key_same_body_replays_cached_response_with_idempotent_replay_true(
    idempotent_api: IdempotentAPI,
) -> None:
    key = "7c52a3f0-3b8c-4e3d-aa1c-c8a7f4d4c121"
    first = adjust(idempotent_api, PRIZE, key)
    second = adjust(idempotent_api, PRIZE, key)

    assert first.status_code == 200
    assert "Idempotent-Replay" not in first.headers
    assert second.status_code == 200
    assert second.headers["Idempotent-Replay"] == "true"
    assert second.content == first.content
    idempotent_api.assert_exactly_once(key=key)
    assert balance(idempotent_api) == 500


def test_phantom_replay_does_not_run_the_handler(idempotent_api: IdempotentAPI) -> None:
    key = new_key()
    with httpx.Client(base_url=idempotent_api.url) as client:
        responses = [
            client.post(ADJUST, json=PRIZE, headers=idempotent_api.headers(key)) for _ in range(3)
        ]
    assert [r.headers.get("Idempotent-Replay") for r in responses] == [None, "true", "true"]
    assert len({r.json()["id"] for r in responses}) == 1
    idempotent_api.assert_side_effects(1, kind="economy.adjusted")
    idempotent_api.assert_saw("replayed", key=key)
    assert balance(idempotent_api) == 500


def test_phantom_retried_warning_with_the_same_key_warns_the_member_once(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    url = idempotent_api.url_for("/api/v1/members/42/warnings")
    for _ in range(2):
        response = requests.post(
            url, json={"reason": "spam", "moderator_id": "7"}, headers=idempotent_api.headers(key)
        )
        assert response.status_code == 201
    listed = requests.get(url, headers=idempotent_api.headers())
    assert len(listed.json()["data"]) == 1
    idempotent_api.assert_exactly_once(kind="warning.created")


# -- conflicts and fingerprint ---------------------------------------------------------------


def test_phantom_same_key_different_body_returns_409_idempotency_key_reused(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    with httpx.Client(base_url=idempotent_api.url) as client:
        first = client.post(ADJUST, json=PRIZE, headers=idempotent_api.headers(key))
        reused = client.post(
            ADJUST, json={**PRIZE, "delta": 600}, headers=idempotent_api.headers(key)
        )
    assert first.status_code == 200
    assert reused.status_code == 409
    error = reused.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert key in error["message"]
    assert error["request_id"].startswith("req_")
    assert "Idempotent-Replay" not in reused.headers
    idempotent_api.assert_exactly_once()
    assert balance(idempotent_api) == 500


def test_phantom_fingerprint_includes_method_and_path_so_another_path_is_409(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    body = {"reason": "spam"}
    first = requests.post(
        idempotent_api.url_for("/api/v1/members/1/warnings"),
        json=body,
        headers=idempotent_api.headers(key),
    )
    other_path = requests.post(
        idempotent_api.url_for("/api/v1/members/2/warnings"),
        json=body,
        headers=idempotent_api.headers(key),
    )
    assert first.status_code == 201
    assert other_path.status_code == 409
    assert other_path.json()["error"]["code"] == "idempotency_key_reused"
    idempotent_api.assert_exactly_once(kind="warning.created")


def test_phantom_fingerprint_hashes_the_body_bytes_so_reformatted_json_is_409(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    headers = {**idempotent_api.headers(key), "Content-Type": "application/json"}
    compact = json.dumps(PRIZE, separators=(",", ":"))
    spaced = json.dumps(dict(reversed(PRIZE.items())), indent=2)
    with httpx.Client(base_url=idempotent_api.url, headers=headers) as client:
        first = client.post(ADJUST, content=compact)
        reformatted = client.post(ADJUST, content=spaced)
    assert first.status_code == 200
    assert reformatted.status_code == 409
    assert reformatted.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.idempotency(variant="phantom", fingerprint="canonical")
def test_phantom_fingerprint_override_canonical_replays_reformatted_json(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    headers = {**idempotent_api.headers(key), "Content-Type": "application/json"}
    with httpx.Client(base_url=idempotent_api.url, headers=headers) as client:
        first = client.post(ADJUST, content=json.dumps(PRIZE, separators=(",", ":")))
        again = client.post(ADJUST, content=json.dumps(dict(reversed(PRIZE.items())), indent=2))
    assert again.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    assert again.content == first.content
    idempotent_api.assert_exactly_once()


# -- which methods, the key itself -----------------------------------------------------------


def test_phantom_key_is_optional_and_each_unkeyed_write_runs(
    idempotent_api: IdempotentAPI,
) -> None:
    first = adjust(idempotent_api, PRIZE, None)
    second = adjust(idempotent_api, PRIZE, None)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["id"] != second.json()["id"]
    idempotent_api.assert_side_effects(2, kind="economy.adjusted")
    assert balance(idempotent_api) == 1000


def test_phantom_get_and_head_ignore_the_key(idempotent_api: IdempotentAPI) -> None:
    ignored = "k" * 200  # would be refused (over 128) where the key counts
    url = idempotent_api.url_for("/api/v1/economy/balance/123")
    before = requests.get(url, headers=idempotent_api.headers(ignored))
    adjust(idempotent_api, PRIZE, new_key())
    after = requests.get(url, headers=idempotent_api.headers(ignored))
    head = requests.head(url, headers=idempotent_api.headers(ignored))

    assert before.status_code == 200
    assert before.json()["balance"] == 0
    assert after.status_code == 200
    assert after.json()["balance"] == 500  # not a replay of the first GET
    assert "Idempotent-Replay" not in after.headers
    assert head.status_code == 200
    assert head.content == b""
    idempotent_api.assert_never_saw(["replayed", "invalid_key"])


def test_phantom_patch_honours_the_key(idempotent_api: IdempotentAPI) -> None:
    case_id = open_case(idempotent_api)
    key = new_key()
    url = idempotent_api.url_for(f"/api/v1/cases/{case_id}")
    first = requests.patch(url, json={"status": "closed"}, headers=idempotent_api.headers(key))
    second = requests.patch(url, json={"status": "closed"}, headers=idempotent_api.headers(key))
    assert first.status_code == 200
    assert first.json()["status"] == "closed"
    assert second.headers["Idempotent-Replay"] == "true"
    assert second.content == first.content
    idempotent_api.assert_exactly_once(kind="case.updated")


def test_phantom_put_honours_the_key(idempotent_api: IdempotentAPI) -> None:
    case_id = open_case(idempotent_api)
    key = new_key()
    url = idempotent_api.url_for(f"/api/v1/cases/{case_id}/assignee")
    with httpx.Client() as client:
        first = client.put(url, json={"moderator_id": "7"}, headers=idempotent_api.headers(key))
        second = client.put(url, json={"moderator_id": "7"}, headers=idempotent_api.headers(key))
    assert first.status_code == 200
    assert first.json()["assignee"] == "7"
    assert second.headers["Idempotent-Replay"] == "true"
    idempotent_api.assert_exactly_once(kind="case.assigned")


def test_phantom_delete_honours_the_key_and_replays_instead_of_404(
    idempotent_api: IdempotentAPI,
) -> None:
    case_id = open_case(idempotent_api)
    key = new_key()
    url = idempotent_api.url_for(f"/api/v1/cases/{case_id}")
    first = requests.delete(url, headers=idempotent_api.headers(key))
    replay = requests.delete(url, headers=idempotent_api.headers(key))
    unkeyed = requests.delete(url, headers=idempotent_api.headers())
    assert first.status_code == 200
    assert first.json() == {"id": case_id, "object": "case", "deleted": True}
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replay"] == "true"
    assert unkeyed.status_code == 404
    assert unkeyed.json()["error"]["code"] == "not_found"
    idempotent_api.assert_exactly_once(kind="case.deleted")


def test_phantom_key_of_128_characters_is_accepted_and_129_is_rejected_with_400(
    idempotent_api: IdempotentAPI,
) -> None:
    longest = adjust(idempotent_api, PRIZE, "a" * 128)
    too_long = adjust(idempotent_api, PRIZE, "b" * 129)
    assert longest.status_code == 200
    assert too_long.status_code == 400
    error = too_long.json()["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert "at most 128" in error["message"]
    idempotent_api.assert_exactly_once()


def test_phantom_keys_are_scoped_to_token_and_key(idempotent_api: IdempotentAPI) -> None:
    key = new_key()
    mine = adjust(idempotent_api, PRIZE, key)
    theirs = adjust(idempotent_api, {**PRIZE, "delta": 900}, key, token=OTHER_TOKEN)
    assert mine.status_code == 200
    assert theirs.status_code == 200  # not a 409: the other token's key space is separate
    assert "Idempotent-Replay" not in theirs.headers
    idempotent_api.assert_side_effects(2, key=key)
    assert balance(idempotent_api) == 500
    assert balance(idempotent_api, token=OTHER_TOKEN) == 900


# -- what gets cached ------------------------------------------------------------------------


def test_phantom_4xx_is_cached_and_replayed_even_after_the_state_changed(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    spend = {"user_id": "123", "delta": -300, "reason": "shop"}
    refused = adjust(idempotent_api, spend, key)
    adjust(idempotent_api, PRIZE, new_key())  # now the spend would succeed if it ran again
    retry = adjust(idempotent_api, spend, key)

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "insufficient_balance"
    assert retry.status_code == 422
    assert retry.headers["Idempotent-Replay"] == "true"
    assert retry.content == refused.content
    assert balance(idempotent_api) == 500


@pytest.mark.idempotency(variant="phantom", assert_all_bodies_were_valid=False)
def test_phantom_validation_error_is_cached_so_replay_returns_the_same_400(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    broken = {"user_id": "123", "delta": "five hundred"}
    first = adjust(idempotent_api, broken, key)
    replay = adjust(idempotent_api, broken, key)
    fixed = adjust(idempotent_api, PRIZE, key)

    assert first.status_code == 400
    error = first.json()["error"]
    assert error["code"] == "validation_error"
    assert "delta" in error["message"]
    assert replay.status_code == 400
    assert replay.headers["Idempotent-Replay"] == "true"
    assert replay.content == first.content
    assert fixed.status_code == 409  # the key is spent on the broken body: pick a new key
    assert fixed.json()["error"]["code"] == "idempotency_key_reused"
    assert idempotent_api.side_effects == []


@pytest.mark.idempotency(variant="phantom", assert_all_bodies_were_valid=False)
def test_phantom_malformed_json_gets_400_validation_error_not_500(
    idempotent_api: IdempotentAPI,
) -> None:
    headers = {**idempotent_api.headers(new_key()), "Content-Type": "application/json"}
    response = requests.post(
        idempotent_api.url_for(ADJUST), data=b'{"user_id": "123", "delta": ', headers=headers
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert idempotent_api.side_effects == []


@pytest.mark.idempotency(
    variant="phantom", validate_before_idempotency=True, assert_all_bodies_were_valid=False
)
def test_phantom_validation_override_refuses_before_the_cache(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    broken = adjust(idempotent_api, {"user_id": "123"}, key)
    fixed = adjust(idempotent_api, PRIZE, key)
    assert broken.status_code == 400
    assert fixed.status_code == 200
    assert "Idempotent-Replay" not in fixed.headers
    idempotent_api.assert_exactly_once()


def test_phantom_5xx_is_not_cached_so_the_retry_runs_the_handler_again(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    idempotent_api.faults.error_after_commit(500)
    failed = adjust(idempotent_api, PRIZE, key)
    retry = adjust(idempotent_api, PRIZE, key)
    third = adjust(idempotent_api, PRIZE, key)

    assert failed.status_code == 500
    assert retry.status_code == 200
    assert "Idempotent-Replay" not in retry.headers
    assert third.headers["Idempotent-Replay"] == "true"
    # the 5xx came after the side effect: Phantom documents that the retry runs it again
    idempotent_api.assert_side_effects(2, key=key)
    assert balance(idempotent_api) == 1000


def test_phantom_ttl_is_24_hours_then_the_same_key_runs_again(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    first = adjust(idempotent_api, PRIZE, key)
    idempotent_api.clock.advance(hours=23, minutes=59)
    within = adjust(idempotent_api, PRIZE, key)
    idempotent_api.clock.advance(minutes=1)  # 24 hours after the first request
    after = adjust(idempotent_api, PRIZE, key)

    assert within.headers["Idempotent-Replay"] == "true"
    assert within.content == first.content
    assert after.status_code == 200
    assert "Idempotent-Replay" not in after.headers
    assert after.json()["id"] != first.json()["id"]
    idempotent_api.assert_side_effects(2, key=key)
    assert balance(idempotent_api) == 1000


# -- in flight, lost responses, credentials --------------------------------------------------


def test_phantom_in_flight_duplicate_gets_409_idempotency_key_in_use(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    fault = idempotent_api.faults.hold(path=ADJUST)
    with background() as pool:
        try:
            original: Future[requests.Response] = pool.submit(adjust, idempotent_api, PRIZE, key)
            fault.wait_until_held()
            duplicate = adjust(idempotent_api, PRIZE, key)
        finally:
            fault.release()
        first = original.result()

    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_key_in_use"
    assert first.status_code == 200
    idempotent_api.assert_exactly_once()
    assert balance(idempotent_api) == 500


@pytest.mark.idempotency(variant="phantom", on_in_flight="wait")
def test_phantom_in_flight_override_wait_replays_the_original(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    fault = idempotent_api.faults.hold(path=ADJUST)
    with background() as pool:
        try:
            original = pool.submit(adjust, idempotent_api, PRIZE, key)
            fault.wait_until_held()
            duplicate = pool.submit(adjust, idempotent_api, PRIZE, key)
            idempotent_api.wait_for_requests(2)
        finally:
            fault.release()
        first, second = original.result(), duplicate.result()

    assert first.status_code == 200
    assert second.status_code == 200
    assert second.headers["Idempotent-Replay"] == "true"
    assert second.content == first.content
    idempotent_api.assert_exactly_once()


def test_phantom_lost_response_then_retry_with_the_same_key_is_exactly_once(
    idempotent_api: IdempotentAPI,
) -> None:
    key = new_key()
    idempotent_api.faults.drop_response(path=ADJUST)
    with pytest.raises(requests.exceptions.ConnectionError):
        adjust(idempotent_api, PRIZE, key)
    retry = adjust(idempotent_api, PRIZE, key)
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Replay"] == "true"
    idempotent_api.assert_exactly_once()
    assert balance(idempotent_api) == 500


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer sk_live_abc", "Bearer phk_live_", "Basic cGhrX2xpdmVfYWJj", "Bearer phk_dev_1"],
)
def test_phantom_missing_or_malformed_token_gets_401(
    idempotent_api: IdempotentAPI, authorization: str | None
) -> None:
    headers = {"Idempotency-Key": new_key()}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = requests.post(idempotent_api.url_for(ADJUST), json=PRIZE, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert "phk_live_" in error["message"]
    assert idempotent_api.side_effects == []


# -- portable pieces -------------------------------------------------------------------------


def test_phantom_example_operation_creates_exactly_one_side_effect(
    idempotent_api: IdempotentAPI,
) -> None:
    method, url, params = idempotent_api.example()
    key = new_key()
    first = requests.request(method, url, **idempotent_api.request_kwargs(params, key=key))
    again = requests.request(method, url, **idempotent_api.request_kwargs(params, key=key))
    assert first.status_code == 200
    assert again.headers["Idempotent-Replay"] == "true"
    idempotent_api.assert_exactly_once()


def test_phantom_contract_reports_the_documented_numbers(idempotent_api: IdempotentAPI) -> None:
    contract = idempotent_api.contract
    assert contract.key_header == "Idempotency-Key"
    assert (contract.conflict_status, contract.conflict_code) == (409, "idempotency_key_reused")
    assert contract.replay_marker == ("Idempotent-Replay", "true")
    assert contract.caches_5xx is False
    assert contract.ttl == 24 * 3600
    assert idempotent_api.policy.key_max_length == 128
