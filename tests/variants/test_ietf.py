"""The ``ietf`` preset: one test per rule of the IETF draft "The Idempotency-Key HTTP Header
Field" as the fake implements it (docs/variants/ietf.md), with requests and httpx."""

from __future__ import annotations

import threading

import httpx
import pytest
import requests

from pytest_idempotency.providers.ietf import PROBLEM_TYPE

pytestmark = pytest.mark.idempotency(variant="ietf")

ORDER = {"item": "book", "quantity": 1}
PROBLEM = "application/problem+json"


def create(api, body=ORDER, key: str | None = None, **kwargs) -> requests.Response:
    return requests.post(api.url_for("/orders"), **api.request_kwargs(body, key=key, **kwargs))


def patch(api, order_id: str, body, key: str | None = None) -> requests.Response:
    return requests.patch(api.url_for(f"/orders/{order_id}"), **api.request_kwargs(body, key=key))


def assert_problem(response, status: int, title: str) -> dict:
    __tracebackhide__ = True
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["title"] == title
    assert problem["status"] == status
    assert problem["detail"]
    return problem


# -- the key field -------------------------------------------------------------------------------


def test_ietf_key_is_a_structured_field_string_sent_quoted(idempotent_api):
    key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
    headers = idempotent_api.headers()
    headers["Idempotency-Key"] = f'"{key}"'

    response = requests.post(idempotent_api.url_for("/orders"), json=ORDER, headers=headers)

    assert response.status_code == 201
    assert idempotent_api.exchanges[0].key == key  # the string's value, without the quotes
    idempotent_api.assert_exactly_once(key=key)


def test_ietf_unquoted_key_is_an_invalid_key_400_problem_json(idempotent_api):
    headers = idempotent_api.headers()
    headers["Idempotency-Key"] = "8e03978e-40d5-43e8-bc93-6894a57f9324"

    response = requests.post(idempotent_api.url_for("/orders"), json=ORDER, headers=headers)

    problem = assert_problem(response, 400, "Idempotency-Key is invalid")
    assert problem["type"] == PROBLEM_TYPE
    assert 'Idempotency-Key: "8e03978e' in problem["detail"]  # names the fix
    idempotent_api.assert_side_effects(0)


@pytest.mark.parametrize("sent", ['"a"b"', '"a\\"', '"\\x"', '"caf\u00e9"', '"tab\there"'])
def test_ietf_a_key_that_is_no_structured_field_string_is_an_invalid_key(idempotent_api, sent):
    """RFC 8941 strings escape only ``"`` and ``\\``, and hold printable ASCII: ``"a"b"`` used
    to be read as ``a"b`` and replay the record of the correctly escaped ``"a\\"b"``."""
    headers = [("Authorization", "Bearer client-1"), ("Idempotency-Key", sent.encode("latin-1"))]
    with httpx.Client() as client:
        response = client.post(idempotent_api.url_for("/orders"), json=ORDER, headers=headers)
    problem = assert_problem(response, 400, "Idempotency-Key is invalid")
    assert "RFC 8941" in problem["detail"]
    idempotent_api.assert_side_effects(0)


def test_ietf_escaped_quotes_and_backslashes_are_the_key_they_spell(idempotent_api):
    with httpx.Client() as client:
        for sent in ('"a\\"b"', '"a\\"b"', '"a\\\\"'):
            headers = [("Authorization", "Bearer client-1"), ("Idempotency-Key", sent)]
            answer = client.post(idempotent_api.url_for("/orders"), json=ORDER, headers=headers)
            assert answer.status_code < 300, answer.text
    assert [e.key for e in idempotent_api.journal] == ['a"b', 'a"b', "a\\"]
    assert [e.decision for e in idempotent_api.journal] == ["new", "replayed", "new"]


def test_ietf_two_idempotency_key_headers_are_an_invalid_key(idempotent_api):
    headers = [
        ("Authorization", "Bearer client-1"),
        ("Idempotency-Key", '"a"'),
        ("Idempotency-Key", '"b"'),
    ]
    with httpx.Client() as client:
        response = client.post(idempotent_api.url_for("/orders"), json=ORDER, headers=headers)

    problem = assert_problem(response, 400, "Idempotency-Key is invalid")
    assert "send exactly one" in problem["detail"]
    idempotent_api.assert_side_effects(0)


