"""Memory of the standalone server under a long soak, with the default journal retention, and
the cost of reading the journal afterwards.

    python -m benchmarks.bench_soak [REQUESTS [UNIQUE]]   # default 1,000,000 and 300,000

Keyed creates over a rotating set of 1,000 keys (so the idempotency store stays the same size
and what grows, if anything, is per-request state), on one keep-alive connection; then, on a
fresh server, creates with a new key every time (what grows is the store and the resources,
up to their default bounds of 100,000 each; later keys are refused with 507). RSS is read
from ``/proc/PID/status`` at checkpoints; progress lines go to stderr as it runs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.wire_client import Client, start, stop

REQUESTS = 1_000_000
UNIQUE_REQUESTS = 300_000
KEYS = 1000
CHECKPOINTS = 10


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(requests: int = REQUESTS) -> dict[str, object]:
    proc, port = start("fake")
    client = Client(port)
    rss: list[tuple[int, float]] = []
    try:
        for index in range(2000):
            client.create(f"key-{index % KEYS}")
        rss.append((0, rss_mib(proc.pid)))
        step = max(1, requests // CHECKPOINTS)
        started = time.perf_counter()
        for index in range(requests):
            client.create(f"key-{index % KEYS}")
            if (index + 1) % step == 0:
                rss.append((index + 1, rss_mib(proc.pid)))
                print(
                    f"{index + 1} requests, RSS {rss[-1][1]:.1f} MiB", file=sys.stderr, flush=True
                )
        elapsed = time.perf_counter() - started
        began = time.perf_counter()
        whole = client.get("/__admin/journal")
        whole_s = time.perf_counter() - began
        began = time.perf_counter()
        page = client.get("/__admin/journal?limit=100")
        page_s = time.perf_counter() - began
        summary = json.loads(whole)
        return {
            "requests": requests,
            "seconds": elapsed,
            "rss": rss,
            "journal_seconds": whole_s,
            "journal_bytes": len(whole),
            "journal_kept": len(summary["exchanges"]),
            "journal_dropped": summary["dropped_exchanges"],
            "page_seconds": page_s,
            "page_bytes": len(page),
            "rss_after_read": rss_mib(proc.pid),
        }
    finally:
        client.close()
        stop(proc)


def run_unique(requests: int = UNIQUE_REQUESTS) -> dict[str, object]:
    """A new key on every request: RSS at checkpoints and the answers' statuses."""
    proc, port = start("fake")
    client = Client(port)
    rss: list[tuple[int, float]] = [(0, rss_mib(proc.pid))]
    statuses: dict[int, int] = {}
    try:
        step = max(1, requests // CHECKPOINTS)
        for index in range(requests):
            status = client.create(f"unique-{index}")
            statuses[status] = statuses.get(status, 0) + 1
            if (index + 1) % step == 0:
                rss.append((index + 1, rss_mib(proc.pid)))
                print(f"{index + 1} unique keys, RSS {rss[-1][1]:.1f} MiB", file=sys.stderr)
        health = json.loads(client.get("/__admin/health"))
        return {"requests": requests, "rss": rss, "statuses": statuses, "health": health}
    finally:
        client.close()
        stop(proc)


def report_unique(result: dict[str, object]) -> list[str]:
    rss, statuses, health = result["rss"], result["statuses"], result["health"]
    assert isinstance(rss, list)
    assert isinstance(statuses, dict)
    assert isinstance(health, dict)
    rows = [f"| {count:,} | {mib:.1f} |" for count, mib in rss]
    answered = ", ".join(f"{code}: {count:,}" for code, count in sorted(statuses.items()))
    return [
        "### A new key on every request",
        "",
        f"{result['requests']:,} keyed creates with a new key each time on a fresh standalone "
        "server with its default bounds (10,000 exchanges, 100,000 records, 100,000 objects). "
        "RSS of the server process:",
        "",
        "| requests served | RSS (MiB) |",
        "|---|---|",
        *rows,
        "",
        f"Answers: {answered}. The store then held {health['records']:,} records and had "
        f"refused {health['refused_keys']:,} new keys (507, nothing run); the resources held "
        f"{health['objects']:,} objects.",
        "",
    ]


def report(result: dict[str, object]) -> list[str]:
    rss = result["rss"]
    assert isinstance(rss, list)
    rows = [f"| {count:,} | {mib:.1f} |" for count, mib in rss]
    return [
        "## Memory under a long soak",
        "",
        f"{result['requests']:,} keyed creates (over a rotating set of {KEYS:,} keys) on one "
        "keep-alive connection to the standalone server with its default journal retention "
        f"(10,000 exchanges); {result['seconds']:.0f} s. RSS of the server process:",
        "",
        "| requests served | RSS (MiB) |",
        "|---|---|",
        *rows,
        "",
        f"Then `GET /__admin/journal` (the {result['journal_kept']:,} kept exchanges; "
        f"{result['journal_dropped']:,} dropped and counted) took "
        f"{result['journal_seconds'] * 1000:.0f} ms for {result['journal_bytes'] / 1e6:.1f} MB, "
        f"and one page (`?limit=100`) {result['page_seconds'] * 1000:.1f} ms for "
        f"{result['page_bytes'] / 1e3:.0f} kB; RSS after reading: "
        f"{result['rss_after_read']:.1f} MiB.",
        "",
    ]


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else REQUESTS
    unique = int(sys.argv[2]) if len(sys.argv) > 2 else UNIQUE_REQUESTS
    print("\n".join(report(run(count)) + report_unique(run_unique(unique))))
