"""Delivery on the fake clock: the retry schedule, what counts as a failure, destinations,
events per variant, overrides, and clear errors for bad input."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp.web
import pytest
import requests
from webhooks_receivers import Served
from werkzeug.wrappers import Request

from pytest_idempotency.webhooks import DeliveryFaultError, DestinationError, EventSpec


def create(api: Any, key: str = "webhooks-test-key-0001", **extra: Any) -> requests.Response:
    _, url, params = api.example()
    params.update(extra)
    response = requests.post(url, **api.request_kwargs(params, key=key), timeout=5)
    assert response.status_code < 300, response.text
    return response


class Scripted:
    """A callable receiver that answers the given statuses in turn, then 200."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.events: list[dict[str, Any]] = []

    def __call__(self, request: Any) -> int:
        self.events.append(request.json())
        return self.statuses.pop(0) if self.statuses else 200


# -- the schedule ------------------------------------------------------------------------------


@pytest.mark.idempotency(variant="moda")
def test_non_2xx_is_retried_on_modas_schedule_and_a_2xx_stops_the_retries(idempotent_api):
    receiver = Scripted(500, 503)
    idempotent_api.webhooks.register(receiver, events=["task.created"])
    create(idempotent_api)
    clock = idempotent_api.clock
    clock.advance(0)
    clock.advance(9.5)
    assert len(receiver.events) == 1  # the first retry is 10 s after the first attempt
    clock.advance(0.5)
    assert len(receiver.events) == 2
    clock.advance(60)
    assert len(receiver.events) == 3  # then 60 s; the 200 stops it
    clock.advance(days=3)
    assert len(receiver.events) == 3
    attempts = idempotent_api.webhooks.deliveries
    assert [(a.attempt, a.status, a.outcome) for a in attempts] == [
        (1, 500, "status"),
        (2, 503, "status"),
        (3, 200, "ok"),
    ]
    assert len({e["id"] for e in receiver.events}) == 1  # the same event every time


@pytest.mark.idempotency(variant="moda")
def test_delivery_gives_up_after_the_last_attempt_of_the_schedule(idempotent_api):
    idempotent_api.webhooks.configure(schedule=(1, 2))
    receiver = Scripted(500, 500, 500, 500)
    idempotent_api.webhooks.register(receiver, events=["task.created"])
    create(idempotent_api)
    for _ in range(5):
        idempotent_api.clock.advance(5)
    assert len(receiver.events) == 3
    (job,) = idempotent_api.webhooks.jobs
    assert job.state == "failed"


@pytest.mark.idempotency(variant="moda")
def test_refused_connection_is_retried(idempotent_api):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    idempotent_api.webhooks.register(f"http://127.0.0.1:{port}/hook", events=["task.created"])
    create(idempotent_api)
    idempotent_api.clock.advance(0)
    idempotent_api.clock.advance(10)
    outcomes = [a.outcome for a in idempotent_api.webhooks.deliveries]
    assert outcomes == ["refused", "refused"]
    assert idempotent_api.webhooks.drain() == 1


@pytest.mark.idempotency(variant="moda")
def test_timeout_is_retried_and_the_next_answer_stops_it(idempotent_api):
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        Request(environ).get_data()
        if not release.is_set():
            release.wait(10)  # never answers in time
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    served = Served(app)
    try:
        idempotent_api.webhooks.configure(timeout=0.2)
        idempotent_api.webhooks.register(served.url, events=["task.created"])
        create(idempotent_api)
        idempotent_api.clock.advance(0)
        release.set()
        idempotent_api.webhooks.configure(timeout=10)  # the answer now comes at once
        idempotent_api.clock.advance(10)
    finally:
        release.set()
        served.close()
    assert [a.outcome for a in idempotent_api.webhooks.deliveries] == ["timeout", "ok"]


