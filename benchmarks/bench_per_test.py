"""Per-test cost: the fixture's reset, and one test through ``idempotent_api`` vs. the same
test through pytest-httpx, each suite run as a pytest subprocess.

Both suites send one keyed POST per test through one module-level ``httpx.Client`` and check
the status: the fake on a real loopback socket (generic variant, reset and teardown checks
included), pytest-httpx in-process. Each runs with ``TESTS`` tests and with one, so
``(long - short) / (TESTS - 1)`` is one test's cost without start-up and collection.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import Spread, spread
from pytest_idempotency import App, IdempotencyServer, get_variant
from pytest_idempotency.providers import SEED_VARIANTS
from pytest_idempotency.store import StoredResponse

#: Tests in the long run; the short run has one. (long - short) / (TESTS - 1) is one test.
TESTS = 2001

#: The same test twice: one keyed POST through one module-level ``httpx.Client``, checked.
FAKE_SUITE = """
import httpx
import pytest

CLIENT = httpx.Client()


@pytest.mark.parametrize("i", range({count}))
def test_post(idempotent_api, i):
    response = CLIENT.post(
        idempotent_api.url + "/v1/things",
        json={{"name": "bench"}},
        headers={{"Idempotency-Key": f"bench-key-{{i:016d}}"}},
    )
    assert response.status_code == 201, response.text
"""

MOCK_SUITE = """
import httpx
import pytest

CLIENT = httpx.Client()
URL = "http://127.0.0.1:8000"


@pytest.mark.parametrize("i", range({count}))
def test_post(httpx_mock, i):
    reply = {{"id": f"obj_{{i:06d}}", "object": "object", "name": "bench"}}
    httpx_mock.add_response(method="POST", url=URL + "/v1/things", json=reply, status_code=201)
    response = CLIENT.post(
        URL + "/v1/things",
        json={{"name": "bench"}},
        headers={{"Idempotency-Key": f"bench-key-{{i:016d}}"}},
    )
    assert response.status_code == 201, response.text
"""

#: The floor of any real-socket design: the same test against the standard-library keep-alive
#: server of ``bench_floor`` (a canned 201) in another process, with no fixture, so the pytest
#: process pays only for pytest and httpx's real transport (httpcore, h11 and the socket).
SOCKET_FLOOR_SUITE = """
import sys

import httpx
import pytest

sys.path.insert(0, {root!r})
from benchmarks.wire_client import start, stop

SERVER, PORT = start("floor")
URL = f"http://127.0.0.1:{{PORT}}"
CLIENT = httpx.Client()


@pytest.mark.parametrize("i", range({count}))
def test_post(i):
    response = CLIENT.post(
        URL + "/v1/things",
        json={{"name": "bench"}},
        headers={{"Idempotency-Key": f"bench-key-{{i:016d}}"}},
    )
    assert response.status_code == 201, response.text


def teardown_module():
    stop(SERVER)
