"""Whatever a client sends, the webhook side bounds its memory and never hangs: callback URLs
make at most one endpoint each and a bounded number in all, a delivery thread that cannot
start breaks the barrier instead of hanging (its copies are failed attempts, retried), and a
receiver down for days leaves nothing queued."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from hardening_support import Standalone, clean_stderr
from webhooks_receivers import RECEIVERS, Ledger, Served, wsgi_receiver

from pytest_idempotency.webhooks import DestinationError
from pytest_idempotency.webhooks import endpoints as endpoints_module

BOUND = 5


@pytest.fixture
def served() -> Any:
    ledger = Ledger()
    receiver = Served(wsgi_receiver(RECEIVERS["right"], ledger))
    yield ledger, receiver.url
    receiver.close()


def _task(api: Any, key: str, callback_url: str) -> requests.Response:
    body = {"prompt": "deck", "callback_url": callback_url, "idempotency_key": key}
    return requests.post(api.url_for("/v1/tasks"), json=body, headers=api.headers(), timeout=10)


@pytest.mark.idempotency(variant="moda")
def test_the_same_callback_url_makes_one_endpoint(idempotent_api: Any, served: Any) -> None:
    ledger, url = served
    for n in range(4):
        assert _task(idempotent_api, f"k-{n}", url).status_code == 201
    assert [e.url for e in idempotent_api.webhooks.endpoints] == [url]
    idempotent_api.clock.advance(30)
    assert ledger.types.count("task.completed") == 4  # every task's events still went there


@pytest.mark.idempotency(variant="moda")
def test_callback_urls_past_the_bound_drop_the_oldest_endpoint_and_lose_no_delivery(
    monkeypatch: pytest.MonkeyPatch, idempotent_api: Any, served: Any
) -> None:
    monkeypatch.setattr(endpoints_module, "MAX_IMPLICIT_ENDPOINTS", BOUND)
    idempotent_api.reset()
    ledger, url = served
    for n in range(BOUND + 3):  # one receiver, BOUND + 3 distinct URLs (the query differs)
        assert _task(idempotent_api, f"k-{n}", f"{url}?task={n}").status_code == 201
    hooks = idempotent_api.webhooks
    assert len(hooks.endpoints) == BOUND
    assert hooks.dropped_endpoints == 3
    assert [e.url for e in hooks.endpoints] == [f"{url}?task={n}" for n in range(3, BOUND + 3)]
    idempotent_api.clock.advance(30)
    assert ledger.types.count("task.created") == BOUND + 3  # dropped ones delivered too
    hooks.assert_delivered("task.completed", times=BOUND + 3)


def test_the_standalone_server_keeps_1000_callback_endpoints_and_reports_the_rest() -> None:
    server = Standalone("--variant", "moda")
    try:
        base = f"http://127.0.0.1:{server.port}"
        with requests.Session() as http:
            http.headers["Authorization"] = "Bearer moda_test_key_a"
            for n in range(1003):
                body = {"prompt": "x", "callback_url": f"http://127.0.0.1:9/h{n}"}
                assert http.post(base + "/v1/tasks", json=body, timeout=10).status_code == 201
            listed = http.get(base + "/__admin/webhooks/endpoints", timeout=10).json()
            deliveries = http.get(base + "/__admin/webhooks/deliveries", timeout=10).json()
            assert http.post(base + "/__admin/clock", json={"advance": 1}).status_code == 200
    finally:
        err = server.close()
    assert (len(listed["endpoints"]), listed["dropped_endpoints"]) == (1000, 3)
    assert deliveries["dropped_endpoints"] == 3
    assert clean_stderr(err) == []


@pytest.mark.idempotency(variant="moda", assert_all_bodies_were_valid=False)
def test_a_callback_url_no_receiver_can_listen_on_is_skipped_and_the_task_is_made(
    idempotent_api: Any,
) -> None:
    for n, url in enumerate(["http://127.0.0.1:0/x", "http://127.0.0.1:99999/x", "http://[::1/x"]):
        assert _task(idempotent_api, f"k-{n}", url).status_code == 201
    assert [url for _, url in idempotent_api.webhooks.skipped][:3] == [
        "http://127.0.0.1:0/x",
        "http://127.0.0.1:99999/x",
        "http://[::1/x",
    ]
    assert idempotent_api.webhooks.endpoints == []
    assert _task(idempotent_api, "long", "http://127.0.0.1:1/" + "a" * 2048).status_code == 422
    idempotent_api.webhooks.drain()


def test_registered_endpoints_past_the_bound_are_refused_and_a_route_is_replaced(
    monkeypatch: pytest.MonkeyPatch, idempotent_api: Any
) -> None:
    monkeypatch.setattr(endpoints_module, "MAX_ENDPOINTS", 3)
    hooks = idempotent_api.webhooks
    for _ in range(2):
        hooks.register(lambda request: 200)
    for _ in range(4):  # the same callback URL routed again replaces its route
        routed = hooks.route("https://myapp.com/webhooks/moda", lambda request: 200)
    assert len(hooks.endpoints) == 3
    with pytest.raises(DestinationError, match="at most 3 webhook endpoints"):
        hooks.register(lambda request: 200)
    event = hooks.emit("thing.done", {"id": "t1"}, to="https://myapp.com/webhooks/moda")
    hooks.clock.advance(0)
    assert [a.endpoint for a in hooks.deliveries if a.event_id == event.id] == [routed.describe()]


def test_the_standalone_admin_api_refuses_endpoint_101_and_still_serves() -> None:
    server = Standalone("--variant", "moda")
    try:
        for n in range(100):
            url = f"http://127.0.0.1:9/h{n}"
            assert server.call("POST", "/__admin/webhooks/endpoints", {"url": url})[0] == 201
        status, body = server.call(
            "POST", "/__admin/webhooks/endpoints", {"url": "http://127.0.0.1:9/x"}
        )
        assert status == 400
        assert "at most 100 webhook endpoints" in str(body)
        assert server.call("POST", "/__admin/clock", {"advance": 10})[0] == 200
    finally:
        err = server.close()
    assert clean_stderr(err) == []


def _fails_on_second_thread() -> Any:
    started: list[threading.Thread] = []

    def start(thread: threading.Thread) -> None:
        if started:
            raise RuntimeError("can't start new thread")
        started.append(thread)
        thread.start()

    return start, started


def test_a_copy_thread_that_cannot_start_breaks_the_barrier_and_the_delivery_is_retried(
    idempotent_api: Any,
) -> None:
    hooks = idempotent_api.webhooks
    got: list[str] = []
    hooks.register(lambda request: got.append(request.json()["id"]))
    hooks.configure(schedule=(10,))
    hooks.faults.concurrent(copies=2)
    start, started = _fails_on_second_thread()
    hooks.scheduler.start_thread = start
    event = hooks.emit("thing.done", {"id": "t1"})
    hooks.clock.advance(0)  # returns: the started copy was released by the broken barrier
    assert got == []
    attempts = hooks.deliveries
    assert [(a.outcome, a.copy) for a in attempts] == [("error", 0), ("error", 1), ("error", 2)]
    assert all("could not start" in a.answer for a in attempts)
    assert not started[0].is_alive()
    (job,) = hooks.jobs
    assert (job.state, job.due) == (
        "pending",
        attempts[0].at + 10,
    )  # recorded, not lost: retried on schedule
    hooks.clock.advance(10)
    assert got == [event.id]
    assert job.state == "delivered"


def test_a_redelivery_whose_thread_cannot_start_is_recorded_as_failed(idempotent_api: Any) -> None:
    hooks = idempotent_api.webhooks
    got: list[str] = []
    hooks.register(lambda request: got.append(request.json()["id"]))
    event = hooks.emit("thing.done", {"id": "t1"})
    hooks.clock.advance(0)
    hooks.scheduler.start_thread = _fails_on_second_thread()[0]
    assert hooks.deliver_again(event.id, times=3, concurrently=True) == 3
    again = [a for a in hooks.deliveries if a.fault == "deliver_again"]
    assert [a.outcome for a in again] == ["error"] * 3
    assert got == [event.id]  # only the first delivery reached the receiver
    assert hooks.scheduler.race is None


def test_a_receiver_down_for_days_leaves_nothing_queued(idempotent_api: Any) -> None:
    hooks = idempotent_api.webhooks
    hooks.register(lambda request: 503)
    for n in range(50):
        hooks.emit("thing.done", {"id": f"t{n}"})
        hooks.clock.advance(3600)
    hooks.clock.advance(days=3)
    assert hooks.scheduler.active_jobs() == []
    schedule = len(hooks.spec.schedule)
    assert {(j.state, j.attempts) for j in hooks.jobs} == {("failed", schedule + 1)}
    assert len(hooks.deliveries) == 50 * (schedule + 1)


def test_redelivering_more_than_100_times_is_refused(idempotent_api: Any) -> None:
    hooks = idempotent_api.webhooks
    hooks.register(lambda request: 200)
    event = hooks.emit("thing.done", {"id": "t1"})
    hooks.clock.advance(0)
    with pytest.raises(ValueError, match="from 1 to 100"):
        hooks.deliver_again(event.id, times=10**6, concurrently=True)
    assert len(hooks.deliveries) == 1
