"""The explorer's reference run and its judgement: a no-fault run that did nothing, requests that
arrive after the operation returned, a stored 5xx met before the last attempt's fault, a duplicate
that a loss of the same kind would hide, and a hang's wording."""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import Any

import pytest
import requests

from pytest_idempotency.explore import ExplorationError

TIMEOUT = 5.0


def _create(api: Any, key: str | None, params: dict[str, Any] | None = None) -> requests.Response:
    method, url, example = api.example()
    return requests.request(
        method, url, timeout=TIMEOUT, **api.request_kwargs(params or example, key=key)
    )


@pytest.mark.idempotency(variant="ietf")
def test_a_no_fault_run_that_raised_and_did_nothing_is_refused(idempotent_api):
    def forgets_the_required_key() -> Any:
        _create(idempotent_api, None).raise_for_status()  # IETF: a keyless POST is a 400

    with pytest.raises(ExplorationError) as caught:
        idempotent_api.explore(forgets_the_required_key, max_faults=1)

    text = str(caught.value)
    assert "raised HTTPError: 400" in text
    assert "without any fault and did nothing" in text
    assert "answered 400" in text
    assert isinstance(caught.value.__cause__, requests.HTTPError)


@pytest.mark.idempotency(variant="phantom")
def test_a_wrong_credential_in_the_no_fault_run_is_refused(idempotent_api):
    def wrong_credential() -> Any:
        headers = {"Authorization": "Bearer wrong", "Idempotency-Key": str(uuid.uuid4())}
        _, url, params = idempotent_api.example()
        requests.post(url, json=params, headers=headers, timeout=TIMEOUT).raise_for_status()

    with pytest.raises(ExplorationError, match="answered 401"):
        idempotent_api.explore(wrong_credential, max_faults=1)


@pytest.mark.idempotency(variant="phantom")
def test_a_request_sent_after_the_operation_returned_is_refused(idempotent_api):
    sent = threading.Event()

    def fire_and_forget() -> str:
        _create(idempotent_api, str(uuid.uuid4()))

        def later() -> None:
            threading.Event().wait(0.05)  # a background flush, just after the return
            _create(idempotent_api, str(uuid.uuid4()))
            sent.set()

        threading.Thread(target=later, daemon=True).start()
        return "queued"

    with pytest.raises(ExplorationError, match="after the operation had returned"):
        idempotent_api.explore(fire_and_forget, max_faults=1)
    assert sent.wait(TIMEOUT)


@pytest.mark.idempotency(variant="phantom")
def test_an_operation_whose_only_request_is_late_is_told_so_not_to_fix_its_url(idempotent_api):
    done = threading.Event()

    def queue_only() -> str:
        def later() -> None:
            threading.Event().wait(0.3)  # a background flush
            _create(idempotent_api, str(uuid.uuid4()))
            done.set()

        threading.Thread(target=later, daemon=True).start()
        return "queued"

    with pytest.raises(ExplorationError) as caught:
        idempotent_api.explore(queue_only, max_faults=1)

    assert "1 request(s) reached the fake after the operation had returned" in str(caught.value)
    assert "point its client" not in str(caught.value)
    assert done.wait(TIMEOUT)


def _patient(api: Any, attempts: int = 5) -> Any:
    """Same key on every attempt; retries connection errors and 5xx; raises when out of tries."""
    key = str(uuid.uuid4())
    for _ in range(attempts):
        try:
            response = _create(api, key)
        except requests.RequestException:
            continue
        if response.status_code < 500:
            response.raise_for_status()
            return response.json()
    raise RuntimeError("gave up")


@pytest.mark.idempotency(variant="stripe")
def test_a_stored_500_met_before_the_last_attempts_fault_is_on_the_provider(idempotent_api):
    report = idempotent_api.explore(
        lambda: _patient(idempotent_api), max_faults=2, faults=("error_after_500", "reset")
    )

    late_reset = [
        s
        for s in report.schedules
        if [f.name for f in s.faults] == ["error_after_500", "reset"] and s.faults[1].seq == 5
    ]
    assert late_reset, report.table()
    for schedule in late_reset:
        assert schedule.verdict == "ambiguous", schedule.timeline
        assert schedule.attribution is not None
        assert schedule.attribution.party == "provider", schedule.attribution
        assert "including 500 errors" in schedule.attribution.rule
    report.assert_safe(allow=("provider",))


@pytest.mark.idempotency(variant="generic")
def test_a_duplicate_is_found_when_a_loss_of_its_kind_would_even_the_count(idempotent_api):
    def two_creates() -> str:
        for _ in range(3):  # the first: retried, but with a new key each time
            try:
                _create(idempotent_api, str(uuid.uuid4()), {"name": "deck A"})
                break
            except requests.RequestException:
                continue
        with contextlib.suppress(requests.RequestException):  # the second: no retry
            _create(idempotent_api, str(uuid.uuid4()), {"name": "deck B"})
        return "done"

    report = idempotent_api.explore(two_creates, max_faults=2, faults=("drop", "reset"))

    (masked,) = [
        s
        for s in report.schedules
        if [(f.name, f.seq) for f in s.faults] == [("drop", 1), ("reset", 3)]
    ]
    assert len(masked.side_effects) == 2  # as many as the reference: a count cannot tell
    assert masked.verdict == "duplicate", masked.timeline
    assert masked.attribution is not None
    assert "new idempotency key" in masked.attribution.rule


@pytest.mark.idempotency(variant="phantom")
def test_a_hang_names_the_run_timeout_and_both_ways_out(idempotent_api):
    report = idempotent_api.explore(
        lambda: _create(idempotent_api, str(uuid.uuid4()), None).json(),
        max_faults=1,
        faults=("late",),
        run_timeout=1.0,
    )

    hung = [s for s in report.schedules if s.verdict == "hang"]
    assert hung, report.table()
    rule = str(hung[0].attribution)
    assert "did not finish within run_timeout=1 s" in rule
    assert "raise run_timeout" in rule
