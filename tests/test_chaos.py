"""Seeded chaos: the same seed gives the same faults on the same requests, so a chaos run is
reproducible journal for journal, and the journal tells what each fault did to the commit.

One ``requests.Session`` drives the run sequentially (failures tolerated, up to three attempts
per operation under one key). No chaos kind delays an answer, so the client's timeout only
guards against a hang: it is long enough that a stall of a loaded machine never turns into an
extra attempt.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests

from pytest_idempotency import FaultError, IdempotentAPI
from pytest_idempotency.faults import CHAOS_KINDS

PATH = "/v1/things"
SEED = 20261123
REQUESTS = 500

Row = tuple[Any, ...]


def drive(api: IdempotentAPI, count: int, *, seed: int = SEED, rate: float = 0.3) -> list[Row]:
    """Send ``count`` requests under chaos; each operation is retried (same key) until it gets
    an answer below 500 or used three attempts. Returns the journal as comparable rows."""
    assert api.faults.chaos(rate=rate, seed=seed) == seed
    url = api.url_for(PATH)
    operation = attempt = 0
    with requests.Session() as session:
        while len(api.journal) < count:
            key = f"op-{operation:04d}"
            try:
                response = session.post(
                    url, timeout=10, **api.request_kwargs({"n": operation}, key=key)
                )
                answered = response.status_code < 500
            except requests.RequestException:
                answered = False
            attempt += 1
            if answered or attempt == 3:
                operation, attempt = operation + 1, 0
    return [
        (e.seq, e.method, e.path, e.key, e.decision, e.status, e.wire, e.fault)
        for e in api.exchanges
    ]


def test_same_seed_gives_the_identical_journal_twice(idempotent_api: IdempotentAPI) -> None:
    first = drive(idempotent_api, REQUESTS)
    idempotent_api.reset()
    second = drive(idempotent_api, REQUESTS)

    assert len(first) == REQUESTS
    assert first == second
    injected = Counter(row[7] for row in first if row[7] is not None)
    assert set(injected) == set(CHAOS_KINDS)  # every chaos kind struck at least once
    assert 0.2 * REQUESTS < sum(injected.values()) < 0.4 * REQUESTS  # rate 0.3


def test_another_seed_gives_another_journal(idempotent_api: IdempotentAPI) -> None:
    first = drive(idempotent_api, 100, seed=SEED)
    idempotent_api.reset()
    other = drive(idempotent_api, 100, seed=SEED + 1)

    assert [row[7] for row in first] != [row[7] for row in other]


def test_chaos_journal_tells_what_each_fault_committed(idempotent_api: IdempotentAPI) -> None:
    drive(idempotent_api, 300)

    effects = Counter(s.exchange_seq for s in idempotent_api.side_effects)
    for exchange in idempotent_api.exchanges:
        ran = exchange.decision == "new"
        assert effects[exchange.seq] == (1 if ran else 0), exchange.as_dict()
        assert exchange.committed is ran, exchange.as_dict()
        if exchange.fault in ("reset", "error_before"):
            assert (exchange.decision, exchange.committed) == (None, False)
        if exchange.fault == "reset":
            assert (exchange.wire, exchange.status) == ("reset", None)
        if exchange.fault == "drop":
            assert exchange.wire == "dropped"
        if exchange.fault == "garbage":
            assert exchange.wire == "garbage"
        if exchange.fault == "error_after" and ran:
            assert exchange.status in (500, 502, 503)
    # Per key, the server ran the handler once per fresh execution: replays add nothing, and
    # an uncached 5xx after the commit (error_after) is the only way a key runs twice.
    per_key = Counter(s.key for s in idempotent_api.side_effects)
    for key, count in per_key.items():
        runs = idempotent_api.journal.filter(key=key, decision="new")
        assert count == len(runs)
        if count > 1:
            assert all(e.fault == "error_after" for e in runs[:-1]), [e.as_dict() for e in runs]


def test_scripted_faults_come_before_chaos(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.faults.chaos(rate=1.0, kinds=["reset"], seed=SEED)
    idempotent_api.faults.drop_response()

    with requests.Session() as session:
        for _ in range(2):
            with pytest.raises(requests.ConnectionError):
                session.post(
                    idempotent_api.url_for(PATH),
                    timeout=10,
                    **idempotent_api.request_kwargs({"n": 1}, key="k"),
                )

    assert [(e.fault, e.wire) for e in idempotent_api.exchanges] == [
        ("drop", "dropped"),
        ("reset", "reset"),
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 1.5}, "chaos rate is a share between 0 and 1"),
        ({"kinds": ["hold"]}, "chaos kinds must be among drop, reset"),
        ({"kinds": []}, "chaos kinds must be among"),
        ({"statuses": [404]}, "chaos statuses must be among"),
    ],
)
def test_chaos_options_are_checked_with_the_fix_in_the_message(
    idempotent_api: IdempotentAPI, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(FaultError, match=message):
        idempotent_api.faults.chaos(**options)
