"""The request pipeline's cost: the WSGI app of this checkout against the app of a reference
revision (the one-function request handler before the named stages), side by side in one process.

The reference revision's package is unpacked from git into a temporary directory under another
name, so both apps are imported at once; rounds alternate which goes first. Keyed creates with
fresh keys on the generic and phantom variants, no sockets: only the app's own work is timed.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

from benchmarks.bench_profile import _environs, _start_response
from benchmarks.common import Spread, spread

ROOT = Path(__file__).resolve().parent.parent
#: The last revision with the request handled in one function (``App._handle``).
REFERENCE = "3b09b9b"
CALLS = 500
ROUNDS = 24


def _reference_package(revision: str, into: Path) -> Any:
    """Import ``pytest_idempotency`` as it was at ``revision``, as ``pytest_idempotency_ref``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "pytest_idempotency"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "pytest_idempotency").rename(into / "pytest_idempotency_ref")
    sys.path.insert(0, str(into))
    return importlib.import_module("pytest_idempotency_ref")


def _per_call_us(app: Any, environs: list[dict[str, Any]]) -> float:
    """CPU time of this process per call (the app is single-threaded here), so the other
    processes of a shared machine disturb it less than wall time would."""
    app.reset()
    start = time.process_time()
    for environ in environs:
        app(environ, _start_response)
    return (time.process_time() - start) / len(environs) * 1e6


def run(revision: str = REFERENCE) -> dict[str, dict[str, Spread]]:
    import pytest_idempotency as now

    results: dict[str, dict[str, Spread]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ref = _reference_package(revision, Path(tmp))
        for variant in ("generic", "phantom"):
            apps = {
                "pipeline": now.App(now.get_variant(variant)),
                "reference": ref.App(ref.get_variant(variant)),
            }
            times: dict[str, list[float]] = {"pipeline": [], "reference": []}
            ratios: list[float] = []
            for n in range(ROUNDS):
                order = ["pipeline", "reference"] if n % 2 == 0 else ["reference", "pipeline"]
                got = {name: _per_call_us(apps[name], _environs(variant, CALLS)) for name in order}
                for name, value in got.items():
                    times[name].append(value)
                ratios.append(got["pipeline"] / got["reference"])
            results[variant] = {
                "pipeline": spread(times["pipeline"]),
                "reference": spread(times["reference"]),
                "ratio": spread(ratios),
            }
    return results


def report(results: dict[str, dict[str, Spread]], revision: str = REFERENCE) -> list[str]:
    lines = [
        "## The request pipeline: named stages vs. one function",
        "",
        f"The WSGI app alone (no sockets, CPU time of the process), {CALLS:,} keyed creates "
        f"with fresh keys per round, {ROUNDS} alternating rounds in one process: this checkout's pipeline of named stages "
        f"against revision `{revision}` (the request handled in one function). Goal: at most "
        "1.10x.",
        "",
        "| variant | pipeline, us per request | reference, us per request | ratio |",
        "|---|---|---|---|",
    ]
    for variant, spreads in results.items():
        lines.append(
            f"| {variant} | {spreads['pipeline'].fmt(1)} | {spreads['reference'].fmt(1)} "
            f"| {spreads['ratio'].fmt(2, 'x')} |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    print("\n".join(report(run())))