"""

#: Each suite runs with the other plugin switched off, so neither pays for the other's hooks.
SUITES = {
    "fake": (FAKE_SUITE, ("-p", "no:pytest_httpx")),
    "pytest-httpx": (MOCK_SUITE, ("-p", "no:idempotency")),
    "socket floor": (SOCKET_FLOOR_SUITE, ("-p", "no:idempotency", "-p", "no:pytest_httpx")),
}


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


def _run(path: Path, options: tuple[str, ...], count: int) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, every thread) of one pytest subprocess."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_IDEMPOTENCY_SEED": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, path.name]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or f"{count} passed" not in done.stdout:
        raise RuntimeError(f"{path} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _write(where: Path, name: str, source: str, count: int) -> Path:
    folder = where / f"{name}-{count}"
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    path = folder / "test_suite.py"
    root = str(Path(__file__).resolve().parent.parent)
    path.write_text(textwrap.dedent(source.format(count=count, root=root)))
    return path


def one_test_cost(rounds: int = 5) -> dict[str, Any]:
    """Milliseconds per test of each suite, wall-clock and CPU (every thread of the pytest
    process): ``(cost of TESTS tests - cost of 1) / (TESTS - 1)``, so interpreter start-up and
    collection cancel out; rounds alternate which suite goes first."""
    wall: dict[str, list[float]] = {name: [] for name in SUITES}
    cpu: dict[str, list[float]] = {name: [] for name in SUITES}
    ratios: dict[str, list[float]] = {"wall": [], "cpu": [], "floor": [], "floor_cpu": []}
    with tempfile.TemporaryDirectory(prefix="pytest-idempotency-bench-") as tmp:
        paths = {
            (name, count): _write(Path(tmp), name, source, count)
            for name, (source, _) in SUITES.items()
            for count in (1, TESTS)
        }
        for index in range(rounds):
            order = list(SUITES) if index % 2 == 0 else list(reversed(SUITES))
            for name in order:
                options = SUITES[name][1]
                short_wall, short_cpu = _run(paths[(name, 1)], options, 1)
                long_wall, long_cpu = _run(paths[(name, TESTS)], options, TESTS)
                wall[name].append((long_wall - short_wall) / (TESTS - 1) * 1000)
                cpu[name].append((long_cpu - short_cpu) / (TESTS - 1) * 1000)
            ratios["wall"].append(wall["fake"][-1] / wall["pytest-httpx"][-1])
            ratios["cpu"].append(cpu["fake"][-1] / cpu["pytest-httpx"][-1])
            ratios["floor"].append(wall["socket floor"][-1] / wall["pytest-httpx"][-1])
            ratios["floor_cpu"].append(cpu["socket floor"][-1] / cpu["pytest-httpx"][-1])
    return {
        "fake": spread(wall["fake"]),
        "mock": spread(wall["pytest-httpx"]),
        "floor": spread(wall["socket floor"]),
        "ratio": spread(ratios["wall"]),
        "fake_cpu": spread(cpu["fake"]),
        "mock_cpu": spread(cpu["pytest-httpx"]),
        "floor_cpu": spread(cpu["socket floor"]),
        "cpu_ratio": spread(ratios["cpu"]),
        "floor_ratio": spread(ratios["floor"]),
        "floor_cpu_ratio": spread(ratios["floor_cpu"]),
    }


def fixture_share(count: int = 2000, rounds: int = 5) -> dict[str, Spread]:
    """Microseconds of one keyed POST's round trip alone (generic, keep-alive ``httpx.Client``)
    on the fixture's server, without pytest, wall-clock and CPU (client and server threads):
    the round trip's share of a test."""
    app = App(get_variant("generic"))
    server = IdempotencyServer(app)
    server.start()
    client = httpx.Client()
    wall, cpu = [], []
    try:
        for round_ in range(rounds):
            app.reset()
            start, start_cpu = time.perf_counter(), time.process_time()
            for n in range(count):
                client.post(
                    server.url_for("/v1/things"),
                    json={"name": "bench"},
                    headers={"Idempotency-Key": f"trip-{round_}-{n}"},
                )
            cpu.append((time.process_time() - start_cpu) / count * 1e6)
            wall.append((time.perf_counter() - start) / count * 1e6)
    finally:
        client.close()
        server.stop()
    return {"round_trip": spread(wall), "round_trip_cpu": spread(cpu)}