def test_ietf_missing_key_on_post_orders_returns_400_idempotency_key_is_missing(idempotent_api):
    response = create(idempotent_api, key=None)

    problem = assert_problem(response, 400, "Idempotency-Key is missing")
    assert problem["type"] == PROBLEM_TYPE
    assert problem["detail"] == (
        "This operation is idempotent and it requires correct usage of Idempotency Key."
    )
    idempotent_api.assert_side_effects(0)


def test_ietf_missing_key_on_patch_runs_because_patch_does_not_require_one(idempotent_api):
    order = create(idempotent_api, key="create").json()

    first = patch(idempotent_api, order["id"], {"note": "gift"})
    second = patch(idempotent_api, order["id"], {"note": "gift"})

    assert first.status_code == second.status_code == 200
    idempotent_api.assert_side_effects(2, kind="order.updated")


def test_ietf_key_on_get_is_ignored(idempotent_api):
    order = create(idempotent_api, key="create").json()
    url = idempotent_api.url_for(f"/orders/{order['id']}")

    before = requests.get(url, headers=idempotent_api.headers("read"))
    patch(idempotent_api, order["id"], {"quantity": 3}, key="bump")
    after = requests.get(url, headers=idempotent_api.headers("read"))

    assert (before.json()["quantity"], after.json()["quantity"]) == (1, 3)
    assert [e.key for e in idempotent_api.journal.filter(method="GET")] == [None, None]


# -- enforcement ---------------------------------------------------------------------------------


def test_ietf_completed_duplicate_gets_the_previous_result_with_no_replay_header(idempotent_api):
    first = create(idempotent_api, key="k")
    again = create(idempotent_api, key="k")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Location"] == first.headers["Location"]
    assert not [h for h in again.headers if "replay" in h.lower()]  # the draft defines none
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_replayed(seq=2)


def test_ietf_completed_duplicate_gets_the_previous_error_too(idempotent_api):
    first = patch(idempotent_api, "ord_missing", {"quantity": 2}, key="k")
    create(idempotent_api, key="create")
    again = patch(idempotent_api, "ord_missing", {"quantity": 2}, key="k")

    assert_problem(first, 404, "Order not found")
    assert again.content == first.content
    idempotent_api.assert_replayed(seq=3)


def test_ietf_patch_honours_the_key(idempotent_api):
    order = create(idempotent_api, key="create").json()

    first = patch(idempotent_api, order["id"], {"quantity": 2}, key="bump")
    again = patch(idempotent_api, order["id"], {"quantity": 2}, key="bump")

    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    idempotent_api.assert_exactly_once(kind="order.updated")


def test_ietf_same_key_different_payload_returns_422_idempotency_key_is_already_used(
    idempotent_api,
):
    create(idempotent_api, key="k")
    reused = create(idempotent_api, {"item": "pen", "quantity": 2}, key="k")

    problem = assert_problem(reused, 422, "Idempotency-Key is already used")
    assert problem["type"] == PROBLEM_TYPE
    assert "MUST not be reused across different payloads" in problem["detail"]
    idempotent_api.assert_exactly_once()


def test_ietf_payload_is_compared_as_json_not_bytes(idempotent_api):
    headers = {**idempotent_api.headers("k"), "Content-Type": "application/json"}
    url = idempotent_api.url_for("/orders")
    first = requests.post(url, data=b'{"item": "book", "quantity": 1}', headers=headers)
    again = requests.post(url, data=b'{"quantity":1,"item":"book"}', headers=headers)

    assert again.status_code == 201
    assert again.content == first.content
    idempotent_api.assert_exactly_once()


def test_ietf_duplicate_while_in_progress_returns_409_a_request_is_outstanding(idempotent_api):
    hold = idempotent_api.faults.hold()
    results: dict[str, requests.Response] = {}
    original = threading.Thread(target=lambda: results.update(r=create(idempotent_api, key="k")))
    original.start()
    hold.wait_until_held()

    with httpx.Client() as client:
        duplicate = client.post(
            idempotent_api.url_for("/orders"),
            **_httpx(idempotent_api.request_kwargs(ORDER, key="k")),
        )
    hold.release()
    original.join(5)
    retried = create(idempotent_api, key="k")  # "no correction is required" for a 409

    problem = assert_problem(duplicate, 409, "A request is outstanding for this Idempotency-Key")
    assert problem["type"] == PROBLEM_TYPE
    assert results["r"].status_code == 201
    assert retried.content == results["r"].content
    idempotent_api.assert_exactly_once()


def _httpx(kwargs: dict) -> dict:
    return {"headers": kwargs["headers"], "json": kwargs["json"]}


