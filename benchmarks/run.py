"""Run every benchmark and rewrite ``docs/performance.md`` with the results.

    python benchmarks/run.py            # everything, a few minutes
    python benchmarks/run.py --no-write # print the report, leave the doc alone

These are measurements, not tests: pytest never runs them, and no test depends on speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402
    bench_concurrency,
    bench_explore,
    bench_floor,
    bench_in_situ,
    bench_memory,
    bench_openapi,
    bench_overhead,
    bench_per_test,
    bench_pipeline,
    bench_profile,
    bench_soak,
    bench_webhooks,
)
from benchmarks.common import machine, quiet  # noqa: E402

DOC = ROOT / "docs" / "performance.md"
COMMAND = "python benchmarks/run.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; keep the doc")
    parser.add_argument(
        "--soak-requests",
        type=int,
        default=bench_soak.REQUESTS,
        metavar="N",
        help=f"requests of the memory soak (default: {bench_soak.REQUESTS:,}, about half an hour)",
    )
    args = parser.parse_args(argv)
    quiet()
    started = time.perf_counter()
    sections: list[list[str]] = []
    steps = (
        ("profile", lambda: bench_profile.report(bench_profile.run())),
        ("overhead", lambda: bench_overhead.report(bench_overhead.run())),
        ("per-test cost", lambda: bench_per_test.report(bench_per_test.run())),
        (
            "concurrency",
            lambda: bench_concurrency.report(
                [bench_concurrency.run(1000), bench_concurrency.run(200, delay=0.005)]
            ),
        ),
        ("memory and growth", lambda: bench_memory.report(bench_memory.run())),
        ("explorer", lambda: bench_explore.report(bench_explore.run())),
        ("pipeline", lambda: bench_pipeline.report(bench_pipeline.run())),
        ("throughput floor", lambda: bench_floor.report(bench_floor.run())),
        ("in situ", lambda: bench_in_situ.report(bench_in_situ.run())),
        ("soak", lambda: bench_soak.report(bench_soak.run(args.soak_requests))),
        ("soak, unique keys", lambda: bench_soak.report_unique(bench_soak.run_unique())),
        ("webhooks", lambda: bench_webhooks.report(bench_webhooks.run())),
        ("openapi", lambda: bench_openapi.report(bench_openapi.run())),
    )
    for name, step in steps:
        print(f"== {name}", file=sys.stderr, flush=True)
        began = time.perf_counter()
        lines = step()
        print(f"   {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
        sections.append(lines)
    total = time.perf_counter() - started
    facts = machine()
    head = [
        "# Performance",
        "",
        "How fast and how small the fake is, measured by the benchmarks in `benchmarks/` "
        "(see its README). This page is generated: rerun the command below to refresh it; "
        "do not edit it by hand.",
        "",
        "Every speed figure that compares the fake with something else is a ratio measured "
        "side by side in one run, because absolute times on a shared machine drift; each is "
        "the median over several rounds with the lowest and highest round in brackets. The "
        "targets are the project's goals; none of them is checked by the test suite.",
        "",
        f"- Command: `{COMMAND}` (from the repository root; {total / 60:.1f} minutes for this run)",
        f"- Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {facts['CPU']}, nproc {facts['nproc']}, {facts['OS']}",
        f"- Python {facts['Python']}; werkzeug {facts['werkzeug']}, pytest-httpserver "
        f"{facts['pytest-httpserver']}, requests {facts['requests']}, httpx {facts['httpx']}",
        "",
    ]
    text = "\n".join(head + [line for section in sections for line in section]).rstrip() + "\n"
    print(text)
    if not args.no_write:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
