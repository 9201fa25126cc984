"""Every failure says each thing once: one message, one timeline, no chained tracebacks."""

from __future__ import annotations

import pytest

HEADING = "What the fake server saw:"
SECTION = "*- idempotency timeline (generic) -*"

SEVEN = """
import uuid

import requests


def post(api, key):
    return requests.post(api.url + "/v1/things", json={"a": 1}, headers={"Idempotency-Key": key})


def test_new_key_per_retry(idempotent_api):
    idempotent_api.faults.drop_response()
    for _ in range(2):
        try:
            post(idempotent_api, str(uuid.uuid4()))
            break
        except requests.ConnectionError:
            continue
    idempotent_api.assert_exactly_once()


def test_no_side_effect(idempotent_api):
    idempotent_api.assert_exactly_once()


def test_plain_assert(idempotent_api):
    assert post(idempotent_api, "k-1").status_code == 200


def test_unexpected_request(idempotent_api):
    requests.delete(idempotent_api.url + "/v1/things/1")


def test_unfired_fault(idempotent_api):
    idempotent_api.faults.drop_response(path="/v1/things")


def test_failed_body_and_teardown(idempotent_api):
    requests.delete(idempotent_api.url + "/v1/things/1")
    idempotent_api.assert_exactly_once()


def test_replayed(idempotent_api):
    post(idempotent_api, "k-2")
    idempotent_api.assert_replayed(key="k-2")
"""


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(source)
    return pytester.runpytest(*args)


def test_a_teardown_failure_prints_its_message_once_and_unchained(pytester):
    result = _run(
        pytester,
        """
        import requests

        def test_it(idempotent_api):
            requests.delete(idempotent_api.url + "/v1/things/1")
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    out = str(result.stdout)
    first = "pytest-idempotency: the fake server saw what the test did not expect:"
    assert result.outlines.count(first) == 1
    assert "During handling of the above exception" not in out
    assert "Traceback" not in out
    assert out.count(HEADING) == 1
    result.stdout.no_fnmatch_line(SECTION)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_it*",
            "pytest-idempotency: the fake server saw what the test did not expect:",
            "  - [unexpected] #1 DELETE /v1/things/1: DELETE is not allowed on this path; "
            "routes here: POST *, GET *",
            "If this is intended, opt out with "
            "@pytest.mark.idempotency(assert_all_requests_were_expected=False).",
            "",
            HEADING,
            "#  clock    request              key  body  decision  status  wire      effects",
        ],
        consecutive=True,
    )


def test_an_assertion_failure_shows_the_timeline_in_its_message_only(pytester):
    result = _run(
        pytester,
        """
        def test_it(idempotent_api):
            idempotent_api.assert_exactly_once()
        """,
    )
    result.assert_outcomes(failed=1)
    assert str(result.stdout).count(HEADING) == 1
    result.stdout.no_fnmatch_line(SECTION)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: expected exactly one side effect, the server executed none",
            "E       ",
            f"E       {HEADING}",
            "E       (the fake server received no request in this test, or since its last reset)",
        ],
        consecutive=True,
    )


def test_a_failure_of_the_users_own_assert_gets_the_timeline_as_a_section_once(pytester):
    result = _run(
        pytester,
        """
        import requests

        def test_it(idempotent_api):
            r = requests.post(idempotent_api.url + "/v1/things", json={"a": 1},
                              headers={"Idempotency-Key": "k-1"})
            assert r.status_code == 200
        """,
    )
    result.assert_outcomes(failed=1)
    out = str(result.stdout)
    assert out.count("idempotency timeline (generic)") == 1
    assert HEADING not in out
    result.stdout.fnmatch_lines(
        [
            SECTION,
            "#  clock    request          key  body      decision  status  wire      effects",
        ],
        consecutive=True,
    )


def test_a_failed_body_and_a_failed_teardown_share_one_timeline(pytester):
    result = _run(
        pytester,
        """
        import requests

        def test_it(idempotent_api):
            requests.delete(idempotent_api.url + "/v1/things/1")
            assert False, "client bug"
        """,
    )
    result.assert_outcomes(failed=1, errors=1)
    out = str(result.stdout)
    assert out.count("idempotency timeline (generic)") + out.count(HEADING) == 1
    assert out.count("DELETE /v1/things/1  -") == 1  # the timeline's row, once
    result.stdout.fnmatch_lines(
        [
            "If this is intended, opt out with "
            "@pytest.mark.idempotency(assert_all_requests_were_expected=False).",
            "(What the fake server saw is in this test's failure report.)",
        ],
        consecutive=True,
    )


def test_seven_failing_tests_print_each_thing_once_in_few_lines(pytester):
    result = _run(pytester, SEVEN)
    result.assert_outcomes(failed=5, passed=2, errors=3)
    out = str(result.stdout)
    assert "During handling of the above exception" not in out
    # one timeline per failing test (seven tests, eight failure reports)
    assert out.count(HEADING) + out.count("idempotency timeline (generic)") == 7
    # each teardown problem is stated once in its report (the summary line is pytest's own)
    assert out.count("[faults] scripted fault never fired") == 1
    assert out.count("- [unexpected] #1 DELETE /v1/things/1") == 2  # two tests sent it
    lines = result.outlines
    assert len(lines) <= 140, "\n".join(lines)  # 209 lines before the duplicates went
