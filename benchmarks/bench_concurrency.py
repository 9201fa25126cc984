"""Concurrency: 64 threads send one key at once, 1,000 rounds.

Each thread keeps its own keep-alive connection (``http.client``, the lightest real client, so
the 2-core machine spends its time in the server). In every round all 64 threads wait at a
barrier, then send the same keyed POST; the journal must show exactly one execution (one
``new`` decision, one side effect) and every other answer an in-flight 409 or a replay. The
latency of each answer is measured from the barrier's release to the last byte.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
from typing import Any

from benchmarks.common import percentile
from pytest_idempotency import (
    App,
    HandlerContext,
    IdempotencyServer,
    Reply,
    Route,
    Variant,
    default_create_handler,
    get_variant,
)

THREADS = 64
BODY = json.dumps({"name": "concurrent", "amount": 500}).encode()


def slow_generic(delay: float) -> Variant:
    """The generic variant whose create handler takes ``delay`` seconds (a wider race window)."""
    create = default_create_handler("object", "obj")

    def slow_create(ctx: HandlerContext) -> Reply:
        time.sleep(delay)
        return create(ctx)

    generic = get_variant("generic")
    routes = (Route("POST *", slow_create, name="create"), *generic.routes[1:])
    return dataclasses.replace(generic, name="generic-slow", routes=routes)


def run(rounds: int = 1000, threads: int = THREADS, delay: float = 0.0) -> dict[str, Any]:
    app = App(slow_generic(delay) if delay else get_variant("generic"))
    server = IdempotencyServer(app)
    server.start()
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    statuses: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    key_of_round: list[str] = [""]

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            for _ in range(rounds):
                barrier.wait()
                key = key_of_round[0]
                start = time.perf_counter()
                conn.request(
                    "POST",
                    "/v1/things",
                    body=BODY,
                    headers={"Idempotency-Key": key, "Content-Type": "application/json"},
                )
                response = conn.getresponse()
                response.read()
                latencies[index].append(time.perf_counter() - start)
                statuses[index].append(response.status)
                barrier.wait()
        except BaseException as exc:  # recorded and re-raised in the main thread
            errors.append(exc)
            barrier.abort()
        finally:
            conn.close()

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    executions: list[int] = []
    decisions: dict[str, int] = {}
    started = time.perf_counter()
    try:
        for number in range(rounds):
            app.reset()
            key_of_round[0] = f"round-{number:05d}"
            barrier.wait()  # go
            barrier.wait()  # every answer is in
            journal = app.state.journal
            executions.append(sum(1 for e in journal if e.decision == "new"))
            if len(journal.side_effects) != executions[-1]:
                raise AssertionError(f"round {number}: side effects differ from executions")
            for exchange in journal:
                decision = str(exchange.decision)
                decisions[decision] = decisions.get(decision, 0) + 1
    finally:
        elapsed = time.perf_counter() - started
        for thread in workers:
            thread.join(10)
        server.stop()
    if errors:
        raise errors[0]
    flat = [x * 1000 for per in latencies for x in per]
    status_counts: dict[int, int] = {}
    for per in statuses:
        for status in per:
            status_counts[status] = status_counts.get(status, 0) + 1
    return {
        "rounds": rounds,
        "threads": threads,
        "exactly_one": sum(1 for n in executions if n == 1),
        "executions": executions,
        "decisions": decisions,
        "statuses": status_counts,
        "p50_ms": percentile(flat, 50),
        "p99_ms": percentile(flat, 99),
        "max_ms": max(flat),
        "seconds": elapsed,
        "delay": delay,
    }


def report(results: list[dict[str, Any]]) -> list[str]:
    first = results[0]
    lines = [
        "## Concurrency: one key, many threads at once",
        "",
        f"{first['threads']} threads, each on its own keep-alive connection (`http.client`), "
        "wait at a barrier and send the same keyed POST (generic variant), a new key each "
        "round. With the stock handler the first request usually finishes before the others "
        "are parsed, so they replay; with a handler that takes 5 ms many duplicates arrive "
        "while the original is in flight and get the in-flight 409, the later ones a replay.",
        "",
        "| handler | rounds (requests) | rounds with exactly one execution | decisions | "
        "statuses | p50 | p99 | max |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        rounds = result["rounds"]
        ok = "met" if result["exactly_one"] == rounds else "MISSED"
        decisions = ", ".join(f"{k} {v:,}" for k, v in sorted(result["decisions"].items()))
        statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(result["statuses"].items()))
        handler = f"takes {result['delay'] * 1000:.0f} ms" if result["delay"] else "stock"
        lines.append(
            f"| {handler} | {rounds:,} ({rounds * result['threads']:,} in "
            f"{result['seconds']:.1f} s) | {result['exactly_one']:,} of {rounds:,} "
            f"(target every round: {ok}) | {decisions} | {statuses} | "
            f"{result['p50_ms']:.1f} ms | {result['p99_ms']:.1f} ms | {result['max_ms']:.1f} ms |"
        )
    lines += [
        "",
        "Latency runs from the barrier's release to the answer's last byte, so it includes "
        f"queueing behind the other {first['threads'] - 1} requests on this machine's cores.",
        "",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report([run(), run(200, delay=0.005)])))