# -- what is kept, and for how long --------------------------------------------------------------


def test_ietf_keys_expire_after_the_published_24_hours(idempotent_api):
    create(idempotent_api, key="k")
    idempotent_api.clock.advance(hours=23, minutes=59)
    within = create(idempotent_api, {"item": "pen", "quantity": 2}, key="k")
    idempotent_api.clock.advance(minutes=1)
    after = create(idempotent_api, {"item": "pen", "quantity": 2}, key="k")

    assert within.status_code == 422
    assert after.status_code == 201
    idempotent_api.assert_side_effects(2)


@pytest.mark.idempotency(ttl=3600)
def test_ietf_expiry_can_be_overridden_on_the_marker(idempotent_api):
    create(idempotent_api, key="k")
    idempotent_api.clock.advance(hours=1)

    assert create(idempotent_api, {"item": "pen", "quantity": 2}, key="k").status_code == 201


def test_ietf_5xx_is_not_kept_so_a_retry_runs_the_operation_again(idempotent_api):
    idempotent_api.faults.error_after_commit(500)
    failed = create(idempotent_api, key="k")
    retried = create(idempotent_api, key="k")

    assert failed.status_code == 500
    assert failed.headers["Content-Type"] == PROBLEM
    assert retried.status_code == 201
    idempotent_api.assert_side_effects(2)


@pytest.mark.idempotency(cache_5xx=True)
def test_ietf_5xx_can_be_kept_with_cache_5xx_on_the_marker(idempotent_api):
    idempotent_api.faults.error_after_commit(500)
    failed = create(idempotent_api, key="k")
    retried = create(idempotent_api, key="k")

    assert failed.status_code == retried.status_code == 500
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
@pytest.mark.parametrize(
    "body",
    [{"item": "book"}, {"item": "book", "quantity": 0}, {"item": "book", "quantity": 1, "x": 1}],
)
def test_ietf_invalid_body_gets_400_problem_and_is_not_kept(idempotent_api, body):
    invalid = create(idempotent_api, body, key="k")
    fixed = create(idempotent_api, ORDER, key="k")

    problem = assert_problem(invalid, 400, "The request body is invalid")
    assert problem["type"] == "about:blank"
    assert fixed.status_code == 201  # the same key, corrected: not a 422
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(assert_all_bodies_were_valid=False)
def test_ietf_body_that_is_not_json_gets_400_problem_never_500(idempotent_api):
    headers = {**idempotent_api.headers("k"), "Content-Type": "application/json"}
    response = requests.post(idempotent_api.url_for("/orders"), data=b"{not json", headers=headers)

    assert_problem(response, 400, "The request body is invalid")
    idempotent_api.assert_side_effects(0)


def test_ietf_keys_never_cross_clients(idempotent_api):
    mine = create(idempotent_api, key="shared")
    theirs = create(idempotent_api, key="shared", credential="client-2")

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert {s.tenant for s in idempotent_api.side_effects} == {"client-1", "client-2"}


def test_ietf_missing_credential_gets_401_problem_json(idempotent_api):
    response = requests.post(
        idempotent_api.url_for("/orders"), json=ORDER, headers={"Idempotency-Key": '"k"'}
    )

    assert_problem(response, 401, "Unauthorized")
    idempotent_api.assert_side_effects(0)


def test_ietf_lost_response_then_retry_with_same_key_creates_one_order(idempotent_api):
    idempotent_api.faults.drop_response()
    with pytest.raises(requests.ConnectionError):
        create(idempotent_api, key="k")
    retried = create(idempotent_api, key="k")

    assert retried.status_code == 201
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_replayed(seq=2)


def test_ietf_key_longer_than_the_published_255_characters_is_invalid(idempotent_api):
    accepted = create(idempotent_api, key="k" * 255)
    refused = create(idempotent_api, key="k" * 256)

    assert accepted.status_code == 201
    problem = assert_problem(refused, 400, "Idempotency-Key is invalid")
    assert "at most 255" in problem["detail"]
    idempotent_api.assert_exactly_once()


def test_ietf_example_operation_creates_exactly_one_order(idempotent_api):
    method, url, params = idempotent_api.example()

    response = requests.request(method, url, **idempotent_api.request_kwargs(params, key="ex"))

    assert response.status_code == 201
    assert response.headers["Location"] == f"/orders/{response.json()['id']}"
    idempotent_api.assert_exactly_once(kind="order.created")
