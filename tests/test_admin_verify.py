"""The standalone server's verify call, its plain-text timeline, and its words: driven over HTTP
against ``python -m pytest_idempotency serve`` in a subprocess, as a suite in another language
would drive it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

FIRST_LINE = re.compile(r"pytest-idempotency: serving (\S+) on (http://127\.0\.0\.1:\d+)")


@pytest.fixture(scope="module")
def server() -> Iterator[httpx.Client]:
    """One standalone server (generic) for the module, and an HTTP client for it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_idempotency", "serve", "--variant", "generic"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # the server flushes this line at once
    found = FIRST_LINE.fullmatch(line)
    assert found is not None, f"unexpected first line {line!r}; stderr: {proc.stderr}"
    client = httpx.Client(base_url=found.group(2), timeout=10.0)
    try:
        yield client
    finally:
        client.close()
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        assert "Traceback" not in err, err


@pytest.fixture
def api(server: httpx.Client) -> httpx.Client:
    """The server, reset for this test."""
    assert server.post("/__admin/reset").status_code == 200
    return server


def _post(api: httpx.Client, key: str | None, body: Any = None) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return api.post("/v1/things", json=body or {"name": "a"}, headers=headers)


def _verify(api: httpx.Client, body: Any = None) -> tuple[int, dict[str, Any]]:
    response = api.post("/__admin/verify", json=body)
    assert response.headers["Content-Type"] == "application/json"
    return response.status_code, response.json()


# -- verify ------------------------------------------------------------------------------------


def test_verify_passes_with_200_when_the_server_saw_nothing_unexpected(api):
    _post(api, "k-1")
    _post(api, "k-1")  # a replay
    status, found = _verify(api, {"exactly_once": True})
    assert (status, found) == (
        200,
        {"ok": True, "problems": [], "requests": 2, "side_effects": 1},
    )


def test_verify_exactly_once_fails_with_409_naming_the_new_key_per_retry(api):
    _post(api, "k-1")
    _post(api, "k-2")
    status, found = _verify(api, {"exactly_once": True})
    assert status == 409
    assert found["ok"] is False
    [problem] = found["problems"]
    assert problem["check"] == "exactly_once"
    assert problem["text"].startswith("expected exactly one side effect, the server executed 2:")
    assert "does the client mint a new idempotency key per retry?" in problem["text"]
    assert "What the fake server saw" not in problem["text"]  # the timeline comes once, below
    assert "POST /v1/things  k-1" in found["timeline"]
    assert "POST /v1/things  k-2" in found["timeline"]
    assert "opt_out" not in found  # an expectation, not a teardown check


def test_verify_filters_exactly_once_by_key_and_counts_side_effects(api):
    _post(api, "k-1")
    _post(api, "k-2")
    assert _verify(api, {"exactly_once": {"key": "k-1"}})[0] == 200
    assert _verify(api, {"side_effects": 2})[0] == 200
    assert _verify(api, {"side_effects": {"count": 1, "key": "k-2"}})[0] == 200
    status, found = _verify(api, {"side_effects": 3})
    assert status == 409
    assert found["problems"][0]["text"].startswith(
        "expected 3 side effect(s), the server executed 2"
    )


def test_verify_runs_the_teardown_checks_and_names_the_opt_out(api):
    api.post("/__admin/faults", json={"kind": "drop", "path": "/v1/never"})
    assert api.delete("/v1/things/1").status_code == 405
    status, found = _verify(api)
    assert status == 409
    assert [p["check"] for p in found["problems"]] == [
        "assert_all_requests_were_expected",
        "assert_all_faults_fired",
    ]
    assert found["problems"][0]["text"].startswith("[unexpected] #1 DELETE /v1/things/1")
    assert found["problems"][1]["text"] == (
        "[faults] scripted fault never fired: drop(/v1/never, times=1, fired 0)"
    )
    assert found["opt_out"] == {
        "disable": ["assert_all_faults_fired", "assert_all_requests_were_expected"]
    }
    assert "pytest" not in str(found)  # no marker wording over HTTP
    status, _ = _verify(api, found["opt_out"])
    assert status == 200


def test_verify_checks_keys_on_retries_and_that_every_request_was_keyed(api):
    _post(api, None)
    status, found = _verify(api, {"all_keyed": True})
    assert status == 409
    assert "carried no idempotency key" in found["problems"][0]["text"]
    api.post("/__admin/reset")
    _post(api, "k-1")
    _post(api, "k-2")  # the same operation under another key
    status, found = _verify(api, {"same_key_on_retries": True})
    assert status == 409
    assert "a retry must resend the key of the first attempt" in found["problems"][0]["text"]


