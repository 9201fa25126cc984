"""Keyed-create throughput of the standalone server against a minimal keep-alive HTTP/1.1 server
written with the standard library (a canned response): same client, one run, alternating.

The fake's own wire (its HTTP/1.1 server around a canned app) runs in the same rounds, so the
gap splits into what the wire costs and what the idempotency layer costs; so does a minimal
keyed-create server (the least a Python server must do per keyed create), the best the fake's
request path could reach in this language.

    python -m benchmarks.bench_floor
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.common import spread
from benchmarks.wire_client import Client, cpu_seconds, rate, start, stop

ROUNDS = 7
REQUESTS = 2000
SERVERS = ("floor", "wire", "fake", "minimal")


def run(rounds: int = ROUNDS, requests: int = REQUESTS) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    procs = {name: start(name) for name in SERVERS}
    out: dict[str, Any] = {f"{name}{what}": [] for name in SERVERS for what in ("", "_cpu")}
    out["ratio"], out["wire_ratio"], out["minimal_ratio"] = [], [], []
    try:
        clients = {name: Client(port) for name, (_, port) in procs.items()}
        for name, client in clients.items():
            rate(client, 300, f"warm-{name}")
        for index in range(rounds):
            shift = index % len(SERVERS)
            rates = {}
            for name in SERVERS[shift:] + SERVERS[:shift]:
                pid = procs[name][0].pid
                before = cpu_seconds(pid)
                rates[name] = rate(clients[name], requests, f"r{index}-{name}")
                out[f"{name}_cpu"].append((cpu_seconds(pid) - before) / requests * 1e6)
                out[name].append(rates[name])
            out["ratio"].append(rates["fake"] / rates["floor"])
            out["wire_ratio"].append(rates["wire"] / rates["floor"])
            out["minimal_ratio"].append(rates["minimal"] / rates["floor"])
        for client in clients.values():
            client.close()
    finally:
        for proc, _ in procs.values():
            stop(proc)
    out["load"] = (load_before, os.getloadavg()[0])
    out["requests"] = requests
    return out


def report(result: dict[str, Any]) -> list[str]:
    ratio = spread(result["ratio"])
    load = result["load"]
    verdict = "met" if ratio.median >= 0.8 else "**not met**"
    cpu = {name: spread(result[f"{name}_cpu"]).median for name in SERVERS}
    return [
        "## Throughput against a minimal keep-alive server",
        "",
        "Keyed creates (`POST /v1/things` with a fresh `Idempotency-Key`, generic variant) on one "
        "keep-alive connection, from one lean raw-socket client, against the standalone server "
        "(`python -m pytest_idempotency serve`) and against a minimal standard-library "
        "`ThreadingHTTPServer` keep-alive server that reads the body and returns a canned 201. "
        "A third server is the fake's own HTTP/1.1 server around a canned app (strict parsing, "
        "limits and keep-alive, no idempotency layer). A fourth is a minimal keyed-create "
        "server written for this comparison: it parses the head into a dict, reads the JSON "
        "body, fingerprints it (SHA-256 of canonical JSON), claims the key in one dict under a "
        "lock and answers the new object as JSON, with none of the fake's checks, faults, "
        "limits or journal detail; the least a Python server must do per keyed create. "
        f"{len(result['ratio'])} rounds of {result['requests']} requests per server in one run, "
        "the order "
        "rotating. Server CPU is user + system time of the server process per request "
        "(`/proc/PID/stat`). Goal: at least 0.8x of the floor.",
        "",
        "| server | requests per second | server CPU, us per request |",
        "|---|---|---|",
        f"| standard-library floor | {spread(result['floor']).fmt(0)} "
        f"| {spread(result['floor_cpu']).fmt(0)} |",
        f"| the fake's wire alone (canned app) | {spread(result['wire']).fmt(0)} "
        f"| {spread(result['wire_cpu']).fmt(0)} |",
        f"| pytest-idempotency standalone | {spread(result['fake']).fmt(0)} "
        f"| {spread(result['fake_cpu']).fmt(0)} |",
        f"| minimal keyed-create server | {spread(result['minimal']).fmt(0)} "
        f"| {spread(result['minimal_cpu']).fmt(0)} |",
        f"| **ratio (fake / floor)** | **{ratio.fmt(2)}x**; goal >= 0.8x: {verdict} | |",
        f"| ratio (wire alone / floor) | {spread(result['wire_ratio']).fmt(2)}x | |",
        f"| ratio (minimal keyed-create server / floor) "
        f"| {spread(result['minimal_ratio']).fmt(2)}x | |",
        "",
        f"Of the standalone server's {cpu['fake']:.0f} us of CPU per request, its wire takes about "
        f"{cpu['wire']:.0f} us (the floor's whole server takes {cpu['floor']:.0f} us) and the "
        f"idempotency layer the other {cpu['fake'] - cpu['wire']:.0f} us. The minimal "
        f"keyed-create server needs {cpu['minimal']:.0f} us: the fake's whole request path costs "
        f"{cpu['fake'] / cpu['minimal']:.1f}x the least this work costs in Python. "
        f"Load average (1 min): {load[0]:.1f} before, {load[1]:.1f} after the run.",
        "",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))
