"""generic (``generic``): every row of its contract table, over real HTTP.

Contract table: docs/variants/generic.md (no source page: every rule is a choice).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from pytest_idempotency import IdempotentAPI

pytestmark = pytest.mark.idempotency(variant="generic")

THINGS = "/v1/things"


def post(
    api: IdempotentAPI,
    key: str | None,
    body: Any = None,
    *,
    path: str = THINGS,
    token: str | None = None,
) -> httpx.Response:
    headers = api.headers(key, credential=token)
    return httpx.post(
        api.url_for(path), json={"name": "a"} if body is None else body, headers=headers
    )


def test_generic_key_travels_raw_in_the_idempotency_key_header(
    idempotent_api: IdempotentAPI,
) -> None:
    assert idempotent_api.headers("k-1") == {"Idempotency-Key": "k-1"}
    contract = idempotent_api.contract
    assert (contract.key_header, contract.key_field, contract.key_format) == (
        "Idempotency-Key",
        None,
        "raw",
    )
    assert idempotent_api.request_kwargs({"name": "a"}, key="k-1") == {
        "headers": {"Idempotency-Key": "k-1"},
        "json": {"name": "a"},
    }


def test_generic_every_post_honours_the_key_and_an_unkeyed_post_runs_each_time(
    idempotent_api: IdempotentAPI,
) -> None:
    post(idempotent_api, "k-1", path="/anything/at/all")
    post(idempotent_api, "k-1", path="/anything/at/all")
    post(idempotent_api, None)
    post(idempotent_api, None)
    decisions = [e.decision for e in idempotent_api.exchanges]
    assert decisions == ["new", "replayed", "no_key", "no_key"]
    idempotent_api.assert_side_effects(3)


def test_generic_same_key_same_body_replays_byte_for_byte_without_a_replay_header(
    idempotent_api: IdempotentAPI,
) -> None:
    first = post(idempotent_api, "k-1")
    again = post(idempotent_api, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert not any("replay" in name.lower() for name in again.headers)
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_replayed(key="k-1")


def test_generic_same_key_another_body_gets_409_idempotency_key_reused(
    idempotent_api: IdempotentAPI,
) -> None:
    post(idempotent_api, "k-1", {"name": "a"})
    reused = post(idempotent_api, "k-1", {"name": "b"})
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    idempotent_api.assert_exactly_once()
    assert '~ name: "a" -> "b"' in idempotent_api.timeline()


def test_generic_fingerprint_is_canonical_and_includes_the_path(
    idempotent_api: IdempotentAPI,
) -> None:
    url = idempotent_api.url_for(THINGS)
    headers = {"Idempotency-Key": "k-1", "Content-Type": "application/json"}
    assert httpx.post(url, content=b'{"a": 1, "b": 2}', headers=headers).status_code == 201
    assert httpx.post(url, content=b'{"b":2,"a":1}', headers=headers).status_code == 201
    assert post(idempotent_api, "k-1", {"a": 1, "b": 2}, path="/v1/other").status_code == 409
    idempotent_api.assert_exactly_once()


def test_generic_in_flight_duplicate_gets_409_idempotency_key_in_use(
    idempotent_api: IdempotentAPI,
) -> None:
    fault = idempotent_api.faults.hold(path=THINGS)
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            original = pool.submit(post, idempotent_api, "k-1")
            fault.wait_until_held()
            duplicate = post(idempotent_api, "k-1")
        finally:
            fault.release()
        assert original.result().status_code == 201
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "idempotency_key_in_use"
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_generic_keeps_2xx_and_4xx_but_not_5xx(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.faults.error_after_commit(status=500)
    assert post(idempotent_api, "k-1").status_code == 500
    assert post(idempotent_api, "k-1").status_code == 201  # the key was free: it ran again
    idempotent_api.assert_side_effects(2, key="k-1")
    missing = httpx.get(idempotent_api.url_for("/v1/things/obj_999999"))
    assert missing.status_code == 404  # a GET: not keyed, nothing stored
    bad = {"Idempotency-Key": "k-2", "Content-Type": "application/json"}
    url = idempotent_api.url_for(THINGS)
    first = httpx.post(url, content=b"{bad", headers=bad)
    assert first.status_code == 400
    assert httpx.post(url, content=b"{bad", headers=bad).content == first.content
    idempotent_api.assert_replayed(key="k-2")


def test_generic_ttl_is_24_hours_on_the_fake_clock(idempotent_api: IdempotentAPI) -> None:
    post(idempotent_api, "k-1")
    idempotent_api.clock.advance(hours=23, minutes=59)
    post(idempotent_api, "k-1")
    idempotent_api.assert_replayed(key="k-1")
    idempotent_api.clock.advance(minutes=1)
    post(idempotent_api, "k-1")
    idempotent_api.assert_fresh(key="k-1")
    idempotent_api.assert_side_effects(2)


def test_generic_keys_are_1_to_255_printable_ascii_characters(
    idempotent_api: IdempotentAPI,
) -> None:
    assert post(idempotent_api, "k" * 255).status_code == 201
    too_long = post(idempotent_api, "k" * 256)
    assert too_long.status_code == 400
    error = too_long.json()["error"]
    assert error["code"] == "invalid_idempotency_key"
    assert "it must be at most 255" in error["message"]


def test_generic_keys_are_scoped_per_credential(idempotent_api: IdempotentAPI) -> None:
    assert idempotent_api.credential is None
    a = post(idempotent_api, "k-1")
    b = post(idempotent_api, "k-1", token="other-token")
    assert a.json()["id"] != b.json()["id"]
    idempotent_api.assert_side_effects(2, key="k-1")


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_generic_reads_json_and_form_bodies_and_refuses_malformed_json_with_400(
    idempotent_api: IdempotentAPI,
) -> None:
    form = httpx.post(
        idempotent_api.url_for(THINGS), data={"name": "f"}, headers={"Idempotency-Key": "k-1"}
    )
    assert form.status_code == 201
    assert form.json()["name"] == "f"
    broken = httpx.post(
        idempotent_api.url_for(THINGS),
        content=b"{bad",
        headers={"Idempotency-Key": "k-2", "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "validation_failed"
    assert [check for check, _ in idempotent_api.problems()] == ["assert_all_bodies_were_valid"]
    big = httpx.post(idempotent_api.url_for(THINGS), json={"x": "y" * 1_100_000})
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "request_too_large"


@pytest.mark.idempotency(assert_all_requests_were_expected=False)
def test_generic_a_method_no_route_serves_gets_405_marked_unexpected(
    idempotent_api: IdempotentAPI,
) -> None:
    response = httpx.put(idempotent_api.url_for("/v1/things/1"), json={})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["X-Pytest-Idempotency-Error"] == "unexpected-request"
    [(check, _)] = idempotent_api.problems()
    assert check == "assert_all_requests_were_expected"  # what the marker above turns off
    assert idempotent_api.problems([check]) == []


def test_generic_get_returns_the_created_object_by_its_id(idempotent_api: IdempotentAPI) -> None:
    created = post(idempotent_api, "k-1", {"name": "a"}).json()
    assert created["object"] == "object"
    assert created["id"].startswith("obj_")
    fetched = httpx.get(idempotent_api.url_for(f"{THINGS}/{created['id']}"))
    assert fetched.json() == created
    listed = post(idempotent_api, "k-2", [1, 2]).json()
    assert listed["value"] == [1, 2]
    method, url, params = idempotent_api.example()
    assert (method, url, params) == ("POST", idempotent_api.url_for(THINGS), {"name": "example"})
