"""A request still in its handler when the fake is reset, whose handler then emits an event:
the event belongs to a state that is gone. It used to make a new hub for the old state that
nobody closed: it listened to the shared clock for ever and delivered the old state's events
into the next test. Now the event goes nowhere, the request still answers, and the fresh
state's webhooks see nothing of it. Real requests over a real socket."""

from __future__ import annotations

import threading

import requests

from pytest_idempotency import Policy, Reply, Route, Variant
from pytest_idempotency.variant import HandlerContext
from pytest_idempotency.webhooks.registry import hub_of

ENTERED, GO = threading.Event(), threading.Event()


def _slow_create(ctx: HandlerContext) -> Reply:
    ENTERED.set()
    GO.wait(10)
    ctx.emit("thing.created", {"id": "thg_1"})
    return Reply(201, {"id": "thg_1"})


RACING = Variant(
    name="racing-webhooks",
    policy=Policy(key_header="Idempotency-Key", keyed_routes=()),
    routes=(Route("POST /v1/things", _slow_create),),
    authenticate=lambda headers: "anyone",
)


def test_an_event_emitted_by_a_request_that_outlived_a_reset_goes_nowhere(idempotent_api):
    idempotent_api.reset(RACING)
    old_resources = idempotent_api.resources  # of the state the request belongs to
    listeners = len(idempotent_api.clock._listeners)
    answers: list[int] = []
    request = threading.Thread(
        target=lambda: answers.append(
            requests.post(idempotent_api.url_for("/v1/things"), json={}, timeout=10).status_code
        )
    )
    request.start()
    assert ENTERED.wait(10)
    idempotent_api.reset(RACING)  # the request is past its claim: it runs on, in the old state
    got: list[object] = []
    idempotent_api.webhooks.register(lambda event: got.append(event) or 200)
    GO.set()
    request.join(10)

    assert answers == [201]
    assert hub_of(old_resources) is None  # no hub was made for the replaced state
    idempotent_api.clock.advance(days=1)
    idempotent_api.webhooks.deliver_due()
    assert got == []
    assert idempotent_api.webhooks.events == []
    # Only the fresh state's hub listens to the clock: nothing of the old state was left on it.
    assert len(idempotent_api.clock._listeners) == listeners + 1
