"""A reproducer passes exactly when its schedule was safe: every schedule of an exploration is
written out as the test its report prints, and run as a user runs it (sync and ``async def``
operations, in-flight holds the client met fewer times than the helper allows for, and
schedules where raising with nothing done was the safe outcome)."""

from __future__ import annotations

import json

import pytest

CLIENTS = """
import asyncio, time, uuid
import httpx, requests

API = None  # the fake, set by conftest.py for each test

def _send(key):
    method, url, params = API.example()
    return requests.request(method, url, timeout=2.0, **API.request_kwargs(params, key=key))

def patient():
    key = str(uuid.uuid4())
    for _ in range(4):
        try:
            r = _send(key)
        except requests.RequestException:
            time.sleep(1)
            continue
        if r.status_code < 500 and r.status_code != 409:
            r.raise_for_status()
            return r.json()
        time.sleep(1)
    raise RuntimeError("gave up")

def no_retry():
    r = _send(str(uuid.uuid4()))
    r.raise_for_status()
    return r.json()

async def _async_send(client, key):
    method, url, params = API.example()
    return await client.request(method, url, **API.request_kwargs(params, key=key))

async def async_new_key():
    async with httpx.AsyncClient(timeout=2.0) as client:
        for _ in range(3):
            try:
                r = await _async_send(client, str(uuid.uuid4()))
            except httpx.HTTPError:
                await asyncio.sleep(1)
                continue
            if r.status_code < 500:
                r.raise_for_status()
                return r.json()
    raise RuntimeError("gave up")
"""

CONFTEST = """
import pytest
import repro_clients

@pytest.fixture(autouse=True)
def _api(request):
    if "idempotent_api" in request.fixturenames:
        repro_clients.API = request.getfixturevalue("idempotent_api")
"""

EXPLORE = """
import json, pathlib
import pytest
import repro_clients

@pytest.mark.idempotency(variant={variant!r})
def test_explore(idempotent_api):
    report = idempotent_api.explore(repro_clients.{operation}, max_faults=1)
    verdicts = {{}}
    for schedule in report.schedules[1:]:
        name = f"test_schedule_{{schedule.index}}.py"
        pathlib.Path(name).write_text(schedule.reproducer)
        verdicts[name] = schedule.verdict
    pathlib.Path("verdicts.json").write_text(json.dumps(verdicts))
"""


@pytest.mark.parametrize(
    ("variant", "operation"),
    [
        ("moda", "patient"),  # in-flight duplicates wait: the client meets the hold once
        ("whet", "no_retry"),  # a reset before the commit: raising with nothing done is safe
        ("generic", "async_new_key"),  # an async def operation
    ],
)
def test_each_reproducer_passes_exactly_when_its_schedule_was_safe(pytester, variant, operation):
    pytester.makepyfile(repro_clients=CLIENTS, conftest=CONFTEST)
    pytester.makepyfile(test_find_schedules=EXPLORE.format(variant=variant, operation=operation))
    pytester.runpytest("-p", "no:randomly", "test_find_schedules.py").assert_outcomes(passed=1)
    verdicts = json.loads((pytester.path / "verdicts.json").read_text())
    (pytester.path / "test_find_schedules.py").unlink()
    assert "safe" in verdicts.values(), verdicts

    records = pytester.inline_run("-p", "no:randomly", "-W", "error::RuntimeWarning")

    passed: dict[str, bool] = {}
    for report in records.getreports("pytest_runtest_logreport"):
        name = report.nodeid.split("::")[0]
        passed[name] = passed.get(name, True) and not report.failed
    assert set(passed) == set(verdicts)
    wrong = {n: (verdicts[n], passed[n]) for n in verdicts if passed[n] != (verdicts[n] == "safe")}
    assert not wrong, f"(verdict, reproducer passed) that disagree: {wrong}"


def test_the_reproducer_of_an_async_operation_awaits_it(pytester):
    pytester.makepyfile(repro_clients=CLIENTS, conftest=CONFTEST)
    pytester.makepyfile(
        test_find_schedules=EXPLORE.format(variant="generic", operation="async_new_key")
    )
    pytester.runpytest("-p", "no:randomly", "test_find_schedules.py").assert_outcomes(passed=1)
    text = (pytester.path / "test_schedule_1.py").read_text()

    assert "import asyncio" in text
    assert "asyncio.run(operation())" in text
