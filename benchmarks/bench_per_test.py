"""Per-test cost: the fixture's reset, and a 1,000-test suite against the fake vs. the same suite
against a bare pytest-httpserver, each run as a pytest subprocess.

The fake suite spreads its 1,000 tests over the four seed variants (250 each): every test sends
the variant's example create with a fresh key and asserts one side effect. The bare suite has
the same shape: every test registers ``respond_with_json`` on the ``httpserver`` fixture, sends
one keyed POST and checks the status. Both use one module-level ``requests.Session``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Spread, spread
from pytest_idempotency import App, get_variant
from pytest_idempotency.providers import SEED_VARIANTS
from pytest_idempotency.store import StoredResponse

TESTS = 1000

FAKE_SUITE = """
import pytest
import requests

SESSION = requests.Session()


def one(api, i):
    method, url, params = api.example()
    kwargs = api.request_kwargs(params, key=f"bench-key-{i:016d}")
    response = SESSION.request(method, url, timeout=5, **kwargs)
    assert response.status_code < 300, response.text
    api.assert_exactly_once()

"""

FAKE_TEST = """
@pytest.mark.idempotency(variant="{variant}")
@pytest.mark.parametrize("i", range({count}))
def test_{name}(idempotent_api, i):
    one(idempotent_api, i)
"""

BARE_SUITE = """
import pytest
import requests

SESSION = requests.Session()


def one(server, i):
    reply = {{"id": f"obj_{{i:06d}}", "object": "object", "name": "bench"}}
    server.expect_request("/v1/things", method="POST").respond_with_json(reply, status=201)
    response = SESSION.post(
        server.url_for("/v1/things"),
        json={{"name": "bench"}},
        headers={{"Idempotency-Key": f"bench-key-{{i:016d}}"}},
        timeout=5,
    )
    assert response.status_code == 201, response.text

{tests}
"""

BARE_TEST = """
@pytest.mark.parametrize("i", range({count}))
def test_{name}(httpserver, i):
    one(httpserver, i)
"""


def variants_in_use() -> tuple[list[str], str]:
    """The four seed variants, or ``generic`` for those that do not import (yet)."""
    found, missing = [], []
    for name in SEED_VARIANTS:
        try:
            get_variant(name)
        except Exception:
            missing.append(name)
        else:
            found.append(name)
    note = f"generic stands in for {', '.join(missing)}" if missing else ""
    return found + ["generic"] * len(missing), note


def _leave_what_a_test_leaves(app: App) -> None:
    """Three stored records, three journal entries and a scripted fault, as after a short test."""
    state = app.state
    for n in range(3):
        claim = state.store.claim(("tenant", f"key-{n}"), f"key-{n}", "fp", n + 1)
        response = StoredResponse(201, (("Content-Type", "application/json"),), b"{}")
        state.store.complete(claim.record, response, 86400.0)
        state.journal.open("POST", "/v1/things", b"{}", "application/json")
    state.faults.drop_response(times=1)


def reset_cost(iterations: int = 1000, rounds: int = 5) -> dict[str, Spread]:
    """Median microseconds of ``app.reset(variant)`` per seed variant (rounds of ``iterations``)."""
    app = App(get_variant("generic"))
    names, _ = variants_in_use()
    out: dict[str, Spread] = {}
    for name in dict.fromkeys(names):
        variant = get_variant(name)
        medians = []
        for _ in range(rounds):
            samples = []
            for _ in range(iterations):
                _leave_what_a_test_leaves(app)
                start = time.perf_counter_ns()
                app.reset(variant)
                samples.append(time.perf_counter_ns() - start)
            samples.sort()
            medians.append(samples[len(samples) // 2] / 1000)
        out[name] = spread(medians)
    return out


def _write_suites(where: Path) -> tuple[Path, Path]:
    names, _ = variants_in_use()
    per = TESTS // len(names)
    fake = FAKE_SUITE + "".join(
        FAKE_TEST.format(variant=name, name=f"{name}_{i}", count=per)
        for i, name in enumerate(names)
    )
    bare = BARE_SUITE.format(
        tests="".join(BARE_TEST.format(name=f"bare_{i}", count=per) for i in range(len(names)))
    )
    (where / "fake").mkdir()
    (where / "bare").mkdir()
    fake_file = where / "fake" / "test_fake_suite.py"
    bare_file = where / "bare" / "test_bare_suite.py"
    fake_file.write_text(textwrap.dedent(fake))
    bare_file.write_text(textwrap.dedent(bare))
    return fake_file, bare_file


def _run_suite(path: Path) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_IDEMPOTENCY_SEED": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path.name)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or f"{TESTS} passed" not in done.stdout:
        raise RuntimeError(f"{path.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def suite_cost(rounds: int = 3) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pytest-idempotency-bench-") as tmp:
        fake_file, bare_file = _write_suites(Path(tmp))
        fake_times, bare_times, ratios = [], [], []
        for index in range(rounds):
            if index % 2:
                bare_time = _run_suite(bare_file)
                fake_time = _run_suite(fake_file)
            else:
                fake_time = _run_suite(fake_file)
                bare_time = _run_suite(bare_file)
            fake_times.append(fake_time)
            bare_times.append(bare_time)
            ratios.append(fake_time / bare_time)
    return {"fake": spread(fake_times), "bare": spread(bare_times), "ratio": spread(ratios)}


def run(rounds: int = 3) -> dict[str, Any]:
    names, note = variants_in_use()
    return {
        "reset": reset_cost(),
        "suite": suite_cost(rounds),
        "variants": names,
        "note": note,
        "rounds": rounds,
    }


def report(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Per-test cost",
        "",
        "### The fixture's reset",
        "",
        "`app.reset(variant)` is what `idempotent_api` does before each test (fresh store, "
        "journal, resources, faults, clock), each time after what a short test leaves behind "
        "(three stored records, three journal entries, a scripted fault). Median of 1,000 "
        "calls per round, 5 rounds (target <= 1 ms = 1,000 us).",
        "",
        "| variant | reset, us | target |",
        "|---|---|---|",
    ]
    for name, cost in result["reset"].items():
        verdict = "met" if cost.median <= 1000 else "MISSED"
        lines.append(f"| {name} | {cost.fmt(1)} | <= 1,000 us: {verdict} |")
    suite = result["suite"]
    verdict = "met" if suite["ratio"].median <= 1.2 else "MISSED"
    spread_over = ", ".join(dict.fromkeys(result["variants"]))
    lines += [
        "",
        f"### A {TESTS:,}-test suite",
        "",
        f"{TESTS:,} tests spread over {spread_over} ({TESTS // len(result['variants'])} each), "
        "each sending the variant's example create with a fresh key through the "
        "`idempotent_api` fixture and asserting exactly one side effect; the same number of "
        "tests on a bare pytest-httpserver (`httpserver` fixture, `respond_with_json`, one "
        "keyed POST). Each suite runs as `python -m pytest -q` in a subprocess (interpreter "
        f"start-up and collection included), {result['rounds']} rounds, alternating order.",
        "",
        "| suite | wall time, s |",
        "|---|---|",
        f"| fake (`idempotent_api`) | {suite['fake'].fmt(2)} |",
        f"| bare (`httpserver`) | {suite['bare'].fmt(2)} |",
        f"| ratio fake/bare | {suite['ratio'].fmt(2, 'x')}; target <= 1.20x: {verdict} |",
        "",
    ]
    if result["note"]:
        lines += [f"Note: {result['note']}.", ""]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
