"""Memory of the standalone server under a long soak, with the default journal retention, and
the cost of reading the journal afterwards.

    python -m benchmarks.bench_soak [REQUESTS]      # default 1,000,000

Keyed creates over a rotating set of 1,000 keys (so the idempotency store stays the same size
and what grows, if anything, is per-request state), on one keep-alive connection. RSS is read
from ``/proc/PID/status`` at checkpoints; progress lines go to stderr as it runs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from benchmarks.wire_client import Client, start, stop

REQUESTS = 1_000_000
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
    print("\n".join(report(run(count))))
