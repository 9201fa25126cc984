"""The fault-schedule explorer: a gallery of wrong clients, each caught with the right verdict,
and correct clients (stripe-python, a Stainless SDK, hand-written ones) that are not accused."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import httpx
import orb
import pytest
import requests
import stripe

from pytest_idempotency.explore import ExplorationError, PlannedFault

ADJUST = "/api/v1/economy/adjust"
#: A patient client timeout, for schedules where no reply is held back: it never fires, however
#: loaded the machine.
TIMEOUT = 5.0
#: A short one, where the fake holds replies back (late, in_flight): each costs this much.
SHORT = 0.3
#: The hedging client's deadline per attempt (its slow attempt's connection stays open).
HEDGE = 1.0
#: Faults that cost no client timeout (late and in_flight wait for the client to give up).
QUICK = ("reset", "drop", "error_before_503", "error_after_500", "garbage")


def _adjust(api, key: str | None, session: requests.Session | None = None, **kw: Any):
    send = session or requests
    return send.post(
        api.url_for(ADJUST),
        json={"user_id": "123", "delta": 500},
        headers=api.headers(key),
        **({"timeout": TIMEOUT} | kw),
    )


def retrying(
    api, *, new_key_per_retry=False, new_key_on_409=False, attempts=3, timeout=TIMEOUT
) -> Callable[[], Any]:
    """A requests client that retries connection errors, 409 and 5xx with backoff."""

    def operation() -> Any:
        key = str(uuid.uuid4())
        session = requests.Session()
        for attempt in range(attempts):
            try:
                response = _adjust(api, key, session, timeout=timeout)
                if response.status_code == 409 and new_key_on_409:
                    key = str(uuid.uuid4())  # the bug: "in use" read as "used"
                elif response.status_code < 500 and response.status_code != 409:
                    response.raise_for_status()
                    return response.json()
            except requests.RequestException:
                pass
            time.sleep(2**attempt)
            if new_key_per_retry:
                key = str(uuid.uuid4())  # the bug: a fresh key on every attempt
        raise RuntimeError("gave up")

    return operation


def _verdicts(report) -> dict[tuple[str, ...], str]:
    return {tuple(f.name for f in s.faults): s.verdict for s in report.schedules}


# -- the gallery: one wrong client per bug class ---------------------------------------------


@pytest.mark.idempotency(variant="phantom")
def test_a_new_key_per_retry_is_a_duplicate_on_a_lost_response(idempotent_api):
    report = idempotent_api.explore(
        retrying(idempotent_api, new_key_per_retry=True), max_faults=1, faults=QUICK
    )

    verdicts = _verdicts(report)
    assert verdicts[()] == "safe"
    assert verdicts[("drop",)] == "duplicate"
    assert verdicts[("reset",)] == "safe"  # nothing was committed, the new key is harmless
    dropped = next(s for s in report.unsafe if s.faults[0].name == "drop")
    assert dropped.attribution is not None
    assert dropped.attribution.party == "client"
    assert "new idempotency key" in dropped.attribution.rule
    assert len({e.key for e in dropped.side_effects}) == 2
    with pytest.raises(AssertionError, match=r"unsafe schedule\(s\) \(duplicate\)"):
        report.assert_safe()


@pytest.mark.idempotency(variant="phantom")
def test_a_swallowed_error_reported_as_success_is_lost(idempotent_api):
    def operation() -> Any:
        try:
            return _adjust(idempotent_api, str(uuid.uuid4())).json()
        except requests.RequestException:
            return {"ok": True}  # the bug: the failure is reported as success

    report = idempotent_api.explore(operation, max_faults=1, faults=QUICK)

    verdicts = _verdicts(report)
    assert verdicts[("reset",)] == "lost"
    lost = next(s for s in report.unsafe if s.verdict == "lost")
    assert lost.raised is None
    assert lost.side_effects == []
    assert lost.attribution is not None
    assert lost.attribution.party == "client"


@pytest.mark.idempotency(variant="phantom")
def test_no_retry_after_a_lost_response_is_ambiguous(idempotent_api):
    def operation() -> Any:
        response = _adjust(idempotent_api, str(uuid.uuid4()))  # the bug: one attempt only
        response.raise_for_status()
        return response.json()

    report = idempotent_api.explore(operation, max_faults=1, faults=QUICK)

    verdicts = _verdicts(report)
    assert verdicts[("drop",)] == "ambiguous"
    assert verdicts[("reset",)] == "safe"  # raised, and nothing happened: the caller is right
    ambiguous = next(s for s in report.unsafe if s.faults[0].name == "drop")
    assert isinstance(ambiguous.raised, requests.ConnectionError)
    assert len(ambiguous.side_effects) == 1
    report.assert_safe(allow=("ambiguous", "provider"))


def hedging(api, *, new_key_on_409: bool) -> Callable[[], Any]:
    """A client with a deadline per attempt that does not close a slow attempt's connection:
    its retry meets the original still in flight (a 409 "in use" on Phantom)."""

    def operation() -> Any:
        key = str(uuid.uuid4())
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(4):
                attempt = pool.submit(_adjust, api, key, timeout=10)
                try:
                    response = attempt.result(timeout=HEDGE)
                except FutureTimeout:
                    continue  # the deadline passed; the attempt's connection stays open
                if response.status_code == 409:
                    if new_key_on_409:
                        key = str(uuid.uuid4())  # the bug: "in use" read as "used"
                    time.sleep(1)
                    continue
                response.raise_for_status()
                return response.json()
        raise RuntimeError("gave up")

    return operation


@pytest.mark.idempotency(variant="phantom")
def test_a_new_key_after_an_in_flight_409_is_a_duplicate(idempotent_api):
    report = idempotent_api.explore(
        hedging(idempotent_api, new_key_on_409=True), max_faults=1, faults=("in_flight",)
    )

    (held,) = [s for s in report.schedules if s.faults]
    assert held.verdict == "duplicate"
    assert "in_flight" in [e.decision for e in held.journal.exchanges]
    assert held.attribution is not None
    assert held.attribution.party == "client"


@pytest.mark.idempotency(variant="phantom")
def test_the_same_key_after_an_in_flight_409_is_safe(idempotent_api):
    report = idempotent_api.explore(
        hedging(idempotent_api, new_key_on_409=False), max_faults=1, faults=("in_flight",)
    )

    (held,) = [s for s in report.schedules if s.faults]
    assert held.verdict == "safe"
    assert [e.decision for e in held.journal.exchanges][:2] == ["new", "in_flight"]
    report.assert_safe()


@pytest.mark.idempotency(variant="phantom")
def test_no_timeout_is_a_hang_and_the_exploration_goes_on(idempotent_api):
    def operation() -> Any:
        response = requests.post(  # the bug: no timeout
            idempotent_api.url_for(ADJUST),
            json={"user_id": "123", "delta": 500},
            headers=idempotent_api.headers(str(uuid.uuid4())),
        )
        return response.json()

    report = idempotent_api.explore(
        operation, max_faults=1, faults=("late", "reset"), run_timeout=2.0
    )

    verdicts = _verdicts(report)
    assert verdicts[("late",)] == "hang"
    assert verdicts[("reset",)] == "safe"  # raised, nothing committed; the run after the hang
    hang = next(s for s in report.schedules if s.verdict == "hang")
    assert hang.attribution is not None
    assert "timeout" in hang.attribution.rule


@pytest.mark.idempotency(variant="phantom")
def test_the_ttl_hazard_is_off_by_default_and_attributed_when_asked(idempotent_api):
    operation = retrying(idempotent_api)

    plain = idempotent_api.explore(operation, max_faults=2, faults=("drop", "ttl_expired"))
    asked = idempotent_api.explore(
        operation, max_faults=2, faults=("drop", "ttl_expired"), hazards=("ttl",)
    )

    assert all(f.name != "ttl_expired" for s in plain.schedules for f in s.faults)
    plain.assert_safe()
    expired = _verdicts(asked)
    assert expired[("drop", "ttl_expired")] == "duplicate"
    schedule = next(s for s in asked.unsafe if s.verdict == "duplicate")
    assert schedule.attribution is not None
    assert schedule.attribution.party == "hazard"
    assert "TTL: 24 hours" in schedule.attribution.rule


@pytest.mark.idempotency(variant="phantom")
def test_a_restart_that_loses_the_records_is_a_hazard_not_a_client_bug(idempotent_api):
    report = idempotent_api.explore(
        retrying(idempotent_api),
        max_faults=2,
        faults=("drop", "restart_records_lost"),
        hazards=True,
    )

    assert _verdicts(report)[("drop", "restart_records_lost")] == "duplicate"
    for schedule in report.unsafe:
        assert schedule.attribution is not None
        assert schedule.attribution.party == "hazard"
    report.assert_safe(allow=("hazard",))


@pytest.mark.idempotency(variant="moda")
def test_a_retry_of_moda_brand_kits_is_a_duplicate_quoting_the_page(idempotent_api):
    def operation() -> Any:
        for _ in range(3):
            try:
                response = requests.post(
                    idempotent_api.url_for("/v1/brand-kits"),
                    json={"url": "https://example.com"},
                    headers=idempotent_api.headers(),
                    timeout=TIMEOUT,
                )
                if response.status_code < 500:
                    return response.json()
            except requests.ConnectionError:
                pass
        raise RuntimeError("gave up")

    report = idempotent_api.explore(operation, max_faults=1, faults=QUICK)

    assert _verdicts(report)[("drop",)] == "duplicate"
    duplicate = next(s for s in report.unsafe if s.faults[0].name == "drop")
    assert duplicate.attribution is not None
    assert duplicate.attribution.party == "client"
    assert "POST /v1/brand-kits, POST /v1/uploads) are not idempotent" in duplicate.attribution.rule


def _moda_task(api, key: str, *, timeout: float = TIMEOUT) -> Any:
    body = {
        "prompt": "Weekly focus-time deck",
        "format": {"category": "slides", "width": 1920, "height": 1080},
        "idempotency_key": key,
    }
    for _ in range(3):
        try:
            response = requests.post(
                api.url_for("/v1/tasks"), json=body, headers=api.headers(), timeout=timeout
            )
            if response.status_code < 500 and response.status_code != 409:
                response.raise_for_status()
                return response.json()
        except requests.RequestException:
            pass
    raise RuntimeError("gave up")


@pytest.mark.idempotency(variant="moda")
def test_a_key_minted_per_invocation_duplicates_after_a_worker_crash(idempotent_api):
    report = idempotent_api.explore(
        lambda: _moda_task(idempotent_api, f"weekly-deck:{uuid.uuid4()}"),
        max_faults=1,
        restarts=True,
        faults=QUICK,
    )

    crashed = [s for s in report.schedules if [f.name for f in s.faults] == ["crash"]]
    assert [s.verdict for s in crashed] == ["duplicate"]
    assert crashed[0].attribution is not None
    assert "restarted invocation minted a new key" in crashed[0].attribution.rule
    assert "crash_after(idempotent_api, operation, seq=1)" in crashed[0].reproducer


@pytest.mark.idempotency(variant="moda")
def test_a_key_derived_from_the_logical_operation_survives_a_worker_crash(idempotent_api):
    report = idempotent_api.explore(
        lambda: _moda_task(idempotent_api, "weekly-deck:2026-W17"),
        max_faults=1,
        restarts=True,
        faults=QUICK,
    )

    crashed = [s for s in report.schedules if [f.name for f in s.faults] == ["crash"]]
    assert [s.verdict for s in crashed] == ["safe"]
    assert len(crashed[0].side_effects) == 1
    assert [e.decision for e in crashed[0].journal.exchanges] == ["new", "replayed"]
    for schedule in report.unsafe:  # only Moda's chosen rule: a 5xx is not stored
        assert [f.name for f in schedule.faults] == ["error_after_500"]
    report.assert_safe(allow=("provider",))


# -- correct clients are not accused ---------------------------------------------------------


@pytest.mark.idempotency(variant="phantom")
def test_a_correct_client_against_phantom_meets_only_its_documented_5xx_hazard(idempotent_api):
    # Two faults per schedule, among the ones that cost no client timeout.
    report = idempotent_api.explore(retrying(idempotent_api), max_faults=2, faults=QUICK)

    assert report.executed == report.generated > 25
    for schedule in report.unsafe:
        assert schedule.verdict == "duplicate"
        assert schedule.attribution is not None
        assert schedule.attribution.party == "provider"
        assert "5xx (server error) No" in schedule.attribution.rule
        assert "error_after_500" in [f.name for f in schedule.faults]
    assert report.unsafe
    report.assert_safe(allow=("provider",))


@pytest.mark.idempotency(variant="phantom")
def test_a_correct_client_survives_every_single_fault_of_the_menu(idempotent_api):
    report = idempotent_api.explore(retrying(idempotent_api, timeout=SHORT), max_faults=1)

    assert {f.name for s in report.schedules for f in s.faults} >= {"late", "in_flight"}
    assert {s.attribution.party for s in report.unsafe if s.attribution} == {"provider"}
    report.assert_safe(allow=("provider",))


@pytest.mark.idempotency(variant="stripe")
def test_stripe_python_against_stripe_is_not_accused(idempotent_api):
    client = stripe.StripeClient(
        "sk_test_123",
        base_addresses={"api": idempotent_api.url},
        max_network_retries=3,
        http_client=stripe.RequestsClient(timeout=SHORT),
    )

    report = idempotent_api.explore(
        lambda: client.v1.customers.create(params={"email": "jenny@example.com"}), max_faults=1
    )

    assert report.executed > 5
    # Never a double. Two schedules leave the caller told "failed" after the customer was
    # created: stripe-python (sync) does not retry a truncated body, and Stripe replays a
    # saved 500 to every retry (its documented rule, attributed to it).
    unsafe = {tuple(f.name for f in s.faults): s for s in report.unsafe}
    assert set(unsafe) == {("garbage",), ("error_after_500",)}
    assert {s.verdict for s in unsafe.values()} == {"ambiguous"}
    saved = unsafe[("error_after_500",)].attribution
    assert saved is not None
    assert saved.party == "provider"
    assert "including 500 errors" in saved.rule
    report.assert_safe(allow=("ambiguous",))


@pytest.mark.idempotency(variant="phantom")
def test_the_stainless_sdk_against_phantom_meets_only_phantoms_documented_hazard(idempotent_api):
    client = orb.Orb(
        api_key=idempotent_api.credential,
        base_url=idempotent_api.url,
        max_retries=3,
        timeout=SHORT,
    )

    def operation() -> Any:
        return client.post(ADJUST, body={"user_id": "123", "delta": 500}, cast_to=httpx.Response)

    report = idempotent_api.explore(operation, max_faults=1)

    assert report.executed > 5
    kinds = {tuple(f.name for f in s.faults) for s in report.unsafe}
    assert kinds == {("error_after_500",)}
    for schedule in report.unsafe:
        assert schedule.attribution is not None
        assert schedule.attribution.party == "provider"
    report.assert_safe(allow=("provider",))


# -- async, determinism, budget, sleeps ------------------------------------------------------


@pytest.mark.idempotency(variant="phantom")
def test_an_async_client_is_explored_like_a_sync_one(idempotent_api):
    async def operation() -> Any:
        key = str(uuid.uuid4())
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            for attempt in range(3):
                try:
                    response = await client.post(
                        idempotent_api.url_for(ADJUST),
                        json={"user_id": "123", "delta": 500},
                        headers=idempotent_api.headers(key),
                    )
                    if response.status_code < 500 and response.status_code != 409:
                        return response.json()
                except httpx.TransportError:
                    pass
                import asyncio

                await asyncio.sleep(2**attempt)
        raise RuntimeError("gave up")

    report = idempotent_api.explore(operation, max_faults=1, faults=QUICK)

    assert _verdicts(report)[("drop",)] == "safe"
    assert {s.attribution.party for s in report.unsafe if s.attribution} <= {"provider"}
    assert max(s.slept for s in report.schedules) >= 1  # the backoff ran on the fake clock


@pytest.mark.idempotency(variant="moda")
def test_an_async_client_crashed_by_cancellation_is_invoked_again(idempotent_api):
    async def operation() -> Any:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.post(
                idempotent_api.url_for("/v1/tasks"),
                json={
                    "prompt": "Weekly focus-time deck",
                    "format": {"category": "slides", "width": 1920, "height": 1080},
                    "idempotency_key": f"deck:{uuid.uuid4()}",
                },
                headers=idempotent_api.headers(),
            )
            return response.json()

    report = idempotent_api.explore(operation, max_faults=1, restarts=True, faults=("reset",))

    crashed = next(s for s in report.schedules if [f.name for f in s.faults] == ["crash"])
    assert crashed.verdict == "duplicate"
    assert len(crashed.journal.exchanges) == 2


@pytest.mark.idempotency(variant="phantom")
def test_the_same_operation_explores_the_same_schedules_in_the_same_order(idempotent_api):
    operation = retrying(idempotent_api, new_key_per_retry=True)

    first = idempotent_api.explore(operation, max_faults=2, faults=QUICK)
    second = idempotent_api.explore(operation, max_faults=2, faults=QUICK)

    assert [(s.faults, s.verdict) for s in first.schedules] == [
        (s.faults, s.verdict) for s in second.schedules
    ]
    assert first.schedules[0].faults == ()
    assert [len(s.faults) for s in first.schedules] == sorted(
        len(s.faults) for s in first.schedules
    )


@pytest.mark.idempotency(variant="phantom")
def test_in_flight_schedules_do_not_depend_on_which_side_is_faster(idempotent_api):
    operation = retrying(idempotent_api, timeout=0.5)

    runs = [
        idempotent_api.explore(operation, max_faults=2, faults=("in_flight", "error_after_500"))
        for _ in range(2)
    ]

    first, second = (
        [(s.faults, s.verdict, [e.decision for e in s.journal.exchanges]) for s in r.schedules]
        for r in runs
    )
    assert first == second
    held = next(s for s in runs[0].schedules if [f.name for f in s.faults] == ["in_flight"])
    assert [e.decision for e in held.journal.exchanges] == ["new", "in_flight", "replayed"]
    assert "in_flight(idempotent_api, seq=1, attempt=1" in held.reproducer


@pytest.mark.idempotency(variant="phantom")
def test_a_budget_samples_the_schedules_from_the_seed(idempotent_api):
    operation = retrying(idempotent_api)

    one = idempotent_api.explore(operation, max_faults=2, budget=12, seed=7, faults=QUICK)
    again = idempotent_api.explore(operation, max_faults=2, budget=12, seed=7, faults=QUICK)
    other = idempotent_api.explore(operation, max_faults=2, budget=12, seed=8, faults=QUICK)

    assert one.executed == 12
    assert one.generated > 12
    assert one.pruned == one.generated - 12
    assert [s.faults for s in one.schedules] == [s.faults for s in again.schedules]
    assert [s.faults for s in one.schedules] != [s.faults for s in other.schedules]
    assert one.schedules[0].faults == ()
    assert "sampled with seed 7" in one.summary()


@pytest.mark.idempotency(variant="moda", assert_all_bodies_were_valid=False)
def test_a_schedule_whose_fault_never_fired_is_pruned_not_extended(idempotent_api):
    def operation() -> Any:
        # Moda validates before the idempotency layer: the first body (422) never reaches the
        # wire point, so a lost response planned there never acts (and no 500 after a side
        # effect is planned there: its handler never ran).
        requests.post(
            idempotent_api.url_for("/v1/tasks"),
            json={"prompt": 1},
            headers=idempotent_api.headers(),
            timeout=TIMEOUT,
        )
        return _moda_task(idempotent_api, "weekly-deck:2026-W17")

    report = idempotent_api.explore(operation, max_faults=2, faults=("error_after_500", "drop"))

    never = [s for s in report.schedules if s.unfired]
    assert [[(f.seq, f.name) for f in s.faults] for s in never] == [[(1, "drop")]]
    assert all(s.verdict == "safe" for s in never)
    extended = [s.faults for s in report.schedules if s.faults[:1] == never[0].faults]
    assert extended == [never[0].faults]  # no child of the schedule whose fault never acted
    assert report.pruned > 0
    assert report.generated == report.executed + report.pruned
    for schedule in report.schedules:
        positions = [f.seq for f in schedule.faults]
        assert positions == sorted(set(positions))  # one fault per request, in request order


@pytest.mark.idempotency(variant="phantom")
def test_sleeps_advance_the_fake_clock_only_inside_the_run(idempotent_api):
    seen: list[float] = []

    def operation() -> Any:
        before = idempotent_api.clock.now()
        time.sleep(3600)
        seen.append(idempotent_api.clock.now() - before)
        return _adjust(idempotent_api, "k1").json()

    real_sleep = time.sleep
    started = time.monotonic()
    report = idempotent_api.explore(operation, max_faults=0)

    assert time.monotonic() - started < 3600
    assert seen[0] >= 3600
    assert report.schedules[0].slept == 3600
    assert time.sleep is real_sleep


@pytest.mark.idempotency(variant="phantom")
def test_patch_sleep_false_leaves_sleeps_real(idempotent_api):
    offsets: list[float] = []

    def operation() -> Any:
        time.sleep(0.01)
        offsets.append(idempotent_api.clock.offset)
        return _adjust(idempotent_api, "k1").json()

    report = idempotent_api.explore(operation, max_faults=0, patch_sleep=False)

    assert offsets == [0.0]
    assert report.schedules[0].slept == 0


# -- the report ------------------------------------------------------------------------------


@pytest.mark.idempotency(variant="phantom")
def test_assert_safe_lists_unsafe_schedules_with_the_first_timeline_and_reproducer(
    idempotent_api,
):
    report = idempotent_api.explore(
        retrying(idempotent_api, new_key_per_retry=True), max_faults=2, faults=QUICK
    )

    with pytest.raises(AssertionError) as caught:
        report.assert_safe()

    text = str(caught.value)
    assert "unsafe schedule(s)" in text
    assert "First: schedule " in text
    assert "decision" in text  # the timeline's header
    assert "idempotent_api.faults.add('drop', seq=1)" in text
    assert "def test_explored_schedule_" in text
    assert report.unsafe == sorted(report.unsafe, key=lambda s: (len(s.faults), s.index))


@pytest.mark.idempotency(variant="phantom", ttl=60)
def test_the_reproducer_carries_policy_overrides_and_scripts_faults_by_position(idempotent_api):
    report = idempotent_api.explore(
        retrying(idempotent_api, new_key_per_retry=True), max_faults=1, faults=QUICK
    )

    text = next(s for s in report.unsafe if s.faults[0].name == "drop").reproducer

    assert "@pytest.mark.idempotency(variant='phantom', ttl=60)" in text
    assert "idempotent_api.faults.add('drop', seq=1)" in text
    assert "with fake_sleep(idempotent_api.clock):" in text
    assert "idempotent_api.assert_side_effects(1)" in text
    compile(text, "reproducer.py", "exec")


def test_planned_faults_compare_by_position_and_name_only():
    one = PlannedFault(1, "drop", 1, "POST", "/x", "key-a")
    other = PlannedFault(1, "drop", 1, "POST", "/x", "key-b")
    assert one == other
    assert hash(one) == hash(other)
    assert one.describe() == "drop at #1 (POST /x, attempt 1)"


# -- bad input gets a clear error ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"operation": 42}, "zero-argument callable"),
        ({"max_faults": -1}, "max_faults must be a whole number"),
        ({"run_timeout": 0}, "run_timeout must be seconds > 0"),
        ({"budget": 0}, "budget must be a whole number"),
        ({"budget": True}, "budget must be a whole number"),
        ({"hazards": ("meteor",)}, "unknown hazard"),
        ({"faults": ("meteor",)}, "unknown fault"),
    ],
)
def test_bad_arguments_name_the_fix(idempotent_api, kwargs, message):
    operation = kwargs.pop("operation", lambda: None)
    with pytest.raises(ExplorationError, match=message):
        idempotent_api.explore(operation, **kwargs)


def test_an_operation_that_sends_nothing_is_told_where_to_point(idempotent_api):
    with pytest.raises(ExplorationError, match=r"point its client at idempotent_api\.url"):
        idempotent_api.explore(lambda: None)


def test_an_operation_that_crashes_before_any_request_is_told_what_it_raised(idempotent_api):
    """It used to be told to point its client at the URL, its own error hidden."""

    def operation() -> Any:
        raise ValueError("my bug")

    with pytest.raises(ExplorationError, match="the operation raised ValueError: my bug") as e:
        idempotent_api.explore(operation)
    assert isinstance(e.value.__cause__, ValueError)
    with pytest.raises(ExplorationError, match="raised TypeError"):
        idempotent_api.explore(lambda needed: None)  # type: ignore[misc]


@pytest.mark.idempotency(variant="phantom")
def test_an_operation_that_raises_is_an_outcome_not_an_error(idempotent_api):
    def operation() -> Any:
        _adjust(idempotent_api, "k1")
        raise KeyError("the client's own bug")

    report = idempotent_api.explore(operation, max_faults=0)

    assert report.schedules[0].verdict == "ambiguous"
    assert isinstance(report.schedules[0].raised, KeyError)


@pytest.mark.idempotency(variant="phantom", assert_all_requests_were_expected=False)
def test_unexpected_requests_during_exploration_reach_the_teardown_checks(idempotent_api):
    def operation() -> Any:
        requests.post(idempotent_api.url_for("/api/v1/nope"), json={}, timeout=TIMEOUT)
        return _adjust(idempotent_api, "k1").json()

    idempotent_api.explore(operation, max_faults=1, faults=("reset",))

    problems = idempotent_api.journal.problems
    assert len(problems) == 1
    category, text = problems[0]
    assert category == "unexpected"
    assert text.startswith("during exploration: no route of variant 'phantom' matches")


def test_a_custom_variant_is_explored_with_its_own_rules(idempotent_api):
    from pytest_idempotency import Policy, Route, Variant, default_create_handler

    team = Variant(
        name="team-orders",
        policy=Policy(key_header="X-Request-Key", keyed_routes=("POST /orders",), cache_5xx=True),
        routes=(Route("POST /orders", default_create_handler("order", "ord")),),
    )
    idempotent_api.reset(team)

    def operation() -> Any:
        key = str(uuid.uuid4())
        for _ in range(3):
            try:
                response = requests.post(
                    idempotent_api.url_for("/orders"),
                    json={"sku": "A-1"},
                    headers={"X-Request-Key": key},
                    timeout=TIMEOUT,
                )
                if response.status_code < 500:
                    return response.json()
            except requests.RequestException:
                pass
        raise RuntimeError("gave up")

    report = idempotent_api.explore(operation, max_faults=1, faults=QUICK)

    assert report.variant == "team-orders"
    # cache_5xx=True: the 500 after the order was created is replayed to every retry.
    saved = next(s for s in report.unsafe if [f.name for f in s.faults] == ["error_after_500"])
    assert saved.verdict == "ambiguous"
    assert saved.attribution is not None
    assert saved.attribution.party == "provider"
    assert "variant='team-orders'" in saved.reproducer
    report.assert_safe(allow=("provider",))
