"""The Moda variant: every rule of the Moda idempotency page, against a real socket.

Source: docs/sources/moda.txt. The contract table is docs/variants/moda.md.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
from typing import Any

import httpx
import pytest
import requests

pytestmark = pytest.mark.idempotency(variant="moda")

TIMEOUT = 5.0  # a safety net against a hung test, never a wait
TASK = {
    "prompt": "Weekly focus-time deck",
    "format": {"category": "slides", "width": 1920, "height": 1080},
    "number_of_slides": 10,
}
CONFLICT_MESSAGE = (
    "An existing task is associated with idempotency_key 'focustime-v1' but with a "
    "different request body."
)
UUID_LIKE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def post(api: Any, path: str, body: dict[str, Any], *, key: str | None = None, **kw: Any) -> Any:
    """POST with requests; the key (if any) goes in the body field, as Moda wants."""
    kwargs = api.request_kwargs(body, key=key, credential=kw.pop("credential", None))
    return requests.post(api.url_for(path), timeout=TIMEOUT, **kwargs, **kw)


def post_task(api: Any, body: dict[str, Any] = TASK, **kw: Any) -> Any:
    return post(api, "/v1/tasks", body, **kw)


def tasks_created(api: Any) -> int:
    return len([s for s in api.side_effects if s.kind == "task.created"])


# -- the key on POST /v1/tasks -----------------------------------------------------------------


def test_moda_first_call_creates_the_task_and_returns_its_envelope(idempotent_api):
    response = post_task(idempotent_api, key="focustime-v1")

    assert response.status_code == 201, response.text
    task = response.json()
    assert task["object"] == "task"
    assert task["id"].startswith("task_")
    assert task["idempotency_key"] == "focustime-v1"
    assert task["prompt"] == TASK["prompt"]
    idempotent_api.assert_exactly_once(kind="task.created")


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_moda_same_key_identical_body_returns_same_envelope_without_replay_marker(
    idempotent_api, client
):
    url = idempotent_api.url_for("/v1/tasks")
    kwargs = idempotent_api.request_kwargs(TASK, key="focustime-v1")
    send = requests.post if client == "requests" else httpx.post

    first = send(url, timeout=TIMEOUT, **kwargs)
    second = send(url, timeout=TIMEOUT, **kwargs)

    assert first.status_code == second.status_code == 201
    assert second.content == first.content  # the same envelope, the same id
    assert second.json()["id"] == first.json()["id"]
    assert {h.lower() for h in second.headers} == {h.lower() for h in first.headers}
    assert not [h for h in second.headers if "replay" in h.lower() or "idempot" in h.lower()]
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_replayed(seq=2)


def test_moda_same_key_different_body_returns_409_idempotency_conflict(idempotent_api):
    first = post_task(idempotent_api, key="focustime-v1")
    other = {**TASK, "prompt": "Weekly focus-time deck, 9am edition"}

    response = post_task(idempotent_api, other, key="focustime-v1")

    assert first.status_code == 201
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "code", "message", "request_id"}
    assert error["type"] == "conflict"
    assert error["code"] == "idempotency_conflict"
    assert error["message"] == CONFLICT_MESSAGE
    assert UUID_LIKE.match(error["request_id"]), error["request_id"]
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_saw("conflict", count=1)


def test_moda_fingerprint_is_raw_bytes_so_reordered_json_conflicts(idempotent_api):
    headers = {**idempotent_api.headers(), "Content-Type": "application/json"}
    one = json.dumps({"prompt": "Deck", "number_of_slides": 3, "idempotency_key": "deck-raw-1"})
    reordered = json.dumps(
        {"number_of_slides": 3, "prompt": "Deck", "idempotency_key": "deck-raw-1"}
    )
    url = idempotent_api.url_for("/v1/tasks")

    first = requests.post(url, data=one, headers=headers, timeout=TIMEOUT)
    same_bytes = requests.post(url, data=one, headers=headers, timeout=TIMEOUT)
    other_bytes = requests.post(url, data=reordered, headers=headers, timeout=TIMEOUT)

    assert first.status_code == 201
    assert same_bytes.json()["id"] == first.json()["id"]
    assert other_bytes.status_code == 409
    assert other_bytes.json()["error"]["code"] == "idempotency_conflict"
    idempotent_api.assert_exactly_once()


def test_moda_same_json_from_another_http_client_is_not_byte_identical_and_conflicts(
    idempotent_api,
):
    # requests writes {"a": 1} (spaces), httpx writes {"a":1}: equal JSON, different bytes.
    url = idempotent_api.url_for("/v1/tasks")
    kwargs = idempotent_api.request_kwargs(TASK, key="weekly-deck:2026-W17")

    first = requests.post(url, timeout=TIMEOUT, **kwargs)
    second = httpx.post(url, timeout=TIMEOUT, **kwargs)

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_conflict"


@pytest.mark.idempotency(variant="moda", fingerprint="canonical")
def test_moda_canonical_fingerprint_override_accepts_reordered_json(idempotent_api):
    headers = {**idempotent_api.headers(), "Content-Type": "application/json"}
    url = idempotent_api.url_for("/v1/tasks")
    one = json.dumps({"prompt": "Deck", "number_of_slides": 3, "idempotency_key": "deck-c-1"})
    two = json.dumps({"number_of_slides": 3, "idempotency_key": "deck-c-1", "prompt": "Deck"})

    first = requests.post(url, data=one, headers=headers, timeout=TIMEOUT)
    second = requests.post(url, data=two, headers=headers, timeout=TIMEOUT)

    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    idempotent_api.assert_exactly_once()


def test_moda_keys_are_per_api_key(idempotent_api):
    mine = post_task(idempotent_api, key="weekly-deck:2026-W17", credential="moda_key_team_a")
    theirs = post_task(idempotent_api, key="weekly-deck:2026-W17", credential="moda_key_team_b")

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert tasks_created(idempotent_api) == 2


def test_moda_idempotency_key_header_is_ignored_so_a_header_only_retry_duplicates(
    idempotent_api,
):
    headers = {**idempotent_api.headers(), "Idempotency-Key": "focustime-v1"}
    url = idempotent_api.url_for("/v1/tasks")

    first = requests.post(url, json=TASK, headers=headers, timeout=TIMEOUT)
    retry = requests.post(url, json=TASK, headers=headers, timeout=TIMEOUT)

    assert first.status_code == retry.status_code == 201
    assert first.json()["id"] != retry.json()["id"]
    assert first.json()["idempotency_key"] is None
    assert tasks_created(idempotent_api) == 2


def test_moda_without_a_key_every_post_creates_a_task(idempotent_api):
    first = post_task(idempotent_api)
    second = post_task(idempotent_api)

    assert first.json()["id"] != second.json()["id"]
    assert tasks_created(idempotent_api) == 2


def test_moda_bulk_fan_out_rerun_with_the_same_keys_creates_nothing_new(idempotent_api):
    prospects = ["p1", "p2", "p3", "p4", "p5"]
    with httpx.Client(base_url=idempotent_api.url, timeout=TIMEOUT) as client:

        def run() -> list[str]:
            ids = []
            for prospect in prospects:
                body = {"prompt": f"One-pager for {prospect}"}
                kwargs = idempotent_api.request_kwargs(
                    body, key=f"prospect:{prospect}:2026-04-weekly"
                )
                ids.append(client.post("/v1/tasks", **kwargs).json()["id"])
            return ids

        first_run, rerun = run(), run()

    assert rerun == first_run
    assert len(set(first_run)) == 5
    assert tasks_created(idempotent_api) == 5


# -- TTL (unspecified by Moda: chosen 24 h) -------------------------------------------------------


def test_moda_ttl_chosen_24_hours_replays_before_and_creates_after(idempotent_api):
    first = post_task(idempotent_api, key="weekly-deck:2026-W17")
    idempotent_api.clock.advance(hours=23, minutes=59)
    within = post_task(idempotent_api, key="weekly-deck:2026-W17")
    idempotent_api.clock.advance(minutes=1)
    after = post_task(idempotent_api, key="weekly-deck:2026-W17")

    assert within.json()["id"] == first.json()["id"]
    assert after.status_code == 201
    assert after.json()["id"] != first.json()["id"]
    assert tasks_created(idempotent_api) == 2


@pytest.mark.idempotency(variant="moda", ttl=60)
def test_moda_ttl_override_through_the_marker(idempotent_api):
    first = post_task(idempotent_api, key="weekly-deck:2026-W17")
    idempotent_api.clock.advance(seconds=61)
    after = post_task(idempotent_api, key="weekly-deck:2026-W17")

    assert after.json()["id"] != first.json()["id"]
    assert tasks_created(idempotent_api) == 2


# -- other endpoints -------------------------------------------------------------------------------


def test_moda_task_can_be_read_back_with_get(idempotent_api):
    created = post_task(idempotent_api, key="focustime-v1").json()

    response = requests.get(
        idempotent_api.url_for(f"/v1/tasks/{created['id']}"),
        headers=idempotent_api.headers(),
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    assert response.json() == created


def test_moda_get_task_of_another_api_key_is_404_task_not_found(idempotent_api):
    created = post_task(idempotent_api, credential="moda_key_team_a").json()

    response = requests.get(
        idempotent_api.url_for(f"/v1/tasks/{created['id']}"),
        headers=idempotent_api.headers(credential="moda_key_team_b"),
        timeout=TIMEOUT,
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "task_not_found"
    assert response.json()["error"]["type"] == "not_found"


def test_moda_brand_kits_same_url_twice_creates_two_extract_tasks(idempotent_api):
    # Even with an idempotency_key in the body: only POST /v1/tasks takes it.
    body = {"url": "https://acme.example", "idempotency_key": "brand-kit-acme"}

    first = post(idempotent_api, "/v1/brand-kits", body)
    second = post(idempotent_api, "/v1/brand-kits", body)

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["extract_task_id"] != second.json()["extract_task_id"]
    idempotent_api.assert_side_effects(2, kind="brand_kit_extract.created")
    for kit in (first.json(), second.json()):
        task = requests.get(
            idempotent_api.url_for(f"/v1/tasks/{kit['extract_task_id']}"),
            headers=idempotent_api.headers(),
            timeout=TIMEOUT,
        ).json()
        assert task["kind"] == "brand_kit_extract"


def test_moda_uploads_dedupe_by_content_hash_with_was_duplicate_true(idempotent_api):
    content = base64.b64encode(b"%PDF-1.7 quarterly numbers").decode()

    first = post(idempotent_api, "/v1/uploads", {"filename": "q3.pdf", "content_base64": content})
    again = post(
        idempotent_api, "/v1/uploads", {"filename": "q3-copy.pdf", "content_base64": content}
    )

    assert first.status_code == 201
    assert first.json()["was_duplicate"] is False
    assert again.status_code == 200
    assert again.json()["was_duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    idempotent_api.assert_exactly_once(kind="upload.created")


def test_moda_uploads_with_other_content_are_new_uploads(idempotent_api):
    one = base64.b64encode(b"first file").decode()
    two = base64.b64encode(b"second file").decode()

    first = post(idempotent_api, "/v1/uploads", {"filename": "a.txt", "content_base64": one})
    second = post(idempotent_api, "/v1/uploads", {"filename": "a.txt", "content_base64": two})

    assert second.json()["was_duplicate"] is False
    assert second.json()["id"] != first.json()["id"]
    idempotent_api.assert_side_effects(2, kind="upload.created")


def test_moda_uploads_dedupe_is_per_api_key_chosen(idempotent_api):
    content = base64.b64encode(b"shared logo").decode()
    body = {"filename": "logo.png", "content_base64": content}

    mine = post(idempotent_api, "/v1/uploads", body, credential="moda_key_team_a")
    theirs = post(idempotent_api, "/v1/uploads", body, credential="moda_key_team_b")

    assert mine.json()["was_duplicate"] is theirs.json()["was_duplicate"] is False
    idempotent_api.assert_side_effects(2, kind="upload.created")


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.idempotency(variant="moda", assert_all_bodies_were_valid=False)
def test_moda_invalid_body_gets_422_validation_error_and_is_not_stored(idempotent_api):
    invalid = post_task(idempotent_api, {"number_of_slides": 0}, key="focustime-v1")
    valid = post_task(idempotent_api, key="focustime-v1")

    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request", "validation_error")
    assert "prompt" in error["message"] or "number_of_slides" in error["message"]
    assert valid.status_code == 201  # the key was not burned by the invalid body
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="moda", assert_all_bodies_were_valid=False)
def test_moda_body_that_is_not_json_gets_422_not_500(idempotent_api):
    response = requests.post(
        idempotent_api.url_for("/v1/tasks"),
        data=b"prompt=hello&idempotency_key=x",
        headers={**idempotent_api.headers(), "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    idempotent_api.assert_side_effects(0)


@pytest.mark.parametrize("key", ["", "x" * 256, "clé-non-ascii"])
def test_moda_unusable_key_gets_422_validation_error(idempotent_api, key):
    response = post_task(idempotent_api, key=key)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "idempotency_key" in error["message"]
    idempotent_api.assert_side_effects(0)


def test_moda_missing_api_key_gets_401_in_the_moda_envelope(idempotent_api):
    response = requests.post(idempotent_api.url_for("/v1/tasks"), json=TASK, timeout=TIMEOUT)

    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("authentication", "invalid_api_key")
    assert "Authorization: Bearer" in error["message"]
    assert UUID_LIKE.match(error["request_id"])
    idempotent_api.assert_side_effects(0)


# -- failures in flight ----------------------------------------------------------------------------


def test_moda_lost_response_then_retry_with_the_same_key_creates_one_task(idempotent_api):
    idempotent_api.faults.drop_response()

    with pytest.raises(requests.ConnectionError):
        post_task(idempotent_api, key="weekly-deck:2026-W17")
    retry = post_task(idempotent_api, key="weekly-deck:2026-W17")

    assert retry.status_code == 201
    (task,) = idempotent_api.resources.all(idempotent_api.credential, "task")
    assert retry.json()["id"] == task["id"]
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_replayed(seq=2)


def test_moda_duplicate_in_flight_waits_for_the_original_and_gets_the_same_task(idempotent_api):
    hold = idempotent_api.faults.hold()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        original = pool.submit(post_task, idempotent_api, key="slack:T01234:123456.789")
        hold.wait_until_held()
        duplicate = pool.submit(post_task, idempotent_api, key="slack:T01234:123456.789")
        idempotent_api.wait_for_requests(2)
        with pytest.raises(concurrent.futures.TimeoutError):
            duplicate.result(timeout=0.3)  # no immediate 409: it waits for the original
        hold.release()
        first, second = original.result(), duplicate.result()

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="moda", on_in_flight="reject")
def test_moda_in_flight_reject_override_returns_409_idempotency_in_progress(idempotent_api):
    hold = idempotent_api.faults.hold()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        original = pool.submit(post_task, idempotent_api, key="slack:T01234:123456.789")
        hold.wait_until_held()
        duplicate = post_task(idempotent_api, key="slack:T01234:123456.789")
        hold.release()
        first = original.result()

    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_in_progress"
    assert duplicate.json()["error"]["type"] == "conflict"
    assert first.status_code == 201
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(error_after_keeps_record=False)
def test_moda_500_after_commit_is_not_cached_so_the_retry_creates_again(idempotent_api):
    idempotent_api.faults.error_after_commit(500)

    failed = post_task(idempotent_api, key="weekly-deck:2026-W17")
    retry = post_task(idempotent_api, key="weekly-deck:2026-W17")

    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "api_error"
    assert retry.status_code == 201
    assert tasks_created(idempotent_api) == 2
