"""The teardown check ``assert_all_deliveries_made``, as users run it (pytester)."""

from __future__ import annotations

import pytest

HEADER = """
import pytest
import requests

pytestmark = pytest.mark.idempotency(variant="moda")


def create(api):
    method, url, params = api.example()
    r = requests.post(url, **api.request_kwargs(params, key="k-1"), timeout=5)
    assert r.status_code == 201
"""


def test_due_delivery_never_made_fails_the_test_naming_the_fix(pytester: pytest.Pytester):
    pytester.makepyfile(
        HEADER
        + """
def test_forgot_to_deliver(idempotent_api):
    idempotent_api.webhooks.register(lambda request: 200)
    create(idempotent_api)
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]webhooks] delivery of evt_* (task.created) to callable * was due but never made:"
            " call idempotent_api.webhooks.deliver_due() or move the clock (clock.advance(...)),"
            " or drain it on purpose with webhooks.drain()*",
            "*@pytest.mark.idempotency(assert_all_deliveries_made=False)*",
        ]
    )


def test_delivered_drained_opted_out_or_not_yet_due_pass(pytester: pytest.Pytester):
    pytester.makepyfile(
        HEADER
        + """
def test_delivered(idempotent_api):
    idempotent_api.webhooks.register(lambda request: 200)
    create(idempotent_api)
    idempotent_api.clock.advance(30)


def test_drained(idempotent_api):
    idempotent_api.webhooks.register(lambda request: 500)
    create(idempotent_api)
    idempotent_api.clock.advance(0)
    assert idempotent_api.webhooks.drain() == 1


@pytest.mark.idempotency(assert_all_deliveries_made=False)
def test_opted_out(idempotent_api):
    idempotent_api.webhooks.register(lambda request: 200)
    create(idempotent_api)


def test_retry_not_yet_due(idempotent_api):
    idempotent_api.webhooks.register(lambda request: 500, events=["task.created"])
    create(idempotent_api)
    idempotent_api.clock.advance(0)  # the retry is 10 s away


def test_no_receiver_no_delivery(idempotent_api):
    create(idempotent_api)
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=5)


def test_unfired_delivery_fault_and_held_delivery_fail(pytester: pytest.Pytester):
    pytester.makepyfile(
        HEADER
        + """
def test_unfired(idempotent_api):
    idempotent_api.webhooks.faults.concurrent(event_type="task.failed")


def test_held(idempotent_api):
    idempotent_api.webhooks.register(lambda request: 200, events=["task.created"])
    idempotent_api.webhooks.faults.out_of_order()
    create(idempotent_api)
    idempotent_api.clock.advance(60)
"""
    )
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        ["*[[]webhooks] delivery fault never fired: concurrent event_type='task.failed'*"]
    )
    result.stdout.fnmatch_lines(["*is held out of order and no later event went to that*"])
