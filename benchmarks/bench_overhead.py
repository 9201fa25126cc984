"""Overhead: keyed POSTs through the fake vs. pytest-httpserver's bare ``respond_with_json``.

Both servers run in this process on loopback, side by side; each round sends the same number of
requests to each (alternating which goes first) and the figure is the ratio of throughputs,
fake / bare, so drift of a shared machine cancels out. Scenarios: ``new`` (a fresh key per
request: the handler runs), ``replay`` (one key, same body) and ``conflict`` (one key, another
body: 409). Clients: a keep-alive ``requests.Session`` and an ``httpx.Client``.

The two servers are measured as they are: stock werkzeug (under pytest-httpserver) answers
``Connection: close`` and writes headers and body in separate sends, so its client reconnects
for every request; the fake keeps connections alive, sets TCP_NODELAY and writes each response
in one send.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx
import requests
from pytest_httpserver import HTTPServer

from benchmarks.common import Spread, quiet, spread
from pytest_idempotency import App, IdempotencyServer, get_variant

PATH = "/v1/things"
CONFLICT_PATH = "/v1/conflict"
BODY = {"name": "bench", "amount": 1200, "currency": "eur"}
OTHER = {"name": "bench", "amount": 1300, "currency": "eur"}

Send = Callable[[str, dict[str, Any], dict[str, str]], int]


def _clients() -> dict[str, tuple[Send, Callable[[], None]]]:
    session = requests.Session()
    client = httpx.Client()

    def with_requests(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        return session.post(url, json=body, headers=headers, timeout=5).status_code

    def with_httpx(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        return client.post(url, json=body, headers=headers, timeout=5).status_code

    return {
        "requests.Session": (with_requests, session.close),
        "httpx.Client": (with_httpx, client.close),
    }


def _rate(send: Send, requests_: list[tuple[str, dict[str, Any], dict[str, str], int]]) -> float:
    start = time.perf_counter()
    for url, body, headers, expected in requests_:
        status = send(url, body, headers)
        if status != expected:
            raise AssertionError(f"{url}: expected {expected}, got {status}")
    return len(requests_) / (time.perf_counter() - start)


def run(rounds: int = 7, per_round: int = 200) -> dict[str, Any]:
    quiet()
    app = App(get_variant("generic"))
    fake = IdempotencyServer(app)
    fake.start()
    bare = HTTPServer(threaded=True)
    bare.start()
    reply = {"id": "obj_000001", "object": "object", **BODY, "created": 1795000000}
    bare.expect_request(PATH, method="POST").respond_with_json(reply, status=201)
    conflict = {"error": {"code": "idempotency_key_reused", "message": "reused"}}
    bare.expect_request(CONFLICT_PATH, method="POST").respond_with_json(conflict, status=409)
    keys = itertools.count(1)
    results: dict[str, dict[str, Spread]] = {}
    rates: dict[str, dict[str, tuple[Spread, Spread]]] = {}
    try:
        for client_name, (send, close) in _clients().items():
            for scenario in ("new", "replay", "conflict"):
                ratios, fake_rates, bare_rates = [], [], []
                for index in range(rounds):
                    app.reset()
                    fixed = f"bench-replay-{next(keys)}"
                    send(fake.url_for(PATH), BODY, {"Idempotency-Key": fixed})  # stores it
                    batch_fake = []
                    batch_bare = []
                    for _ in range(per_round):
                        key = f"bench-{next(keys)}" if scenario == "new" else fixed
                        body = OTHER if scenario == "conflict" else BODY
                        status = 409 if scenario == "conflict" else 201
                        headers = {"Idempotency-Key": key}
                        batch_fake.append((fake.url_for(PATH), body, headers, status))
                        bare_path = CONFLICT_PATH if scenario == "conflict" else PATH
                        batch_bare.append((bare.url_for(bare_path), body, headers, status))
                    if index % 2:
                        bare_rate = _rate(send, batch_bare)
                        fake_rate = _rate(send, batch_fake)
                    else:
                        fake_rate = _rate(send, batch_fake)
                        bare_rate = _rate(send, batch_bare)
                    fake_rates.append(fake_rate)
                    bare_rates.append(bare_rate)
                    ratios.append(fake_rate / bare_rate)
                results.setdefault(client_name, {})[scenario] = spread(ratios)
                rates.setdefault(client_name, {})[scenario] = (
                    spread(fake_rates),
                    spread(bare_rates),
                )
                bare.clear_log()
            close()
    finally:
        bare.stop()
        fake.stop()
    return {"ratios": results, "rates": rates, "rounds": rounds, "per_round": per_round}


def report(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Overhead: the fake vs. a bare pytest-httpserver",
        "",
        f"{result['rounds']} rounds x {result['per_round']} keyed POSTs per server, scenario and "
        "client; both servers in one process, alternating which goes first. Ratio = fake "
        "throughput / bare throughput (target >= 0.90x).",
        "",
        "| client | scenario | fake req/s | bare req/s | ratio fake/bare | target |",
        "|---|---|---|---|---|---|",
    ]
    for client, scenarios in result["ratios"].items():
        for scenario, ratio in scenarios.items():
            fake_rate, bare_rate = result["rates"][client][scenario]
            verdict = "met" if ratio.median >= 0.9 else "MISSED"
            lines.append(
                f"| {client} | {scenario} | {fake_rate.fmt(0)} | {bare_rate.fmt(0)} | "
                f"{ratio.fmt(2, 'x')} | >= 0.90x: {verdict} |"
            )
    lines += [
        "",
        "Figures are median (lowest-highest round). The servers are measured as they are: stock "
        "werkzeug under pytest-httpserver answers every request with `Connection: close` and "
        "writes headers and body in separate sends, so the client opens a new connection per "
        "request; the fake keeps HTTP/1.1 connections alive, sets TCP_NODELAY and writes each "
        "response in one send. Neither server writes an access log during the run.",
        "",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
