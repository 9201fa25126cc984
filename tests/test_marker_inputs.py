"""Bad marker options, environment variables and ``--set`` values, as users meet them: each is
a usage error of the one test (or a one-line exit 2 of the command), naming the option, what
came and what is accepted; never an INTERNALERROR, and the rest of the run goes on."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hardening_support import InProcess, Standalone, Target, clean_stderr, split

#: ``marker options`` -> the line the test's error ends with.
BAD_MARKERS = {
    'ttl="soon"': "ttl must be a number or None (got 'soon')",
    'ttl=float("nan")': "ttl must be a finite number of seconds from 0 to 31536000000*(got nan)",
    'ttl=float("inf")': "ttl must be a finite number of seconds*(got inf)",
    'mismatch="x"': "mismatch must be an Answer(status, code, message) (got 'x')",
    'key_max_length="9"': "key_max_length must be an int (not a bool) (got '9')",
    "key_min_length=True": "key_min_length must be an int (not a bool) (got True)",
    "cache_5xx=1": "cache_5xx must be True or False (got 1)",
    'keyed_routes="POST /x"': "keyed_routes must be a tuple (or list), each item a str, not the bare str 'POST /x'*",
    "variants=5": "variants= takes a list of variant names such as *(got 5)",
    "variants=[]": "variants=[] names no variant, so the test would never run; name at least one*",
    "variant=5": "variant= takes a variant name such as 'phantom' (got 5)",
    'assert_all_faults_fired="no"': "assert_all_faults_fired takes True or False (got 'no')",
}


def _tests(markers: dict[str, str]) -> str:
    lines = ["import pytest", ""]
    for number, options in enumerate(markers):
        lines += [f"@pytest.mark.idempotency({options})", f"def test_bad_{number}(idempotent_api):"]
        lines += ["    pass", ""]
    lines += ["def test_still_served(idempotent_api):", "    import requests", ""]
    lines += ["    method, url, params = idempotent_api.example()"]
    lines += ["    kwargs = idempotent_api.request_kwargs(params, key='still-served')"]
    lines += ["    assert requests.request(method, url, timeout=10, **kwargs).status_code == 201"]
    return "\n".join(lines) + "\n"


def test_marker_options_of_the_wrong_type_are_usage_errors_of_their_test_only(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(_tests(BAD_MARKERS))
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=len(BAD_MARKERS), passed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    assert "pytest.UsageError" not in result.stdout.str()  # the message alone, no traceback
    for words in BAD_MARKERS.values():
        result.stdout.fnmatch_lines([f"@pytest.mark.idempotency: {words}"])


def test_a_list_of_routes_on_the_marker_is_taken_as_a_tuple(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.idempotency(keyed_routes=["POST /v1/things"], scope=["credential", "path"])
        def test_it(idempotent_api):
            assert idempotent_api.policy.keyed_routes == ("POST /v1/things",)
            assert idempotent_api.policy.scope == ("credential", "path")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_refused_clock_move_fails_its_test_and_the_run_goes_on(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import requests

        def _create(api, key):
            method, url, params = api.example()
            kwargs = api.request_kwargs(params, key=key)
            return requests.request(method, url, timeout=10, **kwargs).status_code

        def test_nan_clock(idempotent_api):
            assert _create(idempotent_api, "before") == 201
            idempotent_api.clock.advance(float("nan"))

        def test_nan_jump(idempotent_api):
            idempotent_api.faults.clock_jump(float("nan"))

        def test_next(idempotent_api):
            assert _create(idempotent_api, "next") == 201
            idempotent_api.clock.advance(hours=25)
            assert _create(idempotent_api, "next") == 201  # the TTL still runs out
            idempotent_api.assert_side_effects(2)
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2, passed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "E * ValueError: clock.advance(seconds) must be a finite number (got nan)",
            "E *.FaultError: seconds must be a finite number >= 0 and <= * (got nan)",
        ]
    )


def test_the_fixture_used_after_its_test_ended_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        KEPT = []

        def test_keep(idempotent_api):
            KEPT.append(idempotent_api)

        @pytest.mark.parametrize("use", ["url", "clock", "faults", "reset", "wait"])
        def test_later(idempotent_api, use):
            ended = KEPT[0]
            assert "1 request" not in ended.timeline()  # what it saw is still readable
            calls = {
                "url": lambda: ended.url,
                "clock": lambda: ended.clock.advance(1),
                "faults": lambda: ended.faults.drop_response(),
                "reset": lambda: ended.reset(),
                "wait": lambda: ended.wait_for_requests(1, timeout=30),
            }
            with pytest.raises(RuntimeError, match="has ended") as ended_error:
                calls[use]()
            print(ended_error.value)
            assert idempotent_api.faults.scripted == []  # the running test's plan is untouched
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-s")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "*idempotent_api.url: the test this idempotent_api belonged to has ended and its "
            "fake server has moved on; use the idempotent_api fixture of the running test*"
        ]
    )


@pytest.mark.parametrize("port", ["abc", "-1", "70000", "8080x"])
def test_a_port_in_the_environment_that_is_not_a_port_is_a_usage_error_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, port: str
) -> None:
    monkeypatch.setenv("PYTEST_IDEMPOTENCY_PORT", port)
    pytester.makepyfile("def test_it(idempotent_api):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert "INTERNALERROR" not in result.stdout.str()
    assert "pytest.UsageError" not in result.stdout.str()  # the message alone, no traceback
    result.stdout.fnmatch_lines(
        [
            f"PYTEST_IDEMPOTENCY_PORT='{port}': the variable must be a "
            "port from 0 to 65535; fix or unset it"
        ]
    )


def test_a_seed_in_the_environment_that_is_not_a_number_stops_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_IDEMPOTENCY_SEED", "abc")
    pytester.makepyfile("def test_it(idempotent_api):\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(
        [
            "ERROR: PYTEST_IDEMPOTENCY_SEED='abc': the variable must be a whole number; fix or unset it"
        ]
    )


# -- the command line and the admin API --------------------------------------------------------


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_idempotency", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e300"])
def test_a_ttl_on_the_command_line_that_is_not_finite_exits_2_naming_ttl(value: str) -> None:
    done = _serve("--set", f"ttl={value}")
    assert done.returncode == 2
    assert done.stdout == ""
    error = [line for line in done.stderr.splitlines() if line.startswith("pytest-idempotency:")]
    assert len(error) == 1
    assert error[0].startswith("pytest-idempotency: error: ttl must be a finite number of seconds")
    assert "Traceback" not in done.stderr


def test_a_ttl_of_nan_in_a_contract_file_exits_2_naming_it(tmp_path: Path) -> None:
    contract = tmp_path / "orders.toml"
    contract.write_text(
        '[policy]\nttl = nan\n\n[[routes]]\nroute = "POST /orders"\naction = "create"\n'
    )
    done = _serve("--contract", str(contract))
    assert done.returncode == 2
    assert "/policy/ttl" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(params=["in-process", "standalone"])
def target(request: pytest.FixtureRequest) -> Any:
    server: Target = Standalone() if request.param == "standalone" else InProcess()
    yield server
    err = server.close()
    if request.param == "standalone":
        assert clean_stderr(err or "") == []


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("ttl", "words"),
    [
        (math.nan, "NaN is not a JSON number"),
        (math.inf, "Infinity is not a JSON number"),
        (1e300, "ttl must be a finite number of seconds from 0 to 31536000000"),
        (-1, "ttl must be a finite number of seconds"),
    ],
)
def test_a_ttl_that_cannot_be_kept_is_refused_by_the_admin_reset_and_the_variant_stays_json(
    target: Target, ttl: float, words: str
) -> None:
    status, body = target.call("POST", "/__admin/reset", {"policy": {"ttl": ttl}})
    assert status == 400
    assert words in body["error"]
    answer = target.raw(
        f"GET /__admin/variant HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
        "Connection: close\r\n\r\n".encode(),
        half_close=False,
    )
    variant = _strict(split(answer)[2].decode())
    assert (variant["ttl"], variant["policy"]["ttl"]) == (86400.0, 86400.0)
    assert target.create("after-the-refusal") == 201


def test_a_port_in_use_is_a_usage_error_naming_the_port_and_the_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed port another process holds (or, under xdist, another worker) used to give a raw
    ``OSError: Address already in use`` traceback on every test."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("PYTEST_IDEMPOTENCY_PORT", str(port))
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the run is not a worker
        pytester.makepyfile("def test_it(idempotent_api):\n    pass\n")
        result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert "INTERNALERROR" not in output
    assert f"the fake server cannot listen on 127.0.0.1:{port}" in output
    assert "choose another PYTEST_IDEMPOTENCY_HOST / PYTEST_IDEMPOTENCY_PORT" in output
    assert "server.py" not in output  # no traceback from inside the server


def test_the_closest_choice_of_variant_wins_whether_variant_or_variants(
    pytester: pytest.Pytester,
) -> None:
    """A test's ``variant='stripe'`` used to lose to its class's ``variants=[...]`` silently;
    both on one marker is a usage error of that test."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.idempotency(variants=["phantom", "generic"])
        class TestC:
            @pytest.mark.idempotency(variant="stripe")
            def test_closest_variant(self, idempotent_api):
                assert idempotent_api.variant.name == "stripe"

            def test_class_variants(self, idempotent_api):
                assert idempotent_api.variant.name in ("phantom", "generic")

        @pytest.mark.idempotency(variant="phantom", variants=["generic"])
        def test_both(idempotent_api):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-v")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*variant= and variants= on one marker*"])
    assert "INTERNALERROR" not in result.stdout.str()