def test_verify_is_read_only(api):
    _post(api, "k-1")
    _post(api, "k-2")
    assert _verify(api, {"exactly_once": True})[0] == 409
    assert _verify(api, {"exactly_once": True})[0] == 409  # the same answer again
    assert len(api.get("/__admin/journal").json()["exchanges"]) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"exactly_one": True}, "unknown field(s) exactly_one; verify takes exactly_once, "),
        ({"exactly_once": "yes"}, '"exactly_once" takes true or an object with key, path, '),
        ({"exactly_once": {"id": 1}}, 'unknown field(s) id in "exactly_once"; use key, path, '),
        ({"exactly_once": {"key": 7}}, '"exactly_once.key" must be a string (got 7)'),
        ({"side_effects": True}, '"side_effects" takes a count >= 0 or {"count": N'),
        ({"side_effects": -1}, '"side_effects" takes a count >= 0'),
        ({"all_keyed": None}, '"all_keyed" takes true or false (got null)'),
        ({"disable": "faults"}, '"disable" takes a list of check names'),
        ({"disable": ["faults"]}, 'unknown check(s) faults in "disable"; the checks are '),
    ],
)
def test_a_bad_verify_call_gets_400_naming_the_fix(api, body, message):
    status, found = _verify(api, body)
    assert status == 400
    assert found["error"].startswith(message), found["error"]


# -- the timeline as text ----------------------------------------------------------------------


def test_timeline_as_plain_text_by_accept_header_or_format(api):
    _post(api, "k-1")
    as_json = api.get("/__admin/timeline").json()["timeline"]
    for response in (
        api.get("/__admin/timeline", headers={"Accept": "text/plain"}),
        api.get("/__admin/timeline", params={"format": "text"}),
    ):
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.text == as_json + "\n"
        assert response.text.splitlines()[0].split() == [
            "#", "clock", "request", "key", "body", "decision", "status", "wire", "effects",
        ]  # fmt: skip
    default = api.get("/__admin/timeline", headers={"Accept": "*/*"})
    assert default.headers["Content-Type"] == "application/json"
    bad = api.get("/__admin/timeline", params={"format": "xml"})
    assert bad.status_code == 400
    assert bad.json() == {"error": 'format must be text or json (got "xml")'}


# -- standalone words --------------------------------------------------------------------------


def test_a_wait_that_times_out_names_the_servers_url_not_a_pytest_fixture(api):
    response = api.get("/__admin/journal", params={"wait_for": 1, "timeout": 0})
    assert response.status_code == 409
    error = response.json()["error"]
    assert "idempotent_api" not in error
    assert error.endswith(f"Is the client pointed at {api.base_url.scheme}://{api.base_url.host}:"
                          f"{api.base_url.port}?")  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "fields"),
    [
        ({"kind": "drop"}, set()),
        ({"kind": "reset"}, set()),
        ({"kind": "error_after", "status": 502}, {"status", "retry_after"}),
        ({"kind": "error_before", "retry_after": 2}, {"status", "retry_after"}),
        ({"kind": "slow", "seconds": 1}, {"seconds", "held", "released"}),
        ({"kind": "hold"}, {"held", "released"}),
        ({"kind": "garbage"}, {"style"}),
        ({"kind": "partial_batch", "failures": {"*": "transient"}}, {"failures"}),
        ({"kind": "restart"}, {"keep_records"}),
        ({"kind": "in_flight", "seconds": 1}, {"seconds"}),
        ({"kind": "late", "seconds": 1}, {"seconds"}),
        ({"kind": "clock_jump", "seconds": 60}, {"seconds"}),
        ({"kind": "latency", "seconds": 0.01}, {"seconds"}),
    ],
)
def test_a_faults_json_shows_only_the_fields_of_its_kind(api, fault, fields):
    response = api.post("/__admin/faults", json=fault)
    assert response.status_code == 201, response.text
    shown = response.json()["fault"]
    common = {"id", "kind", "method", "path", "key", "attempt", "seq", "times", "fired"}
    common.add("description")
    assert set(shown) == common | fields
    listed = api.get("/__admin/faults").json()["faults"]
    assert listed == [shown]


@pytest.mark.parametrize(
    ("call", "body", "message"),
    [
        ("reset", {"policy": None}, 'must be an object such as {"ttl": 60} (got null)'),
        ("clock", {"set": None}, '"set" takes an ISO-8601 time or epoch seconds (got null)'),
        ("clock", {"set": True}, '"set" takes an ISO-8601 time or epoch seconds (got true)'),
        ("clock", {"set": "soon"}, '(got "soon")'),
        ("faults", {"kind": "chaos", "kinds": None}, '"kinds" must be a list (got null)'),
    ],
)
def test_json_messages_use_json_words(api, call, body, message):
    response = api.post(f"/__admin/{call}", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.endswith(message), error
    assert "None" not in error
    assert "True" not in error


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"kind": "drop", "times": 0},
            "times must be a whole number >= 1, or null for ever (got 0)",
        ),
        ({"kind": "drop", "attempt": 0}, "attempt must be the n-th time the server sees the key"),
        ({"kind": "error_before", "status": "503"}, '"status" must be an HTTP status code'),
        (
            {"kind": "slow", "seconds": "1"},
            '"seconds" must be seconds >= 0, or null until released',
        ),
    ],
)
def test_a_bad_fault_option_is_named_in_json_words(api, fault, message):
    response = api.post("/__admin/faults", json=fault)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith(message), error
    assert "None" not in error
