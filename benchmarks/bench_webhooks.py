"""Webhooks: what emitting costs a request, how fast deliveries go out, and a 3-day retry
schedule replayed by one jump of the fake clock.

- Emit cost: Moda ``POST /v1/tasks`` through the WSGI app alone (no sockets), each handler
  emitting ``task.created`` and scheduling ``task.completed``, vs. the same app with
  ``HandlerContext.emit`` switched off; rounds alternate which goes first. Ratio = time per
  request with emit / without (target <= 1.15x).
- Delivery over loopback: N events delivered by ``deliver_due()`` to a threaded werkzeug
  receiver, vs. a bare ``http.client`` loop posting the same bytes to the same receiver, side
  by side. Ratio = delivery throughput / bare throughput (target >= 0.80x).
- In process: the same N events to a plain callable (deliveries per second).
- Replay: one Stripe event to a receiver answering 500, live-mode schedule (10 attempts over
  about 2.9 days), ``clock.advance(days=3)``: milliseconds for the whole schedule.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.test import EnvironBuilder

from benchmarks.common import Spread, spread
from pytest_idempotency import App, Clock, get_variant
from pytest_idempotency.providers.stripe import LIVE_MODE_SCHEDULE
from pytest_idempotency.variant import HandlerContext
from pytest_idempotency.webhooks import Webhooks, hub_for

CALLS = 2000
EVENTS = 300


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return lambda data: None


def _environs(count: int) -> list[dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer moda_test_key_a"}
    out = []
    for n in range(count):
        body = {"prompt": "deck", "idempotency_key": f"bench-{n:012d}"}
        out.append(
            EnvironBuilder(
                path="/v1/tasks", method="POST", data=json.dumps(body).encode(), headers=headers
            ).get_environ()
        )
    return out


CHUNK = 100


def emit_cost(rounds: int = 5) -> dict[str, Spread]:
    """Per round: ``CALLS`` creates in chunks of ``CHUNK``, emit on and off alternating chunk
    by chunk (so load on a shared machine hits both alike); microseconds per request."""
    apps = {"with": App(get_variant("moda")), "without": App(get_variant("moda"))}
    emit = HandlerContext.emit
    silent: Any = lambda *args, **kwargs: None  # noqa: E731
    with_emit, without, ratios = [], [], []
    try:
        for n in range(rounds):
            spent = {"with": 0.0, "without": 0.0}
            for app in apps.values():
                app.reset()
            environs = {mode: _environs(CALLS) for mode in apps}
            for chunk in range(0, CALLS, CHUNK):
                order = (
                    ("with", "without") if (n + chunk // CHUNK) % 2 == 0 else ("without", "with")
                )
                for mode in order:
                    HandlerContext.emit = emit if mode == "with" else silent  # type: ignore[method-assign]
                    start = time.perf_counter()
                    for environ in environs[mode][chunk : chunk + CHUNK]:
                        apps[mode](environ, _start_response)
                    spent[mode] += time.perf_counter() - start
            with_emit.append(spent["with"] / CALLS * 1e6)
            without.append(spent["without"] / CALLS * 1e6)
            ratios.append(spent["with"] / spent["without"])
    finally:
        HandlerContext.emit = emit  # type: ignore[method-assign]
        for app in apps.values():
            app.reset()
    return {"with": spread(with_emit), "without": spread(without), "ratio": spread(ratios)}


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _receiver(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _hub(app: App) -> Webhooks:
    state = app.state
    return hub_for(state.resources, state.clock, state.variant)


def _fake_chunk(hooks: Webhooks, count: int) -> float:
    for n in range(count):
        hooks.emit("thing.created", {"id": f"t{n}", "n": n})
    start = time.perf_counter()
    made = hooks.deliver_due()
    elapsed = time.perf_counter() - start
    assert made == count, made
    return elapsed


def _bare_chunk(port: int, body: bytes, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/hook", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        conn.close()
    return time.perf_counter() - start


def delivery(rounds: int = 5, chunk: int = 25) -> dict[str, Spread]:
    """Per round ``EVENTS`` deliveries each way, alternating chunk by chunk."""
    server = make_server("127.0.0.1", 0, _receiver, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    app = App(get_variant("generic"), clock=Clock())
    body = json.dumps({"id": "evt_000001abcd", "type": "thing.created", "data": {"id": "t"}})
    fake, bare, ratios, local = [], [], [], []
    try:
        for n in range(rounds):
            app.reset()
            hooks = _hub(app)
            hooks.register(url)
            spent = {"fake": 0.0, "bare": 0.0}
            for i in range(EVENTS // chunk):
                order = ("fake", "bare") if (n + i) % 2 == 0 else ("bare", "fake")
                for mode in order:
                    if mode == "fake":
                        spent[mode] += _fake_chunk(hooks, chunk)
                    else:
                        spent[mode] += _bare_chunk(server.server_port, body.encode(), chunk)
            fake.append(EVENTS / spent["fake"])
            bare.append(EVENTS / spent["bare"])
            ratios.append(spent["bare"] / spent["fake"])
            app.reset()
            hooks = _hub(app)
            hooks.register(lambda request: 200)
            local.append(EVENTS / _fake_chunk(hooks, EVENTS))
    finally:
        app.reset()
        server.shutdown()
        server.server_close()
    return {
        "fake": spread(fake),
        "bare": spread(bare),
        "ratio": spread(ratios),
        "callable": spread(local),
    }


def replay(rounds: int = 5) -> Spread:
    app = App(get_variant("stripe"))
    times = []
    for _ in range(rounds):
        app.reset()
        hooks = _hub(app)
        hooks.configure(schedule=LIVE_MODE_SCHEDULE)
        hooks.register(lambda request: 500)
        hooks.emit("customer.created", {"id": "cus_1", "object": "customer"})
        start = time.perf_counter()
        app.clock.advance(days=3)
        times.append((time.perf_counter() - start) * 1e3)
        assert len(hooks.deliveries) == len(LIVE_MODE_SCHEDULE) + 1
    app.reset()
    return spread(times)


def run() -> dict[str, Any]:
    return {"emit": emit_cost(), "delivery": delivery(), "replay": replay()}


def report(result: dict[str, Any]) -> list[str]:
    emit, deliver, replayed = result["emit"], result["delivery"], result["replay"]
    emit_ok = "met" if emit["ratio"].median <= 1.15 else "MISSED"
    deliver_ok = "met" if deliver["ratio"].median >= 0.8 else "MISSED"
    return [
        "## Webhooks: emit cost, delivery speed, schedule replay",
        "",
        f"Emit cost: {CALLS} keyed Moda task creates through the WSGI app alone per round (each "
        "emits `task.created` and schedules `task.completed`), with `HandlerContext.emit` on "
        f"and off, alternating every {CHUNK} requests. Delivery: {EVENTS} events per round by `deliver_due()` to a "
        "threaded werkzeug receiver on loopback (one `http.client` connection per delivery), "
        "against a bare `http.client` loop posting the same bytes to the same receiver.",
        "",
        "| measurement | figure | target |",
        "|---|---|---|",
        f"| app per request, emit on | {emit['with'].fmt(1, ' us')} | |",
        f"| app per request, emit off | {emit['without'].fmt(1, ' us')} | |",
        f"| ratio on/off | {emit['ratio'].fmt(2, 'x')} | <= 1.15x: {emit_ok} |",
        f"| deliveries to loopback, per s | {deliver['fake'].fmt(0)} | |",
        f"| bare http.client posts, per s | {deliver['bare'].fmt(0)} | |",
        f"| ratio delivery/bare | {deliver['ratio'].fmt(2, 'x')} | >= 0.80x: {deliver_ok} |",
        f"| deliveries to an in-process callable, per s | {deliver['callable'].fmt(0)} | |",
        f"| Stripe live-mode schedule (10 attempts, ~2.9 days) replayed by one "
        f"`clock.advance(days=3)` | {replayed.fmt(2, ' ms')} | |",
        "",
    ]


if __name__ == "__main__":
    from benchmarks.common import quiet

    quiet()
    print("\n".join(report(run())))
