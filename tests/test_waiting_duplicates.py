"""A duplicate that waits for its in-flight original (Moda's chosen behaviour, any policy with
``on_in_flight="wait"``) gets the original's outcome, whatever the clock does while it waits.
Before, the clock moved past the TTL during the wait made the waiter look the key up again,
find the record expired and run the handler a second time under one key, though the client
had retried within milliseconds. Real requests over a real socket (requests, threads)."""

from __future__ import annotations

import threading

import pytest
import requests

KEY = "waiting-duplicate-0001"


def _send_both(api, before_release) -> tuple[requests.Response, requests.Response]:
    """The original held at its claim, the duplicate waiting for it, then ``before_release``
    (a clock move) and the release."""
    method, url, params = api.example()
    hold = api.faults.hold(attempt=1)
    answers: dict[str, requests.Response] = {}

    def send(name: str) -> None:
        answers[name] = requests.request(
            method, url, timeout=20, **api.request_kwargs(params, key=KEY)
        )

    original = threading.Thread(target=send, args=("original",))
    original.start()
    hold.wait_until_held()
    duplicate = threading.Thread(target=send, args=("duplicate",))
    duplicate.start()
    api.wait_for_requests(2)
    api.journal.wait_for(lambda j: j[1].attempt is not None, 5)  # at its lookup
    duplicate.join(0.3)
    assert duplicate.is_alive()  # no answer: it waits for the original
    before_release()
    hold.release()
    original.join(20)
    duplicate.join(20)
    return answers["original"], answers["duplicate"]


@pytest.mark.idempotency(variant="moda")
def test_moda_duplicate_waiting_while_the_clock_passes_the_ttl_replays_the_original(
    idempotent_api,
):
    original, duplicate = _send_both(idempotent_api, lambda: idempotent_api.clock.advance(days=3))
    assert original.status_code == duplicate.status_code == 201
    assert duplicate.json()["id"] == original.json()["id"]
    idempotent_api.assert_exactly_once()
    assert [e.decision for e in idempotent_api.journal] == ["new", "replayed"]
    assert idempotent_api.journal[1].expired is None
    assert idempotent_api.journal[1].replay_of == 1


@pytest.mark.idempotency(variant="generic", on_in_flight="wait")
def test_any_waiting_policy_replays_the_original_after_a_clock_jump(idempotent_api):
    original, duplicate = _send_both(idempotent_api, lambda: idempotent_api.clock.advance(hours=25))
    assert (original.status_code, duplicate.status_code) == (201, 201)
    assert duplicate.json() == original.json()
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="moda")
def test_a_retry_arriving_after_the_ttl_still_runs_as_new(idempotent_api):
    """The rule is about waiters only: a request that arrives after the TTL passed is new."""
    method, url, params = idempotent_api.example()
    first = requests.request(
        method, url, timeout=10, **idempotent_api.request_kwargs(params, key=KEY)
    )
    idempotent_api.clock.advance(days=3)
    later = requests.request(
        method, url, timeout=10, **idempotent_api.request_kwargs(params, key=KEY)
    )
    assert later.json()["id"] != first.json()["id"]
    assert [e.decision for e in idempotent_api.journal] == ["new", "new"]
    assert idempotent_api.journal[1].expired is not None
