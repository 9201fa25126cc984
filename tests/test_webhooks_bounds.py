"""Webhook memory stays bounded however long a server runs: the newest events and jobs are kept
and the older ones dropped and counted; a delivery still due or held is never lost, and
scheduled events are forgotten once they fired. The bound (10,000 in the package) is made small
here so the tests run quickly."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hardening_support import InProcess, Standalone, clean_stderr

from pytest_idempotency.webhooks import DeliveryFaultError
from pytest_idempotency.webhooks import faults as faults_module
from pytest_idempotency.webhooks import hub as hub_module
from pytest_idempotency.webhooks import scheduler as scheduler_module
from pytest_idempotency.webhooks.registry import hub_for

BOUND = 5


@pytest.fixture
def bounded(monkeypatch: pytest.MonkeyPatch, idempotent_api: Any) -> Any:
    monkeypatch.setattr(hub_module, "MAX_ATTEMPTS", BOUND)
    monkeypatch.setattr(scheduler_module, "MAX_ATTEMPTS", BOUND)
    idempotent_api.reset()  # a fresh state: its hub is made with the small bound
    return idempotent_api.webhooks


def test_events_past_the_bound_are_dropped_oldest_first_and_counted(bounded: Any) -> None:
    emitted = [bounded.emit("thing.created", {"id": f"t{n}"}).id for n in range(BOUND + 3)]
    assert [e.id for e in bounded.events] == emitted[3:]
    assert bounded.dropped_events == 3


def test_a_job_dropped_from_the_list_is_still_delivered_and_retried(bounded: Any) -> None:
    bodies: list[str] = []

    def receiver(request: Any) -> int:
        bodies.append(request.json()["id"])
        return 503

    bounded.register(receiver)
    for n in range(BOUND + 2):
        bounded.emit("thing.created", {"id": f"t{n}"})
    assert len(bounded.jobs) == BOUND
    assert bounded.scheduler.dropped_jobs == 2
    bounded.clock.advance(0)
    assert len(bodies) == BOUND + 2  # the two dropped jobs were delivered too
    oldest = bodies[0]
    bounded.clock.advance(days=1)  # every retry of the schedule comes due
    assert bodies.count(oldest) > 1  # and the oldest, no longer listed, was retried
    bounded.drain()


def test_a_held_delivery_is_reported_at_teardown_after_its_job_left_the_list(
    bounded: Any,
) -> None:
    bounded.register(lambda request: 200, events=["held.*"])
    bounded.register(lambda request: 200, events=["other.*"])
    bounded.faults.out_of_order(event_type="held.*")
    held = bounded.emit("held.thing", {"id": "h"})
    for n in range(BOUND + 1):  # to the other endpoint: nothing releases the held one
        bounded.emit("other.thing", {"id": f"o{n}"})
    bounded.clock.advance(0)
    assert held.id not in {job.event.id for job in bounded.jobs}
    assert [p for p in bounded.problems() if "held out of order" in p and held.id in p]
    assert bounded.drain() == 1
    assert bounded.problems() == []


def test_fired_scheduled_events_are_forgotten(bounded: Any) -> None:
    for n in range(3):
        assert bounded.emit("thing.done", {"id": f"s{n}"}, after=10) is None
    assert len(bounded.later) == 3
    bounded.clock.advance(11)
    assert len(bounded.later) == 0
    assert [e.type for e in bounded.events] == ["thing.done"] * 3


def test_the_admin_api_says_what_it_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "MAX_ATTEMPTS", BOUND)
    monkeypatch.setattr(scheduler_module, "MAX_ATTEMPTS", BOUND)
    target = InProcess()  # the server with its admin API, over a real socket
    try:
        state = target.app.state
        hub = hub_for(state.resources, state.clock, state.variant)
        hub.register(lambda request: 200)
        for n in range(BOUND + 3):
            hub.emit("thing.created", {"id": f"t{n}"})
        events = requests.get(
            f"http://127.0.0.1:{target.port}/__admin/webhooks/events", timeout=10
        ).json()
        deliveries = requests.get(
            f"http://127.0.0.1:{target.port}/__admin/webhooks/deliveries", timeout=10
        ).json()
    finally:
        target.close()
    assert (len(events["events"]), events["dropped_events"]) == (BOUND, 3)
    assert (len(deliveries["jobs"]), deliveries["dropped_jobs"]) == (BOUND, 3)
    assert deliveries["dropped_deliveries"] == 0


def test_the_standalone_admin_api_reports_its_dropped_counts() -> None:
    server = Standalone("--variant", "moda")
    try:
        url = f"http://127.0.0.1:{server.port}"
        events = requests.get(url + "/__admin/webhooks/events", timeout=10).json()
        deliveries = requests.get(url + "/__admin/webhooks/deliveries", timeout=10).json()
    finally:
        err = server.close()
    assert events["dropped_events"] == 0  # nothing dropped yet, and the count is there
    assert (deliveries["dropped_jobs"], deliveries["dropped_deliveries"]) == (0, 0)
    assert (deliveries["dropped_queued"], deliveries["dropped_endpoints"]) == (0, 0)
    assert (events["dropped_skipped"], events["dropped_scheduled"]) == (0, 0)
    assert clean_stderr(err) == []


def _refused_then_served(path: str, refused: Any, said: str, allowed: Any, status: int) -> None:
    """On a standalone Moda server: ``refused`` is a 400 saying ``said``, the server goes on
    serving (a clock advance), ``allowed`` is taken, stderr stays clean."""
    server = Standalone("--variant", "moda")
    try:
        answer, body = server.call("POST", path, refused)
        assert answer == 400
        assert said in str(body)
        assert server.call("POST", "/__admin/clock", {"advance": 10})[0] == 200
        assert server.call("POST", path, allowed)[0] == status
    finally:
        err = server.close()
    assert clean_stderr(err) == []


@pytest.mark.parametrize(
    "fault", [{"kind": "concurrent", "copies": 100_000}, {"kind": "burst", "copies": 10**8}]
)
def test_a_delivery_fault_with_more_copies_than_the_bound_is_refused_naming_it(
    fault: dict[str, Any],
) -> None:
    allowed = {**fault, "copies": 100}
    _refused_then_served(
        "/__admin/webhooks/faults", fault, "copies must be at most 100", allowed, 201
    )


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"after": {"task.completed": "x"}}, '"after" maps event types to seconds'),
        ({"after": {"task.completed": 1e308}}, '"after" maps event types to seconds'),
        ({"timeout": 1e308}, '"timeout" must be seconds above 0'),
        ({"timeout": 0}, '"timeout" must be seconds above 0'),
        ({"schedule": [1, 1e308]}, '"schedule" must be seconds from 0 to 315360000'),
        ({"signature_header": "X-Sig\r\nSet-Cookie: a=b"}, '"signature_header" must be a header'),
    ],
)
def test_webhook_settings_that_would_break_later_deliveries_are_refused_naming_them(
    settings: dict[str, Any], said: str
) -> None:
    allowed = {"timeout": 2, "after": {}}
    _refused_then_served("/__admin/webhooks/configure", settings, said, allowed, 200)


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ({"kind": "chaos", "seed": "x"}, '"seed" must be a whole number'),
        ({"kind": "chaos", "seed": True}, '"seed" must be a whole number'),
        ({"kind": "chaos", "seed": 1.5}, '"seed" must be a whole number'),
        ({"kind": "chaos", "rate": "0.5"}, '"rate" must be a number from 0 to 1'),
        ({"kind": "chaos", "rate": 2}, "rate must be a number from 0 to 1"),
        ({"kind": "chaos", "kinds": "duplicate"}, '"kinds" must be a list'),
        ({"kind": "chaos", "kinds": [1, "duplicate"]}, "chaos kinds must be among"),
        ({"kind": "delay", "seconds": "5"}, '"seconds" must be seconds >= 0'),
        ({"kind": "delay", "seconds": 1e308}, "seconds must be a number from 0 to 315360000"),
        ({"kind": "duplicate", "times": "2"}, '"times" must be a whole number'),
        ({"kind": "duplicate", "times": 0}, "times must be a whole number >= 1"),
        ({"kind": "duplicate", "event_type": 5}, '"event_type" must be a string'),
    ],
)
def test_delivery_fault_fields_of_the_wrong_type_or_range_are_refused_naming_them(
    fault: dict[str, Any], said: str
) -> None:
    allowed = {"kind": "chaos", "rate": 0.5, "seed": 7}
    _refused_then_served("/__admin/webhooks/faults", fault, said, allowed, 201)


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"schedule": [0] * 101}, '"schedule" takes at most 100 waits'),
        ({"id_prefix": "e" * 65}, '"id_prefix" must be at most 64 characters'),
    ],
)
def test_settings_that_would_multiply_attempts_or_ids_are_refused(
    settings: dict[str, Any], said: str
) -> None:
    _refused_then_served("/__admin/webhooks/configure", settings, said, {"schedule": [1]}, 200)


def test_a_redelivery_of_more_than_100_copies_is_refused_naming_it() -> None:
    refused = {"event_id": "evt_x", "times": 10**6, "concurrently": True}
    allowed = {"event_id": "evt_x", "times": 100}  # then: no such event
    _refused_then_served("/__admin/webhooks/redeliver", refused, "from 1 to 100", allowed, 404)


@pytest.fixture
def small_queue(monkeypatch: pytest.MonkeyPatch, idempotent_api: Any) -> Any:
    monkeypatch.setattr(scheduler_module, "MAX_QUEUED", BOUND)
    idempotent_api.reset()
    return idempotent_api.webhooks


@pytest.mark.idempotency(assert_all_deliveries_made=False)
def test_queued_deliveries_past_the_bound_drop_the_oldest_and_say_so(small_queue: Any) -> None:
    got: list[str] = []
    small_queue.register(lambda request: got.append(request.json()["id"]))
    ids = [small_queue.emit("thing.created", {"id": f"t{n}"}).id for n in range(BOUND + 2)]
    assert len(small_queue.scheduler.active_jobs()) == BOUND
    assert small_queue.scheduler.dropped_queued == 2
    assert [j.state for j in small_queue.jobs][:2] == ["dropped", "dropped"]
    (problem,) = [p for p in small_queue.problems() if "given up" in p]
    assert problem.startswith(f"2 deliveries were given up unmade: more than {BOUND} were queued")
    small_queue.clock.advance(0)
    assert got == ids[2:]  # the newest were all delivered
    assert small_queue.problems() == [problem]  # what was made is no problem; the drop stays


@pytest.mark.idempotency(assert_all_deliveries_made=False)
def test_the_admin_api_reports_deliveries_given_up_past_the_queue_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scheduler_module, "MAX_QUEUED", BOUND)
    target = InProcess()
    try:
        state = target.app.state
        hub = hub_for(state.resources, state.clock, state.variant)
        hub.register(lambda request: 200)
        for n in range(BOUND + 3):
            hub.emit("thing.created", {"id": f"t{n}"})
        base = f"http://127.0.0.1:{target.port}/__admin/webhooks"
        deliveries = requests.get(base + "/deliveries", timeout=10).json()
        made = requests.post(base + "/deliver", timeout=10).json()["made"]
    finally:
        target.close()
    assert deliveries["dropped_queued"] == 3
    assert [p for p in deliveries["problems"] if "3 deliveries were given up" in p]
    assert made == BOUND


def test_later_events_past_the_bound_drop_the_oldest_and_count_it(bounded: Any) -> None:
    for n in range(BOUND + 2):
        bounded.emit("thing.done", {"id": f"s{n}"}, after=10 + n)
    assert (len(bounded.later), bounded.dropped_scheduled) == (BOUND, 2)
    bounded.clock.advance(60)
    assert [e.json()["data"]["id"] for e in bounded.events] == [f"s{n}" for n in range(2, 7)]


def test_spent_faults_make_room_and_live_ones_past_the_bound_are_refused(
    monkeypatch: pytest.MonkeyPatch, idempotent_api: Any
) -> None:
    monkeypatch.setattr(faults_module, "MAX_FAULTS", 3)
    hooks = idempotent_api.webhooks
    hooks.register(lambda request: 200)
    for _ in range(3):
        hooks.faults.duplicate()
    with pytest.raises(DeliveryFaultError, match="at most 3 delivery faults"):
        hooks.faults.lost_ack()
    hooks.emit("thing.done", {"id": "t1"})  # spends the first fault
    hooks.clock.advance(0)
    hooks.faults.duplicate()
    assert (len(hooks.faults.scripted), hooks.faults.dropped) == (3, 1)
    hooks.drain()
    hooks.faults.clear()


def test_a_jobs_history_keeps_its_newest_attempts(
    monkeypatch: pytest.MonkeyPatch, idempotent_api: Any
) -> None:
    monkeypatch.setattr(scheduler_module, "MAX_JOB_HISTORY", BOUND)
    hooks = idempotent_api.webhooks
    hooks.register(lambda request: 200)
    event = hooks.emit("thing.done", {"id": "t1"})
    hooks.clock.advance(0)
    hooks.deliver_again(event.id, times=BOUND + 2)
    (job,) = hooks.jobs
    assert [a.copy for a in job.history] == list(range(3, BOUND + 3))
    assert len(hooks.deliveries) == BOUND + 3  # the journal has them all


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"timeout": float("nan")}, "timeout= takes seconds > 0 and at most 3600"),
        ({"timeout": 1e308}, "timeout= takes seconds > 0 and at most 3600"),
        ({"schedule": (1, float("inf"))}, "schedule= takes waits in seconds from 0 to 315360000"),
        ({"schedule": (float("nan"),)}, "schedule= takes waits in seconds from 0 to 315360000"),
    ],
)
@pytest.mark.idempotency(variant="moda")
def test_configure_refuses_waits_the_scheduler_cannot_keep(idempotent_api, options, said) -> None:
    """As the admin API does: a NaN timeout used to be taken (NaN <= 0 is false)."""
    with pytest.raises(ValueError, match=said):
        idempotent_api.webhooks.configure(**options)
    idempotent_api.webhooks.configure(timeout=5, schedule=(1, 60))
