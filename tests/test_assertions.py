"""Assertion helpers: what they check and, pinned with pytester, exactly what they say."""

from __future__ import annotations

import json

from pytest_idempotency import variant_names

_POST = """
import requests

def post(api, body, key):
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(api.url + "/v1/things", json=body, headers=headers)
"""


def test_assert_exactly_once_names_every_side_effect_and_the_new_key_per_retry_bug(pytester):
    pytester.makepyfile(
        _POST
        + """
def test_it(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    post(idempotent_api, {"a": 1}, "key-2")
    idempotent_api.assert_exactly_once()
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: expected exactly one side effect, the server executed 2:",
            "E         - object.created obj_000001 by request #1 (key 'key-1')",
            "E         - object.created obj_000002 by request #2 (key 'key-2')",
            "E       They came under 2 different keys (key-1, key-2): does the client mint a new "
            "idempotency key per retry?",
            "E       ",
            "E       What the fake server saw:",
            "E       #  clock    request          key    body      decision  status  wire      effects",
        ],
        consecutive=True,
    )


def test_assert_exactly_once_passes_for_one_side_effect_and_filters_by_key(pytester):
    pytester.makepyfile(
        _POST
        + """
def test_it(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    post(idempotent_api, {"a": 1}, "key-1")
    post(idempotent_api, {"b": 2}, "key-2")
    idempotent_api.assert_exactly_once(key="key-1")
    idempotent_api.assert_exactly_once(key="key-2")
    idempotent_api.assert_side_effects(2)
    idempotent_api.assert_side_effect_counts({"object": 2})
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_assert_exactly_once_with_no_side_effect_says_none(pytester):
    pytester.makepyfile(
        """
def test_it(idempotent_api):
    idempotent_api.assert_exactly_once(kind="object.created")
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: expected exactly one side effect (kind='object.created'), "
            "the server executed none",
            "E       ",
            "E       What the fake server saw:",
            "E       (the fake server received no request in this test, or since its last reset)",
        ],
        consecutive=True,
    )


def test_assert_same_key_on_retries_catches_a_new_key_and_a_shared_key(pytester):
    pytester.makepyfile(
        _POST
        + """
def test_new_key_per_retry(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    post(idempotent_api, {"a": 1}, "key-2")
    idempotent_api.assert_same_key_on_retries()

def test_shared_key(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    post(idempotent_api, {"a": 2}, "key-1")
    idempotent_api.assert_same_key_on_retries()

def test_good(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    post(idempotent_api, {"a": 1}, "key-1")
    post(idempotent_api, {"a": 2}, "key-2")
    idempotent_api.assert_same_key_on_retries()
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: keys were not used one per operation:",
            'E         - one operation (POST /v1/things {"a":1}) was sent 2 times under 2 keys: '
            "#1 key='key-1', #2 key='key-2'; a retry must resend the key of the first attempt",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "E         - key 'key-1' was used for 2 different operations; each logical operation "
            "needs its own key",
        ]
    )


def test_a_conflict_shows_a_field_by_field_diff_of_the_two_bodies(pytester):
    pytester.makepyfile(
        _POST
        + """
def test_it(idempotent_api):
    post(idempotent_api, {"amount": 100, "currency": "eur", "memo": "x"}, "key-1")
    post(idempotent_api, {"amount": 200, "currency": "eur", "note": "y"}, "key-1")
    idempotent_api.assert_never_saw("conflict")
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: expected no conflict answer, the server gave: #2 conflict",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E       #2 reused key 'key-1' of #1 with another body:",
            "E           ~ amount: 100 -> 200",
            'E           - memo: "x" (only in #1)',
            'E           + note: "y" (only in #2)',
        ],
        consecutive=True,
    )


def test_assert_all_keyed_catches_a_mutating_request_without_a_key(pytester):
    pytester.makepyfile(
        _POST
        + """
def test_it(idempotent_api):
    post(idempotent_api, {"a": 1}, None)
    idempotent_api.assert_all_keyed()
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       AssertionError: 1 mutating request(s) carried no idempotency key: "
            "#1 POST /v1/things; a retry of such a request can execute twice",
        ]
    )


def test_assert_replayed_fresh_and_saw_read_the_last_exchange_or_a_given_one(pytester):
    pytester.makepyfile(
        _POST
        + """
import pytest

def test_it(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    post(idempotent_api, {"a": 1}, "key-1")
    idempotent_api.assert_replayed(key="key-1")
    idempotent_api.assert_fresh(seq=1)
    idempotent_api.assert_saw("replayed", count=1)
    idempotent_api.assert_never_saw(["conflict", "in_flight"])
    with pytest.raises(AssertionError, match="request #1 was new, not replayed"):
        idempotent_api.assert_replayed(seq=1)
    with pytest.raises(AssertionError, match="request #2 was replayed, not a fresh execution"):
        idempotent_api.assert_fresh()
    with pytest.raises(AssertionError, match="expected a conflict answer, the server gave none"):
        idempotent_api.assert_saw("conflict")
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_assertions_work_as_plain_functions_on_a_journal(pytester):
    pytester.makepyfile(
        _POST
        + """
import pytest
from pytest_idempotency import assert_exactly_once, assert_same_key_on_retries

def test_it(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    assert_exactly_once(idempotent_api.journal)
    assert_same_key_on_retries(idempotent_api.journal)
    post(idempotent_api, {"a": 1}, "key-2")
    with pytest.raises(AssertionError, match="the server executed 2"):
        assert_exactly_once(idempotent_api.journal)
    with pytest.raises(AssertionError, match="was sent 2 times under 2 keys"):
        assert_same_key_on_retries(idempotent_api.journal)
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_one_portable_test_passes_for_a_correct_client_and_fails_with_a_timeline_for_a_buggy_one(
    pytester,
):
    pytester.makepyfile(
        """
import uuid
import requests

def send(api, key_for_attempt):
    method, url, params = api.example()
    api.faults.drop_response()
    for attempt in range(3):
        try:
            return requests.request(method, url, **api.request_kwargs(params, key=key_for_attempt(attempt)))
        except requests.ConnectionError:
            continue

def test_correct_client(idempotent_api):
    key = str(uuid.uuid4())
    assert send(idempotent_api, lambda attempt: key).ok
    idempotent_api.assert_exactly_once()

def test_buggy_client(idempotent_api):
    send(idempotent_api, lambda attempt: str(uuid.uuid4()))
    idempotent_api.assert_exactly_once()
"""
    )
    result = pytester.runpytest("--idempotency-variant=all", "-v")
    n = len(variant_names())
    result.assert_outcomes(passed=n, failed=n)
    for name in variant_names():
        result.stdout.fnmatch_lines([f"*test_correct_client[[]{name}[]] PASSED*"])
    # The timeline is said once per failure: in the assertion's message, not again in a section.
    assert str(result.stdout).count("What the fake server saw:") == n
    result.stdout.no_fnmatch_line("*- idempotency timeline (*")
    result.stdout.fnmatch_lines(["*does the client mint a new idempotency key per retry?"])


def test_side_effect_counts_fail_on_a_resource_the_test_left_out(pytester):
    """``{}`` or ``{"task": 1}`` used to pass beside side effects of another resource: the
    duplicates the test did not name went unseen."""
    pytester.makepyfile(
        _POST
        + """
def test_none_expected(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    idempotent_api.assert_side_effect_counts({})

def test_another_resource_expected(idempotent_api):
    post(idempotent_api, {"a": 1}, "key-1")
    idempotent_api.assert_side_effect_counts({"task": 0})
"""
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*side effects per resource differ:*", "*- object: expected 0, got 1*"]
    )


def test_a_failure_with_thousands_of_side_effects_lists_twenty_and_counts_the_rest(pytester):
    """10,000 side effects under 10,000 keys used to be listed whole, the keys on one 69,000
    character line; a 900 KB body diff printed both values whole."""
    pytester.makepyfile(
        _POST
        + """
import pytest

def test_many(idempotent_api):
    with requests.Session() as session:
        for n in range(300):
            session.post(idempotent_api.url + "/v1/things", json={"n": n},
                         headers={"Idempotency-Key": f"k{n}"})
    with pytest.raises(AssertionError) as failed:
        idempotent_api.assert_exactly_once()
    text = str(failed.value).split("What the fake server saw")[0]
    assert "... and 280 more" in text
    assert text.count("by request #") == 20
    assert ", ... and 280 more): does the client mint" in text
    assert max(len(line) for line in text.splitlines()) < 600
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_a_body_diff_cuts_long_values_saying_how_long_they_were() -> None:
    from pytest_idempotency.journal import Exchange
    from pytest_idempotency.timeline import body_diff

    def exchange(seq: int, text: str) -> Exchange:
        body = json.dumps({"blob": text, "n": seq}).encode()
        return Exchange(
            seq=seq, at=0.0, method="POST", path="/", body=body, content_type="application/json"
        )

    lines = body_diff(exchange(1, "a" * 900_000), exchange(2, "b" * 900_000))
    assert max(len(line) for line in lines) < 600
    assert "(900,002 characters)" in lines[0]