@pytest.mark.idempotency(variant="moda")
def test_receiver_that_raises_answers_500_and_is_retried(idempotent_api):
    calls: list[int] = []

    def flaky(request: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is down")

    idempotent_api.webhooks.register(flaky, events=["task.created"])
    create(idempotent_api)
    idempotent_api.clock.advance(0)
    idempotent_api.clock.advance(10)
    first, second = idempotent_api.webhooks.deliveries
    assert (first.status, second.status) == (500, 200)
    assert "RuntimeError: database is down" in first.answer


@pytest.mark.idempotency(variant="moda")
def test_delay_fault_postpones_the_first_attempt_on_the_fake_clock(idempotent_api):
    receiver = Scripted()
    idempotent_api.webhooks.register(receiver, events=["task.created"])
    idempotent_api.webhooks.faults.delay(120, event_type="task.created")
    create(idempotent_api)
    idempotent_api.clock.advance(119)
    assert receiver.events == []
    idempotent_api.clock.advance(1)
    assert len(receiver.events) == 1


@pytest.mark.idempotency(variant="moda")
def test_nothing_is_delivered_until_the_clock_moves_or_deliver_due_is_called(idempotent_api):
    receiver = Scripted()
    idempotent_api.webhooks.register(receiver)
    create(idempotent_api)
    assert receiver.events == []
    assert idempotent_api.webhooks.deliver_due() == 1
    assert [e["type"] for e in receiver.events] == ["task.created"]


# -- destinations ------------------------------------------------------------------------------


async def asgi_receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI app that keeps the event ids it got on the app's ``seen`` list."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    asgi_receiver.seen.append((scope["path"], body))  # type: ignore[attr-defined]
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.idempotency(variant="moda")
def test_asgi_app_receives_events_in_process(idempotent_api):
    asgi_receiver.seen = []  # type: ignore[attr-defined]
    idempotent_api.webhooks.register(asgi_receiver, url="http://app.test/hooks/moda")
    create(idempotent_api)
    idempotent_api.clock.advance(30)
    paths = [path for path, _ in asgi_receiver.seen]  # type: ignore[attr-defined]
    assert paths == ["/hooks/moda", "/hooks/moda"]
    idempotent_api.webhooks.assert_delivered(times=2)


@pytest.mark.asyncio
@pytest.mark.idempotency(variant="moda")
async def test_asgi_app_receives_events_from_inside_an_async_test(idempotent_api):
    asgi_receiver.seen = []  # type: ignore[attr-defined]
    idempotent_api.webhooks.register(asgi_receiver)
    await asyncio.to_thread(create, idempotent_api)
    idempotent_api.clock.advance(0)  # delivers on its own loop, not this test's
    assert len(asgi_receiver.seen) == 1  # type: ignore[attr-defined]


@pytest.fixture
def aiohttp_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An aiohttp web server on loopback, on its own loop in a thread."""
    got: list[dict[str, Any]] = []
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    holder: dict[str, Any] = {}

    async def hook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        got.append(await request.json())
        return aiohttp.web.Response(status=202)

    async def start() -> None:
        app = aiohttp.web.Application()
        app.router.add_post("/hook", hook)
        runner = aiohttp.web.AppRunner(app, access_log=None)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop)
    assert ready.wait(10)
    yield f"http://127.0.0.1:{holder['port']}/hook", got
    asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.mark.idempotency(variant="moda")
def test_aiohttp_receiver_on_loopback_gets_the_tasks_callback(idempotent_api, aiohttp_receiver):
    url, got = aiohttp_receiver
    task = create(idempotent_api, callback_url=url).json()
    idempotent_api.clock.advance(30)
    assert [(e["type"], e["data"]["id"]) for e in got] == [
        ("task.created", task["id"]),
        ("task.completed", task["id"]),
    ]
    assert got[1]["data"]["status"] == "completed"


@pytest.mark.idempotency(variant="moda")
def test_wsgi_app_gets_real_headers_and_modas_signature(idempotent_api):
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ)
        start_response("200 OK", [])
        return [b"ok"]

    idempotent_api.webhooks.register(app, url="http://receiver.test/moda")
    create(idempotent_api)
    idempotent_api.clock.advance(0)
    (environ,) = seen
    assert environ["PATH_INFO"] == "/moda"
    assert environ["CONTENT_TYPE"].startswith("application/json")
    assert environ["HTTP_MODA_SIGNATURE"].startswith("t=")


# -- events per variant ------------------------------------------------------------------------


@pytest.mark.idempotency(variant="moda")
def test_moda_callback_url_off_loopback_is_never_called_and_can_be_routed(idempotent_api):
    create(idempotent_api, key="a", callback_url="https://myapp.com/webhooks/moda")
    idempotent_api.clock.advance(0)
    assert idempotent_api.webhooks.deliveries == []
    assert idempotent_api.webhooks.skipped[0][1] == "https://myapp.com/webhooks/moda"

    receiver = Scripted()
    idempotent_api.webhooks.route("https://myapp.com/webhooks/moda", receiver)
    create(idempotent_api, key="b", prompt="other", callback_url="https://myapp.com/webhooks/moda")
    idempotent_api.clock.advance(0)
    assert [e["type"] for e in receiver.events] == ["task.created"]
    idempotent_api.webhooks.drain()


@pytest.mark.idempotency(variant="moda")
def test_moda_task_completes_on_demand_and_get_shows_it(idempotent_api):
    receiver = Scripted()
    idempotent_api.webhooks.register(receiver)
    task = create(idempotent_api).json()
    (completed,) = idempotent_api.webhooks.trigger(task["id"])
    idempotent_api.webhooks.deliver_due()
    assert [e["type"] for e in receiver.events] == ["task.created", "task.completed"]
    assert receiver.events[1]["id"] == completed.id
    shown = requests.get(
        idempotent_api.url_for(f"/v1/tasks/{task['id']}"), headers=idempotent_api.headers()
    )
    assert shown.json()["status"] == "completed"
    idempotent_api.clock.advance(60)
    assert len(receiver.events) == 2  # it completes once


@pytest.mark.idempotency(variant="moda")
def test_moda_events_can_be_reshaped_by_the_test(idempotent_api):
    idempotent_api.webhooks.configure(id_prefix="mevt_", after={"task.completed": 5})
    receiver = Scripted()
    idempotent_api.webhooks.register(receiver)
    create(idempotent_api)
    idempotent_api.clock.advance(5)
    assert [e["type"] for e in receiver.events] == ["task.created", "task.completed"]
    assert all(e["id"].startswith("mevt_") for e in receiver.events)


@pytest.mark.idempotency(variant="letmepost")
def test_letmepost_emits_one_event_per_target(idempotent_api):
    receiver = Scripted()
    idempotent_api.webhooks.register(receiver)
    idempotent_api.faults.partial_batch({"acc_b": "permanent"})
    response = requests.post(
        idempotent_api.url_for("/v1/posts"),
        **idempotent_api.request_kwargs(
            {"text": "shipped", "targets": [{"accountId": "acc_a"}, {"accountId": "acc_b"}]},
            key="launch-2026-12-01",
        ),
        timeout=5,
    )
    post = response.json()
    idempotent_api.clock.advance(0)
    shapes = [(e["type"], e["data"]["postId"], e["data"]["accountId"]) for e in receiver.events]
    assert shapes == [
        ("post.published", post["id"], "acc_a"),
        ("post.failed", post["id"], "acc_b"),
    ]
    assert all(set(e) == {"id", "type", "createdAt", "data"} for e in receiver.events)


@pytest.mark.idempotency(variant="whet")
def test_whet_emits_run_started_then_run_succeeded_when_the_run_finishes(idempotent_api):
    receiver = Scripted()
    idempotent_api.webhooks.register(receiver)
    pipeline = create(idempotent_api, key="whet-key-0000000001").json()
    idempotent_api.clock.advance(119)
    assert [e["type"] for e in receiver.events] == ["run.started"]
    idempotent_api.clock.advance(1)
    assert [e["type"] for e in receiver.events] == ["run.started", "run.succeeded"]
    assert {e["data"]["run_id"] for e in receiver.events} == {pipeline["run_id"]}


@pytest.mark.idempotency(variant="phantom")
def test_phantom_emits_nothing_unless_the_test_emits(idempotent_api):
    receiver = Scripted()
    idempotent_api.webhooks.register(receiver)
    create(idempotent_api, key="phantom-key")
    idempotent_api.clock.advance(60)
    assert receiver.events == []
    event = idempotent_api.webhooks.emit("economy.adjusted", {"id": "adj_1", "delta": 500})
    idempotent_api.clock.advance(0)
    assert event is not None
    assert receiver.events == [event.json()]


def test_a_custom_variant_declares_its_events(idempotent_api):
    spec = EventSpec(id_prefix="wh_", schedule=(5.0,), signature_header=None)
    idempotent_api.reset(dataclasses.replace(idempotent_api.variant, events=spec))
    got: list[Any] = []
    idempotent_api.webhooks.register(lambda r: got.append(r))
    idempotent_api.webhooks.emit("thing.created", {"id": "t1"})
    idempotent_api.clock.advance(0)
    (request,) = got
    assert request.json()["id"].startswith("wh_")
    assert request.header("Webhook-Signature") is None


# -- bad input ---------------------------------------------------------------------------------


def test_bad_destinations_name_the_fix(idempotent_api):
    hooks = idempotent_api.webhooks
    with pytest.raises(DestinationError, match="not on loopback"):
        hooks.register("https://example.com/hook")
    with pytest.raises(DestinationError, match="is not http"):
        hooks.register("ftp://127.0.0.1/hook")
    with pytest.raises(DestinationError, match="a URL, a WSGI app, an ASGI app or a callable"):
        hooks.register(42)
    with pytest.raises(DestinationError, match="kind must be"):
        hooks.register(print, kind="grpc")


def test_bad_delivery_calls_name_the_fix(idempotent_api):
    hooks = idempotent_api.webhooks
    with pytest.raises(KeyError, match="no event 'evt_nope'"):
        hooks.deliver_again("evt_nope")
    event = hooks.emit("thing.created", {"id": "t1"})
    assert event is not None
    with pytest.raises(ValueError, match="register one first"):
        hooks.deliver_again(event.id)
    with pytest.raises(ValueError, match="times must be"):
        hooks.deliver_again(event.id, times=0)
    with pytest.raises(TypeError, match="the options are"):
        hooks.configure(retries=3)
    with pytest.raises(ValueError, match="schedule= takes waits"):
        hooks.configure(schedule=("soon",))
    with pytest.raises(ValueError, match="timeout= takes seconds"):
        hooks.configure(timeout=0)
    with pytest.raises(TypeError, match="emit\\(\\) takes an event type"):
        hooks.emit("", {})
    with pytest.raises(TypeError, match="takes the object as a dict"):
        hooks.emit("thing.created", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="events= takes event types"):
        hooks.register(print, events=[1])
    with pytest.raises(TypeError, match="unknown option"):
        hooks.route("https://myapp.com/hook", print, colour="red")
    with pytest.raises(DeliveryFaultError, match="the kinds are"):
        hooks.faults.add("meteor")
    with pytest.raises(DeliveryFaultError, match="n must be"):
        hooks.faults.burst(1)
    with pytest.raises(DeliveryFaultError, match="rate must be"):
        hooks.faults.chaos(2)


@pytest.mark.idempotency(variant="moda")
def test_in_process_receiver_that_hangs_times_out_instead_of_hanging_the_test(idempotent_api):
    stuck = threading.Event()

    def hangs(request: Any) -> None:
        stuck.wait(30)

    idempotent_api.webhooks.configure(timeout=0.2)
    idempotent_api.webhooks.register(hangs, events=["task.created"])
    create(idempotent_api)
    idempotent_api.clock.advance(0)
    stuck.set()
    (attempt,) = idempotent_api.webhooks.deliveries
    assert attempt.outcome == "timeout"
    idempotent_api.webhooks.drain()


@pytest.mark.idempotency(variant="moda")
def test_assert_processed_once_can_look_at_one_event_type(idempotent_api):
    acted: list[str] = []

    def only_completions(request: Any) -> None:
        event = request.json()
        if event["type"] == "task.completed" and event["id"] not in acted:
            acted.append(event["id"])

    idempotent_api.webhooks.register(only_completions)
    idempotent_api.webhooks.faults.duplicate(event_type="task.completed")
    create(idempotent_api)
    idempotent_api.clock.advance(30)
    idempotent_api.webhooks.assert_processed_once(acted, event_type="task.completed")
    with pytest.raises(AssertionError, match="processed 0 times, delivered 1 times"):
        idempotent_api.webhooks.assert_processed_once(acted)


async def asgi_waits_for_disconnect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that, like a streaming framework, listens for the client leaving."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
    assert (await receive())["type"] == "http.disconnect"


@pytest.mark.idempotency(variant="moda")
def test_asgi_app_that_waits_for_the_disconnect_gets_it(idempotent_api):
    idempotent_api.webhooks.register(asgi_waits_for_disconnect, events=["task.created"])
    create(idempotent_api)
    idempotent_api.clock.advance(0)
    (attempt,) = idempotent_api.webhooks.deliveries
    assert (attempt.outcome, attempt.answer) == ("ok", "ok")


def test_a_broken_envelope_is_named_in_the_error(idempotent_api):
    def envelope(facts: Any) -> dict[str, Any]:
        raise KeyError("data")

    idempotent_api.webhooks.configure(envelope=envelope)
    idempotent_api.webhooks.register(lambda request: 200)
    idempotent_api.webhooks.emit("thing.created", {"id": "t1"})
    with pytest.raises(ValueError, match=r"the webhook envelope .*envelope raised KeyError"):
        idempotent_api.clock.advance(0)
    idempotent_api.webhooks.drain()


def test_delivery_chaos_is_reproducible_from_its_seed(idempotent_api):
    def run() -> list[str | None]:
        idempotent_api.reset()
        hooks = idempotent_api.webhooks
        hooks.register(lambda request: 200)
        assert hooks.faults.chaos(0.5, seed=11, kinds=("duplicate", "lost_ack", "concurrent")) == 11
        for n in range(20):
            hooks.emit("thing.created", {"id": f"t{n}"})
        idempotent_api.clock.advance(hours=1)
        return [a.fault for a in hooks.deliveries]

    first = run()
    assert first == run()
    assert {"chaos:duplicate", "chaos:lost_ack", None} <= set(first)
