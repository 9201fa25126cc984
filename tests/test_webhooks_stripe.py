"""The ``stripe`` preset's webhooks: Stripe's event shape, signed so that stripe-python's
``stripe.Webhook.construct_event`` accepts them with the test's secret."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import stripe
from webhooks_receivers import Served
from werkzeug.wrappers import Request, Response

from pytest_idempotency.providers.stripe import LIVE_MODE_SCHEDULE
from pytest_idempotency.webhooks import DEFAULT_SECRET, sign, verify

pytestmark = pytest.mark.idempotency(variant="stripe")


def sdk(api: Any) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_123", base_addresses={"api": api.url}, max_network_retries=2
    )


class StripeReceiver:
    """A Flask-style endpoint, as Stripe's docs write it: verify, then dedupe on event.id."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.events: list[stripe.Event] = []
        self.rejected: list[str] = []
        self.signatures: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        payload = request.get_data()
        header = request.headers.get("Stripe-Signature")
        with self.lock:
            self.signatures.append(header or "")
            if self.fail_first:
                self.fail_first -= 1
                return Response("busy", status=503)(environ, start_response)
        try:
            event = stripe.Webhook.construct_event(payload, header, self.secret)
        except stripe.SignatureVerificationError as exc:
            with self.lock:
                self.rejected.append(str(exc))
            return Response("bad signature", status=400)(environ, start_response)
        with self.lock:
            if all(seen.id != event.id for seen in self.events):
                self.events.append(event)
        return Response("ok")(environ, start_response)


def test_stripe_event_is_verified_by_construct_event_and_has_stripes_shape(idempotent_api):
    receiver = StripeReceiver(DEFAULT_SECRET)
    idempotent_api.webhooks.register(receiver, kind="wsgi")
    customer = sdk(idempotent_api).v1.customers.create(
        {"email": "jenny@example.com"}, {"idempotency_key": "signup-42"}
    )
    idempotent_api.clock.advance(0)

    assert receiver.rejected == []
    (event,) = receiver.events
    assert event.id.startswith("evt_")
    assert event.object == "event"
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    assert event.data.object.email == "jenny@example.com"
    assert event.request.idempotency_key == "signup-42"
    assert event.livemode is False
    idempotent_api.webhooks.assert_delivered("customer.created", times=1)


def test_stripe_signature_header_is_t_and_v1_hmac_sha256_over_t_dot_payload(idempotent_api):
    got: list[tuple[str, bytes]] = []
    idempotent_api.webhooks.register(
        lambda r: got.append((r.header("Stripe-Signature") or "", r.body))
    )
    sdk(idempotent_api).v1.customers.create({"name": "Jenny"})
    idempotent_api.clock.advance(0)

    ((header, body),) = got
    stamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(stamp - idempotent_api.clock.now()) < 5
    assert header == sign(body, DEFAULT_SECRET, stamp)
    assert verify(body, header, DEFAULT_SECRET)
    stripe.WebhookSignature.verify_header(body.decode(), header, DEFAULT_SECRET, tolerance=300)


def test_stripe_event_signed_with_another_secret_is_refused_by_stripe_python(idempotent_api):
    receiver = StripeReceiver("whsec_the_real_one")
    idempotent_api.webhooks.register(receiver, kind="wsgi")  # signs with the default secret
    sdk(idempotent_api).v1.customers.create({"name": "Jenny"})
    idempotent_api.clock.advance(0)

    assert receiver.events == []
    assert "No signatures found matching the expected signature" in receiver.rejected[0]
    assert idempotent_api.webhooks.deliveries[0].status == 400
    idempotent_api.webhooks.drain()  # the retries stay unmade on purpose


def test_stripe_endpoint_secret_is_the_tests_choice(idempotent_api):
    receiver = StripeReceiver("whsec_from_the_dashboard")
    idempotent_api.webhooks.register(receiver, kind="wsgi", secret="whsec_from_the_dashboard")
    sdk(idempotent_api).v1.customers.create({"name": "Jenny"})
    idempotent_api.clock.advance(0)
    assert [e.type for e in receiver.events] == ["customer.created"]


def test_stripe_retry_after_503_is_re_signed_at_the_fake_clocks_time(idempotent_api):
    receiver = StripeReceiver(DEFAULT_SECRET, fail_first=1)
    served = Served(receiver)
    try:
        idempotent_api.webhooks.register(served.url)
        sdk(idempotent_api).v1.customers.create({"name": "Jenny"})
        idempotent_api.clock.advance(0)
        assert receiver.events == []
        idempotent_api.clock.advance(599)
        assert receiver.events == []  # test mode: the first retry is 600 s later
        idempotent_api.clock.advance(1)
    finally:
        served.close()
    assert [e.type for e in receiver.events] == ["customer.created"]
    first, second = (int(s.split(",")[0][2:]) for s in receiver.signatures)
    assert 599 <= second - first <= 602
    assert [a.status for a in idempotent_api.webhooks.deliveries] == [503, 200]


def test_stripe_replayed_request_emits_no_second_event(idempotent_api):
    got: list[dict[str, Any]] = []
    idempotent_api.webhooks.register(lambda r: got.append(r.json()))
    client = sdk(idempotent_api)
    client.v1.customers.create({"name": "Jenny"}, {"idempotency_key": "once"})
    client.v1.customers.create({"name": "Jenny"}, {"idempotency_key": "once"})
    idempotent_api.clock.advance(0)
    assert [e["type"] for e in got] == ["customer.created"]
    idempotent_api.assert_exactly_once()


def test_stripe_payment_intent_confirm_emits_payment_intent_succeeded(idempotent_api):
    got: list[dict[str, Any]] = []
    idempotent_api.webhooks.register(lambda r: got.append(r.json()), events=["payment_intent.*"])
    client = sdk(idempotent_api)
    intent = client.v1.payment_intents.create({"amount": 2000, "currency": "usd"})
    client.v1.payment_intents.confirm(intent.id)
    idempotent_api.clock.advance(0)
    assert [e["type"] for e in got] == ["payment_intent.created", "payment_intent.succeeded"]
    assert got[1]["data"]["object"]["status"] == "succeeded"
    assert json.loads(json.dumps(got[1]))["request"]["id"].startswith("req_")


def test_stripe_test_mode_retries_three_times_and_live_mode_schedule_is_an_override(
    idempotent_api,
):
    statuses: list[int] = []
    idempotent_api.webhooks.register(lambda r: statuses.append(500) or 500)
    sdk(idempotent_api).v1.customers.create({"name": "Jenny"})
    idempotent_api.clock.advance(days=1)
    assert len(statuses) == 4  # the first attempt and 3 retries, within a few hours
    assert idempotent_api.webhooks.jobs[0].state == "failed"

    idempotent_api.reset()
    idempotent_api.webhooks.configure(schedule=LIVE_MODE_SCHEDULE)
    idempotent_api.webhooks.register(lambda r: 500)
    sdk(idempotent_api).v1.customers.create({"name": "Jenny"})
    idempotent_api.clock.advance(days=2)
    assert idempotent_api.webhooks.jobs[0].state == "pending"  # still retrying
    idempotent_api.clock.advance(days=1)
    assert len(idempotent_api.webhooks.deliveries) == 10
    assert idempotent_api.webhooks.jobs[0].state == "failed"
