"""Receivers written right pass and receivers written wrong fail, under every delivery fault.

Moda tasks post their events to the task's ``callback_url``: here a receiver on a real
loopback socket, reached with the standard library's HTTP client. Every wrong receiver fails
deterministically: the concurrent copies meet at ``webhooks.checkpoint()`` inside the
receiver's read, so a check-then-act race happens on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from webhooks_receivers import RECEIVERS, Ledger, Served, wsgi_receiver

from pytest_idempotency.webhooks import Webhooks

pytestmark = pytest.mark.idempotency(variant="moda")

FAULTS: dict[str, Callable[[Webhooks], Any]] = {
    "none": lambda hooks: None,
    "duplicate": lambda hooks: hooks.faults.duplicate(times=2),
    "concurrent": lambda hooks: hooks.faults.concurrent(times=2),
    "lost_ack": lambda hooks: hooks.faults.lost_ack(times=2),
    "burst": lambda hooks: hooks.faults.burst(4, times=2),
    "out_of_order": lambda hooks: hooks.faults.out_of_order(event_type="task.created"),
    "chaos": lambda hooks: hooks.faults.chaos(1.0, seed=3, kinds=("duplicate", "concurrent")),
    "deliver_again": lambda hooks: None,
    "deliver_again_concurrently": lambda hooks: None,
}
DUPLICATING = {"duplicate", "concurrent", "lost_ack", "burst", "chaos", "deliver_again"}
#: Which faults make which receiver act twice (or never) on an event.
FAILS: dict[str, set[str]] = {
    "right": set(),
    "no_dedupe": DUPLICATING | {"deliver_again_concurrently"},
    "check_then_act": {"concurrent", "chaos"},
    "wrong_field": set(FAULTS),
}


@pytest.fixture
def receiver(request: pytest.FixtureRequest, idempotent_api: Any) -> Iterator[tuple[Ledger, str]]:
    ledger = Ledger(idempotent_api.webhooks)
    served = Served(wsgi_receiver(RECEIVERS[request.param], ledger))
    yield ledger, served.url
    served.close()


def create_task(api: Any, callback_url: str, key: str = "weekly-deck:2026-W17") -> str:
    _, url, params = api.example()
    params["callback_url"] = callback_url
    response = requests.post(url, **api.request_kwargs(params, key=key), timeout=5)
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id


def deliver_everything(api: Any, fault: str) -> None:
    api.clock.advance(60)  # task.created, task.completed (after 30 s), first retries
    api.clock.advance(60)  # retries of acknowledgements that were lost
    for event in api.webhooks.events:
        if fault == "deliver_again":
            api.webhooks.deliver_again(event.id, times=2)
        elif fault == "deliver_again_concurrently":
            api.webhooks.deliver_again(event.id, times=2, concurrently=True)


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("receiver", list(RECEIVERS), indirect=True)
def test_receiver_acts_once_per_event_exactly_when_it_dedupes_on_the_event_id_atomically(
    idempotent_api: Any, receiver: tuple[Ledger, str], fault: str, request: pytest.FixtureRequest
) -> None:
    ledger, url = receiver
    name = request.node.callspec.params["receiver"]
    hooks = idempotent_api.webhooks
    FAULTS[fault](hooks)
    create_task(idempotent_api, url)
    deliver_everything(idempotent_api, fault)
    hooks.assert_delivered("task.created")
    hooks.assert_delivered("task.completed")
    if fault in FAILS[name]:
        with pytest.raises(AssertionError, match="did not act exactly once per event"):
            hooks.assert_processed_once(ledger.actions)
    else:
        hooks.assert_processed_once(ledger.actions)


@pytest.mark.parametrize("receiver", ["right"], indirect=True)
def test_duplicating_faults_really_deliver_more_than_once(
    idempotent_api: Any, receiver: tuple[Ledger, str]
) -> None:
    ledger, url = receiver
    hooks = idempotent_api.webhooks
    hooks.faults.burst(4, event_type="task.created")
    create_task(idempotent_api, url)
    deliver_everything(idempotent_api, "burst")
    hooks.assert_delivered("task.created", times=4)
    hooks.assert_delivered("task.completed", times=1)
    assert ledger.types == ["task.created", "task.completed"]


@pytest.mark.parametrize("receiver", ["right"], indirect=True)
def test_out_of_order_delivers_completed_before_created(
    idempotent_api: Any, receiver: tuple[Ledger, str]
) -> None:
    ledger, url = receiver
    idempotent_api.webhooks.faults.out_of_order(event_type="task.created")
    create_task(idempotent_api, url)
    idempotent_api.clock.advance(0)
    assert ledger.types == []  # held until a later event goes out
    idempotent_api.clock.advance(30)
    assert ledger.types == ["task.completed", "task.created"]


@pytest.mark.parametrize("receiver", ["check_then_act"], indirect=True)
def test_concurrent_copies_enter_the_receiver_together(
    idempotent_api: Any, receiver: tuple[Ledger, str]
) -> None:
    ledger, url = receiver
    hooks = idempotent_api.webhooks
    hooks.faults.concurrent(copies=2, event_type="task.created")
    create_task(idempotent_api, url)
    idempotent_api.clock.advance(0)
    created = [a for a in hooks.deliveries if a.event_type == "task.created"]
    assert [a.copy for a in created] == [0, 1, 2]
    assert all(a.status == 200 for a in created)
    assert ledger.actions == [created[0].event_id] * 3  # all three passed the check