def run(rounds: int = 5) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    result = {
        "reset": reset_cost(),
        "suite": one_test_cost(rounds),
        "server": fixture_share(),
        "rounds": rounds,
    }
    result["load"] = (load_before, os.getloadavg()[0])
    return result


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
    trip = result["server"]["round_trip"]
    trip_cpu = result["server"]["round_trip_cpu"]
    # Met only when both clocks agree: on a loaded machine wall-clock time alone can flatter.
    met = suite["ratio"].median <= 1.15 and suite["cpu_ratio"].median <= 1.15
    verdict = "met" if met else "MISSED"
    share = trip_cpu.median / 1000 / suite["fake_cpu"].median
    extra = suite["fake_cpu"].median - suite["mock_cpu"].median
    floor_extra = suite["floor_cpu"].median - suite["mock_cpu"].median
    fake_over_floor = suite["fake_cpu"].median - suite["floor_cpu"].median
    floor_ratio = suite["floor_cpu_ratio"].low  # even the floor's best round
    if met:
        goal_text = "Met."
    elif floor_ratio > 1.15:
        goal_text = (
            f"**Not met, and out of reach here for any real-socket fixture:** the socket "
            f"floor alone is {suite['floor_cpu_ratio'].fmt(2, 'x')} of pytest-httpx by CPU "
            "time, above 1.15x in every round. Against that floor a fake test costs "
            f"{suite['fake_cpu'].median / suite['floor_cpu'].median:.2f}x."
        )
    else:
        goal_text = "**Not met.**"
    load = result["load"]
    lines += [
        "",
        "### One test: `idempotent_api` vs. pytest-httpx",
        "",
        "The same test body twice: one keyed POST through one module-level `httpx.Client`, "
        "status checked. Through `idempotent_api` (generic variant, a real loopback socket, "
        "the fixture's reset and teardown checks) and through pytest-httpx's `httpx_mock` "
        "(`add_response`, in-process, no socket; its own teardown check). Each suite runs as "
        f"`python -m pytest -q` in a subprocess with {TESTS:,} tests and with 1 test; "
        f"(time of {TESTS:,} - time of 1) / {TESTS - 1:,} is one test's cost, with "
        "interpreter start-up and collection taken out. The other plugin is switched off "
        f"(`-p no:...`) in each run. {result['rounds']} rounds, alternating which suite goes "
        "first.",
        "",
        "| suite | wall-clock ms per test | CPU ms per test |",
        "|---|---|---|",
        f"| fake (`idempotent_api`) | {suite['fake'].fmt(3)} | {suite['fake_cpu'].fmt(3)} |",
        f"| pytest-httpx (`httpx_mock`) | {suite['mock'].fmt(3)} | {suite['mock_cpu'].fmt(3)} |",
        f"| socket floor (no fixture, canned server in another process) | "
        f"{suite['floor'].fmt(3)} | {suite['floor_cpu'].fmt(3)} |",
        f"| ratio fake/pytest-httpx | {suite['ratio'].fmt(2, 'x')}; target <= 1.15x: {verdict} "
        f"| {suite['cpu_ratio'].fmt(2, 'x')} |",
        f"| ratio socket floor/pytest-httpx | {suite['floor_ratio'].fmt(2, 'x')} "
        f"| {suite['floor_cpu_ratio'].fmt(2, 'x')} |",
        "",
        "The socket floor is the same test with no plugin, against the standard-library "
        "keep-alive server of the throughput benchmark (a canned 201) running in another "
        "process: the pytest process pays only for pytest and for httpx's real transport "
        "(httpcore, h11, the socket), so no fixture that keeps a real socket and an "
        "unmodified `httpx.Client` can cost less. Its ratio to pytest-httpx is the best such "
        "a fixture can reach here.",
        "",
        "CPU time is user + system time of the whole pytest process (the fake's server thread "
        "included), which other load on the machine disturbs less than wall-clock time.",
        "",
        f"The round trip alone (the same POST on the fixture's server, no pytest) takes "
        f"{trip.fmt(1)} us wall-clock and {trip_cpu.fmt(1)} us of CPU (client and server "
        f"threads): {share:.0%} of a fake test's CPU time. A fake test costs "
        f"{extra:.3f} ms of CPU more than a pytest-httpx one; "
        f"{floor_extra:.3f} ms of that is the floor's own excess (httpx's real transport and "
        f"the socket), and {fake_over_floor:.3f} ms is what the fixture adds on top of the "
        "floor: its server thread answering the request (the wire and the idempotency layer) "
        "and the fixture's setup, reset and teardown checks inside pytest.",
        "",
        f"Goal: at most 1.15x of pytest-httpx. {goal_text}",
        "",
        f"Load average (1 min) on this machine: {load[0]:.1f} before, {load[1]:.1f} after the "
        "run; with more load than cores the figures scatter (see the brackets).",
        "",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
