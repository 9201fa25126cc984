"""Keyed-create throughput of the standalone server against a minimal keep-alive HTTP/1.1 server
written with the standard library (a canned response): same client, one run, alternating.

    python -m benchmarks.bench_floor
"""

from __future__ import annotations

from benchmarks.common import spread
from benchmarks.wire_client import Client, rate, start, stop

ROUNDS = 7
REQUESTS = 2000


def run(rounds: int = ROUNDS, requests: int = REQUESTS) -> dict[str, list[float]]:
    fake, fake_port = start("fake")
    floor, floor_port = start("floor")
    out: dict[str, list[float]] = {"fake": [], "floor": [], "ratio": []}
    try:
        fake_client, floor_client = Client(fake_port), Client(floor_port)
        rate(fake_client, 300, "warm")
        rate(floor_client, 300, "warm")
        for index in range(rounds):
            first, second = (
                (fake_client, floor_client) if index % 2 else (floor_client, fake_client)
            )
            a = rate(first, requests, f"r{index}a")
            b = rate(second, requests, f"r{index}b")
            fake_rate, floor_rate = (a, b) if first is fake_client else (b, a)
            out["fake"].append(fake_rate)
            out["floor"].append(floor_rate)
            out["ratio"].append(fake_rate / floor_rate)
        fake_client.close()
        floor_client.close()
    finally:
        stop(fake)
        stop(floor)
    return out


def report(result: dict[str, list[float]]) -> list[str]:
    ratio = spread(result["ratio"])
    return [
        "## Throughput against a minimal keep-alive server",
        "",
        "Keyed creates (`POST /v1/things` with a fresh `Idempotency-Key`, generic variant) on one "
        "keep-alive connection, from one lean raw-socket client, against the standalone server "
        "(`python -m pytest_idempotency serve`) and against a minimal standard-library "
        "`ThreadingHTTPServer` keep-alive server that reads the body and returns a canned 201. "
        f"{len(result['ratio'])} alternating rounds of {REQUESTS} requests in one run. "
        "Goal: at least 0.8x of the floor.",
        "",
        "| server | requests per second |",
        "|---|---|",
        f"| standard-library floor | {spread(result['floor']).fmt(0)} |",
        f"| pytest-idempotency standalone | {spread(result['fake']).fmt(0)} |",
        f"| **ratio (fake / floor)** | **{ratio.fmt(2)}x** |",
        "",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))
