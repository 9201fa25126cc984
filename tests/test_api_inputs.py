"""Bad input to the Python API (the clock, timeouts, faults, assertions, the facade, a policy
built by hand) is refused where it is given, with an error naming the argument, what came and
what is accepted: never a hang, a 400 from inside the fake, or a timeline that cannot be drawn.
After each refusal the fake still serves a real request over a socket."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest
import requests

from pytest_idempotency import FaultError, IdempotentAPI, Policy, PolicyError
from pytest_idempotency.clock import LATEST
from pytest_idempotency.faults import FaultTypeError
from pytest_idempotency.policy import Answer

NAN, INF = math.nan, math.inf
TIMEOUT = 10.0


def _still_serves(api: IdempotentAPI, key: str = "after-the-refusal") -> None:
    """A keyed create over a real socket gets a 2xx, and the timeline can be drawn."""
    method, url, params = api.example()
    answer = requests.request(method, url, timeout=TIMEOUT, **api.request_kwargs(params, key=key))
    assert 200 <= answer.status_code < 300, answer.text
    assert "1 request(s), 1 side effect(s)" in api.timeline()


# -- the clock ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("move", "error", "named"),
    [
        (lambda c: c.advance(NAN), ValueError, "clock.advance(seconds)"),
        (lambda c: c.advance(INF), ValueError, "clock.advance(seconds)"),
        (lambda c: c.advance(hours=NAN), ValueError, "clock.advance(hours)"),
        (lambda c: c.advance(days=10**400), ValueError, "clock.advance(days)"),
        (lambda c: c.advance(days=3_000_000), ValueError, "years 1970-8999"),
        (lambda c: c.advance("1h"), TypeError, "clock.advance(seconds)"),
        (lambda c: c.advance(minutes="5"), TypeError, "clock.advance(minutes)"),
        (lambda c: c.set(NAN), ValueError, "clock.set(when)"),
        (lambda c: c.set(-INF), ValueError, "clock.set(when)"),
        (lambda c: c.set(-1e30), ValueError, "years 1970-8999"),
        (lambda c: c.set(1e300), ValueError, "years 1970-8999"),
        (lambda c: c.set(dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc)), ValueError, "8999"),
        (lambda c: c.set("2026-01-01"), TypeError, "clock.set(when)"),
        (lambda c: c.set(True), TypeError, "clock.set(when)"),
    ],
)
def test_a_clock_move_that_is_not_finite_or_within_its_dates_is_refused_naming_it(
    idempotent_api: IdempotentAPI, move: Any, error: type[Exception], named: str
) -> None:
    offset = idempotent_api.clock.offset
    with pytest.raises(error) as refused:
        move(idempotent_api.clock)
    assert named in str(refused.value)
    assert idempotent_api.clock.offset == offset  # nothing moved
    _still_serves(idempotent_api)


@pytest.mark.parametrize(
    ("seconds", "error"),
    [(NAN, FaultError), (INF, FaultError), (-1, FaultError), ("60", FaultTypeError)],
)
def test_a_clock_jump_fault_that_is_not_finite_is_refused_naming_seconds(
    idempotent_api: IdempotentAPI, seconds: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="seconds must be"):
        idempotent_api.faults.clock_jump(seconds)
    assert idempotent_api.faults.scripted == []
    _still_serves(idempotent_api)


def test_a_clock_jump_past_the_clocks_last_date_stops_there_and_the_request_is_served(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.clock_jump(LATEST)
    _still_serves(idempotent_api)
    assert LATEST - 3600 < idempotent_api.clock.now() <= LATEST
    assert "its dates end at 9000-01-01" in (idempotent_api.exchanges[0].note or "")
    assert idempotent_api.clock.isoformat().startswith("8999-12-31")


# -- timeouts ----------------------------------------------------------------------------------


def _waits(api: IdempotentAPI) -> dict[str, Any]:
    hold = api.faults.hold()
    return {
        "wait_for_requests": lambda t: api.wait_for_requests(1, timeout=t),
        "journal.wait_for": lambda t: api.journal.wait_for(lambda j: False, timeout=t),
        "wait_until_held": lambda t: hold.wait_until_held(timeout=t),
    }


@pytest.mark.parametrize("wait", ["wait_for_requests", "journal.wait_for", "wait_until_held"])
@pytest.mark.parametrize(
    ("timeout", "error"),
    [(NAN, ValueError), (INF, ValueError), (-1, ValueError), ("5", TypeError), (True, TypeError)],
)
def test_a_timeout_that_is_not_a_finite_number_of_seconds_is_refused_before_waiting(
    idempotent_api: IdempotentAPI, wait: str, timeout: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="timeout must be"):
        _waits(idempotent_api)[wait](timeout)
    idempotent_api.faults.clear()
    _still_serves(idempotent_api)


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "words"),
    [
        (lambda f: f.latency(INF), "seconds must be a finite number >= 0 and <= 3600"),
        (lambda f: f.slow_response(NAN), "seconds must be a finite number"),
        (lambda f: f.in_flight(-1), "seconds must be a finite number >= 0"),
        (lambda f: f.late_response(3601), "for longer, omit it and release the fault"),
        (lambda f: f.error_before_commit(200), "use a 4xx or 5xx status"),
        (lambda f: f.error_before_commit(302), "use a 4xx or 5xx status"),
        (lambda f: f.drop_response(method="PO\r\nST"), "method must be an HTTP method"),
        (lambda f: f.drop_response(method="POST /x"), "method must be an HTTP method"),
        (lambda f: f.drop_response(key="a\r\nb"), "has a control character"),
        (lambda f: f.error_before_commit(503, retry_after="1\r\nX: y"), "without CR, LF"),
        (lambda f: f.error_before_commit(503, retry_after="-1"), "or an HTTP date"),
        (lambda f: f.error_before_commit(503, retry_after="9" * 26), "from 0 to 315360000"),
        (lambda f: f.error_before_commit(503, retry_after="soon"), "as RFC 9110 has it"),
        (lambda f: f.chaos(NAN), "chaos rate is a share between 0 and 1"),
    ],
)
def test_a_fault_value_that_cannot_work_is_refused_naming_it(
    idempotent_api: IdempotentAPI, script: Any, words: str
) -> None:
    with pytest.raises(FaultError) as refused:
        script(idempotent_api.faults)
    assert words in str(refused.value)
    assert idempotent_api.faults.scripted == []
    _still_serves(idempotent_api)


@pytest.mark.parametrize(
    ("script", "named"),
    [
        (lambda f: f.drop_response(method=5), "method must be a str"),
        (lambda f: f.drop_response(key=5), "key must be the idempotency key as a str"),
        (lambda f: f.drop_response(path=5), "fault path must be a str"),
        (lambda f: f.error_before_commit("503"), "status must be an HTTP status"),
        (lambda f: f.error_before_commit(503, retry_after=2.5), "retry_after must be"),
        (lambda f: f.restart(keep_records="no"), "keep_records must be True or False"),
        (lambda f: f.partial_batch(["acct_b"]), "failures must be a mapping"),
        (lambda f: f.partial_batch({5: "transient"}), "partial_batch targets are strs"),
        (lambda f: f.drop_response(times="1"), "times must be a whole number"),
        (lambda f: f.drop_response(attempt=1.0), "attempt counts from 1"),
        (lambda f: f.add(5), "the fault kind must be a str"),
        (lambda f: f.chaos("0.5"), "chaos rate is a number"),
        (lambda f: f.chaos(0.5, kinds="drop"), "chaos kinds must be a list or tuple"),
        (lambda f: f.chaos(0.5, statuses=503), "chaos statuses must be a list or tuple"),
        (lambda f: f.chaos(0.5, seed="7"), "chaos seed must be a whole number"),
        (lambda f: f.hold().wait_until_held(count="2"), "wait_until_held(count)"),
    ],
)
def test_a_fault_option_of_the_wrong_type_is_a_type_error_naming_it(
    idempotent_api: IdempotentAPI, script: Any, named: str
) -> None:
    with pytest.raises(TypeError) as refused:
        script(idempotent_api.faults)
    assert isinstance(refused.value, FaultError)  # admin callers catch it as before
    assert named in str(refused.value)
    idempotent_api.faults.clear()
    _still_serves(idempotent_api)


# -- assertions and the facade -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "error", "named"),
    [
        (lambda a: a.assert_side_effects("1"), TypeError, "count must be a whole number"),
        (lambda a: a.assert_side_effects(-1), ValueError, "count must be >= 0"),
        (lambda a: a.assert_exactly_once(key=5), TypeError, "key= filters by a str"),
        (lambda a: a.assert_exactly_once(path=b"/x"), TypeError, "path= filters by a str"),
        (lambda a: a.assert_side_effect_counts(["thing"]), TypeError, "expected must be a mapping"),
        (lambda a: a.assert_side_effect_counts({"thing": "1"}), TypeError, "expected['thing']"),
        (lambda a: a.assert_same_key_on_retries(method=5), TypeError, "method= filters by a str"),
        (lambda a: a.assert_replayed(seq="1"), TypeError, "seq must be a whole number"),
        (lambda a: a.assert_fresh(seq=0), ValueError, "seq must be >= 1"),
        (lambda a: a.assert_saw(5), TypeError, "decision must be a str, one of new, replayed"),
        (lambda a: a.assert_saw("replay"), ValueError, "the decisions are new, replayed"),
        (lambda a: a.assert_saw("new", count="1"), TypeError, "count must be a whole number"),
        (lambda a: a.assert_never_saw(5), TypeError, "decisions must be a str or a list"),
        (lambda a: a.assert_never_saw(["conflicts"]), ValueError, "unknown decisions"),
        (lambda a: a.assert_saw_header(5), TypeError, "name must be a header name"),
        (lambda a: a.assert_saw_header("X-A", 5), TypeError, "value= filters by a str"),
        (lambda a: a.assert_saw_header("X-A", every="yes"), TypeError, "every must be True"),
        (lambda a: a.headers(5), TypeError, "key must be a str or None"),
        (lambda a: a.headers(extra=["X-A"]), TypeError, "headers(extra=...) takes a mapping"),
        (lambda a: a.request_kwargs([("a", 1)]), TypeError, "request_kwargs(params) takes a"),
        (lambda a: a.request_kwargs({}, credential=5), TypeError, "credential must be a str"),
        (lambda a: a.url_for(5), TypeError, "url_for(path) takes a str"),
        (lambda a: a.restart(keep_records="no"), TypeError, "restart(keep_records)"),
        (lambda a: a.wait_for_requests("1"), TypeError, "wait_for_requests(count)"),
        (lambda a: a.explore(lambda: None, run_timeout=NAN), ValueError, "run_timeout must be"),
        (lambda a: a.explore(lambda: None, run_timeout=7200), ValueError, "run_timeout must be"),
        (lambda a: a.explore(lambda: None, run_timeout=INF), ValueError, "at most 1200"),
        (lambda a: a.webhooks.checkpoint(timeout=NAN), ValueError, "timeout must be"),
        (lambda a: a.webhooks.checkpoint(timeout="5"), TypeError, "timeout must be a number"),
    ],
)
def test_a_helper_given_the_wrong_type_or_value_names_the_argument(
    idempotent_api: IdempotentAPI, check: Any, error: type[Exception], named: str
) -> None:
    with pytest.raises(error) as refused:
        check(idempotent_api)
    assert not isinstance(refused.value, AssertionError)  # a usage mistake, not a failed check
    assert named in str(refused.value)
    _still_serves(idempotent_api)


# -- a policy built by hand --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("ttl", NAN, "ttl must be a finite number of seconds from 0 to 31536000000"),
        ("ttl", INF, "ttl must be a finite number"),
        ("ttl", -1, "ttl must be a finite number"),
        ("ttl", 1e12, "(1,000 years)"),
        ("ttl", "soon", "ttl must be a number or None (got 'soon')"),
        ("ttl", True, "ttl must be a number or None (got True)"),
        ("key_max_length", "9", "key_max_length must be an int (not a bool) (got '9')"),
        ("key_min_length", True, "key_min_length must be an int (not a bool) (got True)"),
        ("cache_2xx", 1, "cache_2xx must be True or False (got 1)"),
        ("mismatch", "x", "mismatch must be an Answer(status, code, message) (got 'x')"),
        ("keyed_routes", "POST /x", "not the bare str 'POST /x': write ('POST /x',)"),
        ("scope", "credential", "scope must be a tuple (or list), each item one of"),
        ("replay_headers", ("X-Replay", "true"), "each item a pair (a str, a str)"),
        ("key_route_limits", (("POST /x", True),), "each item a pair (a str, an int"),
        ("key_header", 5, "key_header must be a str or None (got 5)"),
        ("key_format", 5, "key_format must be one of 'raw', 'sf-string' (got 5)"),
        ("extra", [], "extra must be a dict (got [])"),
    ],
)
def test_a_policy_field_of_the_wrong_type_or_value_is_refused_at_construction(
    idempotent_api: IdempotentAPI, field: str, value: Any, words: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        Policy(**{field: value})
    assert words in str(refused.value)
    with pytest.raises(PolicyError, match=f"^{field} "):
        idempotent_api.reset(**{field: value})  # the same check on every route in
    _still_serves(idempotent_api)


def test_answer_fields_are_checked_and_lists_are_taken_as_tuples() -> None:
    with pytest.raises(TypeError, match=r"^mismatch\.message must be a str"):
        Policy(mismatch=Answer(409, "reused", None))  # type: ignore[arg-type]
    policy = Policy(keyed_routes=["POST /v1/things"], replay_headers=[["X-Replay", "true"]])
    assert policy.keyed_routes == ("POST /v1/things",)
    assert policy.replay_headers == (("X-Replay", "true"),)
    same = Policy(keyed_routes=("POST /v1/things",), replay_headers=(("X-Replay", "true"),))
    assert policy == same
    assert hash(policy) == hash(same)
