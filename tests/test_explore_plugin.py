"""The explorer as users run it: inside pytest (report section, seed, xdist) and without it."""

from __future__ import annotations

import subprocess
import sys

_WRONG_CLIENT = """
import time, uuid
import pytest, requests

QUICK = ("reset", "drop", "error_before_503", "error_after_500", "garbage")

def adjust(api):
    for _ in range(3):
        try:
            r = requests.post(api.url_for("/api/v1/economy/adjust"),
                              json={"user_id": "1", "delta": 5},
                              headers=api.headers(str(uuid.uuid4())), timeout=5)
            if r.status_code < 500:
                return r.json()
        except requests.RequestException:
            time.sleep(1)
    raise RuntimeError("gave up")
"""


def test_a_failing_exploration_shows_its_schedule_table_in_the_report(pytester):
    pytester.makepyfile(
        _WRONG_CLIENT
        + """
@pytest.mark.idempotency(variant="phantom")
def test_explore(idempotent_api):
    report = idempotent_api.explore(lambda: adjust(idempotent_api), max_faults=1, faults=QUICK)
    report.assert_safe()
"""
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- idempotency exploration (phantom) -*",
            "explored * of * generated schedule(s) against 'phantom' (0 pruned): *duplicate*",
            "   #  verdict    fx  raised                  faults",
            "   0  safe        1  -                       no fault",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(
        ["*duplicate*drop at #1 (POST /api/v1/economy/adjust, attempt 1)*new idempotency key*"]
    )
    assert "Traceback" not in result.stderr.str()


def test_a_passing_exploration_adds_no_section(pytester):
    pytester.makepyfile(
        _WRONG_CLIENT
        + """
@pytest.mark.idempotency(variant="phantom")
def test_explore(idempotent_api):
    report = idempotent_api.explore(lambda: adjust(idempotent_api), max_faults=1, faults=QUICK)
    assert report.unsafe
"""
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "idempotency exploration" not in result.stdout.str()


def test_a_budget_samples_from_the_idempotency_seed(pytester):
    pytester.makepyfile(
        _WRONG_CLIENT
        + """
@pytest.mark.idempotency(variant="phantom")
def test_explore(idempotent_api, request):
    report = idempotent_api.explore(
        lambda: adjust(idempotent_api), max_faults=2, budget=4, faults=QUICK
    )
    picked = [[(f.seq, f.name) for f in s.faults] for s in report.schedules]
    print("PICKED", report.seed, picked)
"""
    )

    def picked(seed: str) -> str:
        result = pytester.runpytest("-s", "-p", "no:randomly", f"--idempotency-seed={seed}")
        result.assert_outcomes(passed=1)
        line = next(line for line in result.stdout.lines if "PICKED" in line)
        return line[line.index("PICKED") :]

    first, again, other = picked("11"), picked("11"), picked("12")
    assert first.startswith("PICKED 11 [[]")
    assert first == again
    assert other.startswith("PICKED 12 ")
    assert first.removeprefix("PICKED 11") != other.removeprefix("PICKED 12")


def test_each_xdist_worker_explores_its_own_tests(pytester):
    pytester.makepyfile(
        _WRONG_CLIENT
        + """
@pytest.mark.idempotency(variant="phantom")
@pytest.mark.parametrize("n", range(2))
def test_explore(idempotent_api, n):
    report = idempotent_api.explore(lambda: adjust(idempotent_api), max_faults=1, faults=QUICK)
    assert [s.verdict for s in report.unsafe][:1] == ["duplicate"]
"""
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=2)


def test_the_explorer_imports_without_pytest():
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "import pytest_idempotency.explore as e\n"
        "print(sorted(e.__all__)[:2])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Attribution" in done.stdout


def test_a_reproducer_replays_its_schedule_as_a_failing_test(pytester):
    pytester.makepyfile(
        bug_clients="""
import time, uuid
import requests

API = None  # set by the tests (the operation needs the fake's URL)

def adjust():
    for _ in range(3):
        try:
            r = requests.post(API.url_for("/api/v1/economy/adjust"),
                              json={"user_id": "1", "delta": 5},
                              headers=API.headers(str(uuid.uuid4())), timeout=5)
            if r.status_code < 500:
                return r.json()
        except requests.RequestException:
            time.sleep(1)
    raise RuntimeError("gave up")
""",
        conftest="""
import pytest
import bug_clients

@pytest.fixture(autouse=True)
def _api(request):
    if "idempotent_api" in request.fixturenames:
        bug_clients.API = request.getfixturevalue("idempotent_api")
""",
        test_find_the_bug="""
import pathlib
import pytest
import bug_clients

@pytest.mark.idempotency(variant="phantom")
def test_explore(idempotent_api):
    report = idempotent_api.explore(bug_clients.adjust, max_faults=1, faults=("drop",))
    (bad,) = report.unsafe
    pathlib.Path("test_replay.py").write_text(bad.reproducer)
""",
    )
    pytester.runpytest("-p", "no:randomly", "test_find_the_bug.py").assert_outcomes(passed=1)
    text = (pytester.path / "test_replay.py").read_text()
    assert "from bug_clients import adjust" in text
    assert "operation = adjust" in text

    result = pytester.runpytest("-p", "no:randomly", "test_replay.py")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected 1 side effect*"])
