"""Webhooks from the standalone server (a subprocess), driven only over HTTP: the admin calls
register a real receiver listening on loopback, deliver, redeliver and script delivery faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from hardening_support import Standalone
from webhooks_receivers import RECEIVERS, Ledger, Served, wsgi_receiver
from werkzeug.wrappers import Request, Response


class Server(Standalone):
    """The standalone server (``hardening_support.Standalone``) with an httpx admin client."""

    def __init__(self, variant: str) -> None:
        super().__init__("--variant", variant)
        self.url = f"http://127.0.0.1:{self.port}"
        self._client: httpx.Client | None = None

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=10)
        return self._client.request(method, path, json=body, **kwargs)

    def admin(self, method: str, call: str, body: Any = None) -> Any:
        response = self.call(method, f"/__admin/{call}", body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def stop(self) -> str:
        if self._client is not None:
            self._client.close()
        return self.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    started = {name: Server(name) for name in ("moda", "stripe")}
    yield started
    for server in started.values():
        assert "Traceback" not in server.stop()


@pytest.fixture
def moda(servers: dict[str, Server]) -> Server:
    server = servers["moda"]
    server.admin("POST", "reset")
    return server


@pytest.fixture
def right_receiver() -> Iterator[tuple[Ledger, str]]:
    ledger = Ledger()
    served = Served(wsgi_receiver(RECEIVERS["right"], ledger))
    yield ledger, served.url
    served.close()


def create_task(server: Server, key: str, **extra: Any) -> dict[str, Any]:
    body = {"prompt": "Weekly deck", "idempotency_key": key, **extra}
    response = server.call(
        "POST", "/v1/tasks", body, headers={"Authorization": "Bearer moda_test_key_a"}
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def test_register_a_loopback_receiver_and_move_the_clock_to_deliver(moda, right_receiver):
    ledger, url = right_receiver
    endpoint = moda.admin("POST", "webhooks/endpoints", {"url": url})["endpoint"]
    assert endpoint["url"] == url
    assert endpoint["signed"] is True
    task = create_task(moda, "weekly-deck:2026-W17")
    moda.admin("POST", "clock", {"advance": 30})

    listing = moda.admin("GET", "webhooks/deliveries")
    assert [(d["event_type"], d["status"]) for d in listing["deliveries"]] == [
        ("task.created", 200),
        ("task.completed", 200),
    ]
    assert listing["problems"] == []
    events = moda.admin("GET", "webhooks/events")["events"]
    assert {e["body"]["data"]["id"] for e in events} == {task["id"]}
    assert ledger.types == ["task.created", "task.completed"]


def test_redeliver_and_delivery_faults_over_admin(moda, right_receiver):
    ledger, url = right_receiver
    moda.admin("POST", "webhooks/endpoints", {"url": url, "events": ["task.created"]})
    fault = moda.admin("POST", "webhooks/faults", {"kind": "concurrent", "copies": 2})["fault"]
    assert fault["kind"] == "concurrent"
    create_task(moda, "k-1")
    made = moda.admin("POST", "webhooks/deliver")["made"]
    assert made == 1
    (event,) = moda.admin("GET", "webhooks/events")["events"]
    again = moda.admin("POST", "webhooks/redeliver", {"event_id": event["id"], "times": 2})
    assert again["made"] == 2
    deliveries = moda.admin("GET", "webhooks/deliveries")["deliveries"]
    assert [d["fault"] for d in deliveries] == ["concurrent"] * 3 + ["deliver_again"] * 2
    assert ledger.actions == [event["id"]]  # five deliveries, one action
    assert moda.admin("GET", "webhooks/faults")["unfired"] == []


def test_callback_url_of_the_task_is_called_and_drain_clears_the_check(moda, right_receiver):
    ledger, url = right_receiver
    create_task(moda, "k-2", callback_url=url)
    moda.admin("POST", "webhooks/trigger", {"resource_id": "task_000001"})
    moda.admin("POST", "webhooks/deliver")
    assert ledger.types == ["task.created", "task.completed"]
    moda.admin("POST", "webhooks/configure", {"schedule": [5]})
    create_task(moda, "k-3", prompt="another", callback_url=url + "/missing-port-free")
    assert moda.admin("POST", "webhooks/drain")["drained"] == 1
    assert moda.admin("GET", "webhooks/deliveries")["problems"] == []


@pytest.mark.parametrize(
    ("call", "body", "status", "words"),
    [
        ("webhooks/endpoints", {"url": "https://example.com/hook"}, 400, "not on loopback"),
        ("webhooks/endpoints", {}, 400, '"url" is required'),
        ("webhooks/endpoints", {"url": "http://127.0.0.1:1/", "colour": 1}, 400, "unknown"),
        ("webhooks/redeliver", {"event_id": "evt_nope"}, 404, "no event 'evt_nope'"),
        ("webhooks/redeliver", {}, 400, '"event_id" is required'),
        ("webhooks/faults", {"kind": "meteor"}, 400, "the kinds are"),
        ("webhooks/faults", {"kind": "chaos", "rate": 7}, 400, "rate must be"),
        ("webhooks/configure", {"schedule": ["soon"]}, 400, "schedule"),
    ],
)
def test_bad_webhook_admin_calls_get_a_4xx_naming_the_fix(moda, call, body, status, words):
    response = moda.call("POST", f"/__admin/{call}", body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_stripe_server_signs_what_stripe_python_verifies(servers):
    stripe_server = servers["stripe"]
    stripe_server.admin("POST", "reset")
    verified: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        event = stripe.Webhook.construct_event(
            request.get_data(), request.headers["Stripe-Signature"], "whsec_from_go"
        )
        verified.append(event.type)
        return Response("ok")(environ, start_response)

    served = Served(app)
    try:
        stripe_server.admin(
            "POST", "webhooks/endpoints", {"url": served.url, "secret": "whsec_from_go"}
        )
        response = stripe_server.call(
            "POST",
            "/v1/customers",
            headers={
                "Authorization": "Bearer sk_test_123",
                "Idempotency-Key": "go-1",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            content=b"email=jenny%40example.com",
        )
        assert response.status_code == 200, response.text
        stripe_server.admin("POST", "webhooks/deliver")
    finally:
        served.close()
    assert verified == ["customer.created"]
    (delivery,) = stripe_server.admin("GET", "webhooks/deliveries")["deliveries"]
    assert delivery["status"] == 200
    assert json.loads(json.dumps(delivery))["event_id"].startswith("evt_")
