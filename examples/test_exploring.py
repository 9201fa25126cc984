"""Let the explorer find the retry bugs: one operation, every fault schedule.

``idempotent_api.explore(operation)`` runs the operation once without faults, then once per
fault schedule (a lost response, a reset, a 503, a 500 after the side effect, a garbled reply,
a restart...; two per schedule by default), each from fresh state, and gives every run a
verdict: ``safe``, ``duplicate``, ``lost``, ``ambiguous`` or ``hang``. See docs/explore.md.
"""

from __future__ import annotations

import time

import pytest
from retrying_client import KeyPlacement, RetryingClient

pytestmark = pytest.mark.idempotency(variants="seeds")


def make_client(api, **options) -> RetryingClient:
    contract = api.contract
    placement = KeyPlacement(
        header=contract.key_header,
        body_field=contract.key_field,
        structured_field=contract.key_format == "sf-string",
        form_encoded=contract.body_encoding == "form",
    )
    # A short timeout: a reply the fake holds back costs this much real time per schedule.
    # ``sleep=time.sleep`` is looked up inside the run, where the explorer has made it advance
    # the fake clock (the client's default was bound at import and would really sleep).
    return RetryingClient(
        api.url,
        credential=api.credential,
        placement=placement,
        timeout=0.3,
        backoff=0.5,
        sleep=time.sleep,
        **options,
    )


def create_once(api, key: str | None = None, **options) -> dict:
    """One logical operation: create the variant's example resource, or raise."""
    _method, url, params = api.example()
    client = make_client(api, **options)
    try:
        response = client.post(url.removeprefix(api.url), params, idempotency_key=key)
    finally:
        client.session.close()  # every run closes its connections (none is left to the GC)
    response.raise_for_status()
    return response.json()


def test_the_retrying_client_survives_every_single_fault(idempotent_api):
    report = idempotent_api.explore(lambda: create_once(idempotent_api), max_faults=1)

    # What may remain is the provider's own documented rule (a 5xx after the side effect is
    # not stored, so the retry runs again; or it is stored and replayed to every retry).
    report.assert_safe(allow=("provider",))


def test_the_explorer_catches_a_new_key_on_every_retry(idempotent_api):
    report = idempotent_api.explore(
        lambda: create_once(idempotent_api, mint_key_per_attempt=True), max_faults=1
    )

    doubles = [s for s in report.unsafe if s.verdict == "duplicate"]
    assert doubles, report.table()
    assert all(s.attribution and s.attribution.party == "client" for s in doubles)
    print(doubles[0].reproducer)  # a ready-made regression test for the first one


def test_a_key_from_the_logical_operation_survives_a_worker_crash(idempotent_api):
    # restarts=True: the worker dies after the server committed, before it saw the answer,
    # and is run again from the start, as a restarted cron job would be.
    report = idempotent_api.explore(
        lambda: create_once(idempotent_api, key="weekly-deck:2026-W17"),
        max_faults=1,
        restarts=True,
    )

    report.assert_safe(allow=("provider",))
