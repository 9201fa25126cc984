"""The fault-schedule explorer: schedules per second, total time, and the explorer's own cost.

Two workloads, each explored at ``max_faults=2`` with the full fault menu, several rounds:

- (a) a requests-based client that makes three attempts under one key (retrying connection
  errors, 409 and 5xx with backoff) against ``phantom``;
- (b) stripe-python (``StripeClient``, ``max_network_retries=3``) creating a customer against
  ``stripe``.

A run's time splits into the operation's own time (the client and the server at work, and the
client waiting out its own timeout when the fake holds a reply back: ``late`` and
``in_flight`` schedules) and the explorer's own cost (reset, scripting the faults, the thread,
settling, the verdict). Backoff sleeps advance the fake clock and cost no wall time.

    python -m benchmarks.bench_explore            # print, and refresh the section in the doc
    python -m benchmarks.bench_explore --no-write
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import stripe

from benchmarks.common import percentile, quiet, spread
from pytest_idempotency import App, IdempotencyServer, IdempotentAPI, get_variant
from pytest_idempotency.explore import ExplorationReport

ROUNDS = 3
TIMEOUT = 0.25  # the clients' own timeout: what a held-back reply costs per attempt
FILIBUSTER_MS = 130.0  # Filibuster's reported cost per generated test (SoCC 2021)
WAITING = ("late", "in_flight")
DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
HEADING = "## Explorer: schedules per second"


def three_attempts(api: IdempotentAPI) -> Callable[[], Any]:
    def operation() -> Any:
        key = str(uuid.uuid4())
        session = requests.Session()
        for attempt in range(3):
            try:
                response = session.post(
                    api.url_for("/api/v1/economy/adjust"),
                    json={"user_id": "123", "delta": 500},
                    headers=api.headers(key),
                    timeout=TIMEOUT,
                )
                if response.status_code < 500 and response.status_code != 409:
                    response.raise_for_status()
                    return response.json()
            except requests.RequestException:
                pass
            time.sleep(0.5 * 2**attempt)
        raise RuntimeError("gave up")

    return operation


def stripe_python(api: IdempotentAPI) -> Callable[[], Any]:
    client = stripe.StripeClient(
        "sk_test_123",
        base_addresses={"api": api.url},
        max_network_retries=3,
        http_client=stripe.RequestsClient(timeout=TIMEOUT),
    )
    return lambda: client.v1.customers.create(params={"email": "jenny@example.com"})


WORKLOADS: dict[str, tuple[str, Callable[[IdempotentAPI], Callable[[], Any]]]] = {
    "(a) requests, three attempts, vs phantom": ("phantom", three_attempts),
    "(b) stripe-python, max_network_retries=3, vs stripe": ("stripe", stripe_python),
}


def _measure(report: ExplorationReport, wall: float) -> dict[str, float]:
    schedules = report.schedules
    waiting = [s for s in schedules if any(f.name in WAITING for f in s.faults)]
    other = [s for s in schedules if s not in waiting]
    own = [(s.elapsed - s.operation_seconds) * 1000 for s in schedules]
    other_time = sum(s.elapsed for s in other)
    return {
        "schedules": len(schedules),
        "wall": wall,
        "per_second": len(schedules) / wall,
        "waiting_schedules": len(waiting),
        "waiting": sum(s.operation_seconds for s in waiting),
        "other_per_second": len(other) / other_time if other_time else float("nan"),
        "own_median_ms": statistics.median(own),
        "own_p90_ms": percentile(own, 90),
    }


def _findings(report: ExplorationReport) -> str:
    """What the unsafe schedules were, by verdict and party: ``12 duplicate (provider)``."""
    counts: dict[str, int] = {}
    for schedule in report.unsafe:
        party = schedule.attribution.party if schedule.attribution else "?"
        label = f"{schedule.verdict} ({party})"
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n} {label}" for label, n in sorted(counts.items())) or "none"


def run(rounds: int = ROUNDS) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for title, (variant, build) in WORKLOADS.items():
        app = App(get_variant(variant))
        server = IdempotencyServer(app)
        server.start()
        try:
            api = IdempotentAPI(server, app)
            operation = build(api)
            samples: list[dict[str, float]] = []
            findings: set[str] = set()
            for _ in range(rounds):
                began = time.perf_counter()
                report = api.explore(operation, max_faults=2)
                samples.append(_measure(report, time.perf_counter() - began))
                findings.add(_findings(report))
        finally:
            server.stop()
        row: dict[str, Any] = {name: spread([s[name] for s in samples]) for name in samples[0]}
        row["findings"] = " / ".join(sorted(findings))
        out[title] = row
    return out


def report(result: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        HEADING,
        "",
        "`idempotent_api.explore(operation, max_faults=2)` with the full fault menu (reset, drop, "
        "late, 503 with and without Retry-After, 500 after the side effect, garbage, in flight, "
        f"restart), {ROUNDS} rounds each; the clients' timeout is {TIMEOUT} s. The explorer's own "
        "cost is a run's wall time minus the time inside the operation (reset, scripting the "
        "faults, the operation's thread, settling held requests, the verdict). `late` and "
        "`in_flight` schedules are shown apart: there the operation waits out its own timeout "
        "before it retries, which is the client's time, not the explorer's.",
        "",
        "| workload | schedules | total, s | schedules/s | late + in-flight schedules | "
        "operation time in them (mostly its own timeout waits), s | schedules/s without them | "
        "explorer's own cost per schedule, ms (median) | p90, ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for title, row in result.items():
        lines.append(
            f"| {title} | {row['schedules'].median:.0f} | {row['wall'].fmt(2)} | "
            f"{row['per_second'].fmt(1)} | {row['waiting_schedules'].median:.0f} | "
            f"{row['waiting'].fmt(2)} | {row['other_per_second'].fmt(1)} | "
            f"{row['own_median_ms'].fmt(2)} | {row['own_p90_ms'].fmt(2)} |"
        )
    lines += [
        "",
        "What the explorations found (unsafe schedules by verdict and party; the same "
        "in every round unless several are listed):",
        "",
    ]
    lines += [f"- {title}: {row['findings']}" for title, row in result.items()]
    worst = max(row["own_median_ms"].median for row in result.values())
    verdict = "met" if worst <= 5.0 else "MISSED"
    lines += [
        "",
        f"Goal: the explorer's own cost per schedule <= 5 ms median: {verdict} (worst median "
        f"{worst:.2f} ms, {FILIBUSTER_MS / worst:.0f}x under Filibuster's reported "
        f"{FILIBUSTER_MS:.0f} ms per generated test; see docs/explore.md).",
        "",
    ]
    return lines


def write(lines: list[str]) -> None:
    """Replace this benchmark's section of docs/performance.md (or append it)."""
    text = DOC.read_text(encoding="utf-8")
    section = "\n".join(lines).rstrip() + "\n"
    pattern = re.compile(re.escape(HEADING) + r".*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; keep the doc")
    args = parser.parse_args(argv)
    quiet()
    lines = report(run())
    print("\n".join(lines))
    if not args.no_write:
        write(lines)
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
