"""Every fault kind, seen through real clients (requests, httpx, httpx.AsyncClient), and what the
journal says the server committed.

Each test scripts one fault, lets a real client meet it on a real socket, checks the failure the
client sees, reads the journal (``committed``, ``wire``, ``decision``, side effects), then retries
with the same key to show what the commit means for the retry. Nothing sleeps: held and slow
requests are released by hand, and the journal is awaited, not polled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests

from pytest_idempotency import (
    Fault,
    FaultError,
    FaultPlan,
    HandlerContext,
    IdempotentAPI,
    Reply,
    Route,
    get_variant,
)

PATH = "/v1/things"
BODY = {"name": "lamp"}
KEY = "order-42"
CLIENTS = ["requests", "httpx"]

Response = requests.Response | httpx.Response


def causes(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and exceptions carried in their ``args``."""
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
    return found


class Sender:
    """One POST at a time by a ``requests.Session`` or an ``httpx.Client`` kept for the test
    (connections are reused as in real code). Returns the response, or the exception the
    client raised."""

    def __init__(self, api: IdempotentAPI, client: str) -> None:
        self.api = api
        self.client = client
        self.session: requests.Session | httpx.Client = (
            requests.Session() if client == "requests" else httpx.Client()
        )

    def __call__(
        self, key: str | None, *, timeout: float = 2.0, body: Any = BODY, path: str = PATH
    ) -> Response | Exception:
        kwargs = self.api.request_kwargs(body, key=key)
        try:
            return self.session.post(self.api.url_for(path), timeout=timeout, **kwargs)
        except (requests.RequestException, httpx.HTTPError) as exc:
            return exc


@pytest.fixture(params=CLIENTS)
def send(request: pytest.FixtureRequest, idempotent_api: IdempotentAPI) -> Iterator[Sender]:
    """``send(key, timeout=2.0, body=BODY, path=PATH)`` through requests, then httpx."""
    sender = Sender(idempotent_api, request.param)
    with sender.session:
        yield sender


async def send_async(
    api: IdempotentAPI,
    client: httpx.AsyncClient,
    key: str | None,
    *,
    body: Any = BODY,
    path: str = PATH,
) -> httpx.Response | httpx.HTTPError:
    try:
        return await client.post(api.url_for(path), **api.request_kwargs(body, key=key))
    except httpx.HTTPError as exc:
        return exc


def status_of(result: Response | Exception) -> int:
    assert isinstance(result, (requests.Response, httpx.Response)), result
    return result.status_code


def only_effect_id(api: IdempotentAPI) -> str | None:
    effects = api.side_effects
    assert len(effects) == 1, api.timeline()
    return effects[0].resource_id


# -- faults the client sees as a broken connection ---------------------------------------------


@dataclass(frozen=True)
class WireFault:
    name: str
    script: Callable[[FaultPlan], Fault]
    kind: str
    #: requests: the exception type and the low-level cause found in its chain.
    requests_error: tuple[type[Exception], type[BaseException]]
    httpx_error: type[httpx.HTTPError]
    wire: str
    committed: bool
    #: What the same-key retry gets.
    retry_decision: str


WIRE_FAULTS = [
    WireFault(
        "lost_response",
        lambda f: f.drop_response(),
        "drop",
        (requests.ConnectionError, http.client.RemoteDisconnected),
        httpx.RemoteProtocolError,
        "dropped",
        True,
        "replayed",
    ),
    WireFault(
        "connection_reset",
        lambda f: f.reset_connection(),
        "reset",
        (requests.ConnectionError, ConnectionResetError),
        httpx.ReadError,
        "reset",
        False,
        "new",
    ),
    WireFault(
        "garbage_truncated",
        lambda f: f.garbage(style="truncated"),
        "garbage",
        (requests.exceptions.ChunkedEncodingError, http.client.IncompleteRead),
        httpx.RemoteProtocolError,
        "garbage",
        True,
        "replayed",
    ),
    WireFault(
        "garbage_status_line",
        lambda f: f.garbage(style="status_line"),
        "garbage",
        (requests.ConnectionError, http.client.BadStatusLine),
        httpx.RemoteProtocolError,
        "garbage",
        True,
        "replayed",
    ),
    WireFault(
        "restart",
        lambda f: f.restart(),
        "restart",
        (requests.ConnectionError, ConnectionResetError),
        httpx.ReadError,
        "reset",
        False,
        "new",
    ),
]


def assert_struck(api: IdempotentAPI, spec: WireFault) -> None:
    """The journal says what went out on the wire and whether the server committed."""
    (struck,) = api.exchanges
    assert (struck.fault, struck.wire, struck.committed) == (spec.kind, spec.wire, spec.committed)
    if spec.committed:
        assert (struck.decision, struck.status, len(struck.side_effects)) == ("new", 201, 1)
    else:
        assert (struck.decision, struck.status, struck.side_effects) == (None, None, [])


def assert_retry_outcome(api: IdempotentAPI, spec: WireFault, retry: Any) -> None:
    assert isinstance(retry, (requests.Response, httpx.Response)), retry
    assert retry.status_code == 201
    assert api.exchanges[1].decision == spec.retry_decision
    api.assert_exactly_once(key=KEY)
    # The retry hands back the one object the server created, whichever attempt created it.
    assert retry.json()["id"] == only_effect_id(api)


@pytest.mark.parametrize("spec", WIRE_FAULTS, ids=lambda s: s.name)
def test_wire_fault_is_seen_by_the_sync_client_and_journaled(
    idempotent_api: IdempotentAPI, send: Sender, spec: WireFault
) -> None:
    spec.script(idempotent_api.faults)

    failed = send(KEY)

    if send.client == "requests":
        error, cause = spec.requests_error
        assert isinstance(failed, error), failed
        assert any(isinstance(e, cause) for e in causes(failed)), causes(failed)
    else:
        assert isinstance(failed, spec.httpx_error), failed
    assert_struck(idempotent_api, spec)
    assert_retry_outcome(idempotent_api, spec, send(KEY))


@pytest.mark.asyncio
@pytest.mark.parametrize("spec", WIRE_FAULTS, ids=lambda s: s.name)
async def test_wire_fault_is_seen_by_the_async_client_and_journaled(
    idempotent_api: IdempotentAPI, spec: WireFault
) -> None:
    spec.script(idempotent_api.faults)
    async with httpx.AsyncClient(timeout=2.0) as client:
        failed = await send_async(idempotent_api, client, KEY)
        assert isinstance(failed, spec.httpx_error), failed
        assert_struck(idempotent_api, spec)
        retry = await send_async(idempotent_api, client, KEY)
    assert_retry_outcome(idempotent_api, spec, retry)


# -- slow response -----------------------------------------------------------------------------


def test_slow_response_fires_the_read_timeout_after_the_commit(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    fault = idempotent_api.faults.slow_response(seconds=None)  # held until release()

    timed_out = send(KEY, timeout=0.2)

    assert isinstance(timed_out, (requests.exceptions.ReadTimeout, httpx.ReadTimeout)), timed_out
    slow = idempotent_api.journal[0]
    assert slow.finished.wait(5.0)
    assert (slow.fault, slow.wire, slow.decision, slow.committed) == ("slow", "late", "new", True)
    retry = send(KEY)
    assert isinstance(retry, (requests.Response, httpx.Response)), retry
    assert retry.status_code == 201
    idempotent_api.assert_replayed(seq=2)
    assert retry.json()["id"] == only_effect_id(idempotent_api)
    fault.release()


@pytest.mark.asyncio
async def test_slow_response_fires_the_async_read_timeout_after_the_commit(
    idempotent_api: IdempotentAPI,
) -> None:
    fault = idempotent_api.faults.slow_response(seconds=None)
    async with httpx.AsyncClient(timeout=0.2) as client:
        timed_out = await send_async(idempotent_api, client, KEY)
    assert isinstance(timed_out, httpx.ReadTimeout), timed_out
    slow = idempotent_api.journal[0]
    assert await asyncio.to_thread(slow.finished.wait, 5.0)
    assert (slow.wire, slow.committed) == ("late", True)
    async with httpx.AsyncClient(timeout=2.0) as client:
        retry = await send_async(idempotent_api, client, KEY)
    assert isinstance(retry, httpx.Response)
    assert retry.status_code == 201
    idempotent_api.assert_replayed(seq=2)
    idempotent_api.assert_exactly_once()
    fault.release()


def test_slow_response_with_seconds_answers_late_on_its_own(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    idempotent_api.faults.slow_response(seconds=0.05)

    late = send(KEY, timeout=2.0)

    assert isinstance(late, (requests.Response, httpx.Response)), late
    assert late.status_code == 201
    assert (idempotent_api.journal[0].wire, idempotent_api.journal[0].committed) == ("late", True)


# -- errors before and after the commit --------------------------------------------------------


def test_error_before_commit_answers_status_and_retry_after_without_running(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    idempotent_api.faults.error_before_commit(503, retry_after=1)

    refused = send(KEY)

    assert isinstance(refused, (requests.Response, httpx.Response)), refused
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["error"]["code"] == "injected_fault"
    (first,) = idempotent_api.exchanges
    assert (first.fault, first.decision, first.committed, first.wire) == (
        "error_before",
        None,
        False,
        "response",
    )
    assert idempotent_api.side_effects == []
    retry = send(KEY)
    assert isinstance(retry, (requests.Response, httpx.Response))
    assert retry.status_code == 201
    idempotent_api.assert_fresh(seq=2)
    idempotent_api.assert_exactly_once()


def test_error_after_commit_is_a_5xx_after_the_side_effect_and_is_not_cached(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    idempotent_api.faults.error_after_commit(500)

    failed = send(KEY)

    assert isinstance(failed, (requests.Response, httpx.Response)), failed
    assert failed.status_code == 500
    first = idempotent_api.journal[0]
    assert (first.fault, first.decision, first.committed, first.status) == (
        "error_after",
        "new",
        True,
        500,
    )
    assert len(first.side_effects) == 1
    # generic caches 2xx and 4xx, not 5xx: the same-key retry runs the handler again.
    retry = send(KEY)
    assert isinstance(retry, (requests.Response, httpx.Response))
    assert retry.status_code == 201
    idempotent_api.assert_fresh(seq=2)
    idempotent_api.assert_side_effects(2, key=KEY)
    with pytest.raises(AssertionError, match="share one key"):
        idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(cache_5xx=True)
def test_error_after_commit_is_replayed_where_the_policy_caches_5xx(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    idempotent_api.faults.error_after_commit(502)

    failed = send(KEY)
    retry = send(KEY)

    assert isinstance(failed, (requests.Response, httpx.Response)), failed
    assert isinstance(retry, (requests.Response, httpx.Response)), retry
    assert (failed.status_code, retry.status_code) == (502, 502)
    assert retry.content == failed.content
    idempotent_api.assert_replayed(seq=2)
    idempotent_api.assert_exactly_once()


@pytest.mark.asyncio
async def test_errors_before_and_after_commit_reach_the_async_client(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.error_before_commit(503, retry_after=1, key="before")
    idempotent_api.faults.error_after_commit(500, key="after")
    async with httpx.AsyncClient(timeout=2.0) as client:
        before = await send_async(idempotent_api, client, "before")
        after = await send_async(idempotent_api, client, "after")
    assert isinstance(before, httpx.Response)
    assert isinstance(after, httpx.Response)
    assert (before.status_code, before.headers["Retry-After"]) == (503, "1")
    assert after.status_code == 500
    by_key = {e.key: e for e in idempotent_api.exchanges}
    assert (by_key["before"].committed, by_key["before"].side_effects) == (False, [])
    assert by_key["after"].committed
    idempotent_api.assert_exactly_once(key="after")


# -- hold in flight ----------------------------------------------------------------------------


def test_hold_meets_the_duplicate_with_the_in_flight_answer(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    fault = idempotent_api.faults.hold()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(send, KEY)
        fault.wait_until_held()
        held = idempotent_api.journal[0]
        assert not held.finished.is_set()
        assert idempotent_api.side_effects == []  # claimed, the handler has not run

        duplicate = send(KEY)

        assert isinstance(duplicate, (requests.Response, httpx.Response)), duplicate
        assert duplicate.status_code == 409
        assert duplicate.json()["error"]["code"] == "idempotency_key_in_use"
        dup = idempotent_api.journal[1]
        assert (dup.decision, dup.committed, dup.replay_of) == ("in_flight", False, 1)
        fault.release()
        original = first.result(timeout=5)
    assert isinstance(original, (requests.Response, httpx.Response)), original
    assert original.status_code == 201
    assert (held.decision, held.committed) == ("new", True)
    assert len(idempotent_api.journal) == 2  # the client did not retry the 409 by itself
    idempotent_api.assert_exactly_once()


@pytest.mark.asyncio
async def test_hold_meets_the_async_duplicate_with_the_in_flight_answer(
    idempotent_api: IdempotentAPI,
) -> None:
    fault = idempotent_api.faults.hold()
    async with httpx.AsyncClient(timeout=5.0) as client:
        first = asyncio.ensure_future(send_async(idempotent_api, client, KEY))
        await asyncio.to_thread(fault.wait_until_held)
        duplicate = await send_async(idempotent_api, client, KEY)
        assert isinstance(duplicate, httpx.Response), duplicate
        assert duplicate.status_code == 409
        assert idempotent_api.journal[1].decision == "in_flight"
        assert idempotent_api.side_effects == []
        fault.release()
        original = await first
    assert isinstance(original, httpx.Response), original
    assert original.status_code == 201
    assert idempotent_api.journal[0].committed
    idempotent_api.assert_exactly_once()


def in_flight_race(api: IdempotentAPI) -> None:
    """Hold the first request, send a duplicate, check the variant's answer, release, check the
    outcome. Deterministic: the hold is awaited, never slept on."""
    method, url, params = api.example()
    kwargs = api.request_kwargs(params, key="in-flight-race-key-0001")
    in_flight_status = api.contract.in_flight_status
    policy = api.policy
    provisional = policy.on_in_flight == "provisional" and policy.consults(
        method, url.removeprefix(api.url)
    )
    fault = api.faults.hold()
    with (
        httpx.Client(timeout=5.0) as c1,
        httpx.Client(timeout=5.0) as c2,
        ThreadPoolExecutor(2) as pool,
    ):
        first = pool.submit(c1.request, method, url, **kwargs)
        fault.wait_until_held()
        if in_flight_status is not None:
            duplicate = c2.request(method, url, **kwargs)
            assert duplicate.status_code == in_flight_status, duplicate.text
            dup = api.journal[1]
            assert (dup.decision, dup.committed, dup.side_effects) == ("in_flight", False, [])
            fault.release()
            original = first.result(timeout=5)
            retry = c2.request(method, url, **kwargs)
            assert (retry.status_code, retry.content) == (original.status_code, original.content)
            api.assert_replayed(seq=3)
        elif provisional:  # Whet: the duplicate answers at once with the original's ids
            duplicate = c2.request(method, url, **kwargs)
            fault.release()
            original = first.result(timeout=5)
            assert (duplicate.status_code, duplicate.content) == (
                original.status_code,
                original.content,
            )
            assert (api.journal[1].decision, api.journal[1].replay_of) == ("replayed", 1)
        else:  # the variant waits: the duplicate blocks until the original is done
            waiting = pool.submit(c2.request, method, url, **kwargs)
            api.journal.wait_for(
                lambda j: len(j) >= 2 and j[1].attempt is not None,
                what="the duplicate to reach the idempotency layer",
            )
            assert not waiting.done()
            assert not api.journal[1].finished.is_set()
            fault.release()
            original = first.result(timeout=5)
            duplicate = waiting.result(timeout=5)
            assert (duplicate.status_code, duplicate.content) == (
                original.status_code,
                original.content,
            )
            assert (api.journal[1].decision, api.journal[1].replay_of) == ("replayed", 1)
    assert original.is_success, original.text
    assert api.journal[0].committed
    assert api.side_effects
    assert {s.exchange_seq for s in api.side_effects} == {1}  # only the original executed


@pytest.mark.idempotency(variants="all")
def test_in_flight_duplicate_gets_the_variants_answer(idempotent_api: IdempotentAPI) -> None:
    in_flight_race(idempotent_api)


@pytest.mark.idempotency(on_in_flight="wait")
def test_in_flight_duplicate_waits_where_the_policy_says_wait(
    idempotent_api: IdempotentAPI,
) -> None:
    assert idempotent_api.contract.in_flight_status is None
    in_flight_race(idempotent_api)


# -- partial batch -----------------------------------------------------------------------------


def _publish_batch(ctx: HandlerContext) -> Reply:
    """A batch endpoint of a team's own API: publish to each target, unless the scripted
    partial-batch fault fails that target."""
    results: list[dict[str, Any]] = []
    for target in ctx.data["targets"]:
        failure = ctx.target_fails(target)
        if failure is None:
            post_id = ctx.resources.new_id("post")
            ctx.side_effect("post.published", "post", post_id, target=target)
            results.append({"target": target, "status": "published", "id": post_id})
        else:
            results.append({"target": target, "status": "failed", "error": failure})
    failed = any(r["status"] == "failed" for r in results)
    return Reply(207 if failed else 201, {"results": results})


_GENERIC = get_variant("generic")
BATCH_VARIANT = dataclasses.replace(
    _GENERIC,
    name="generic-batch",
    routes=(Route("POST /v1/batches", _publish_batch, name="batch"), *_GENERIC.routes),
)
BATCH = {"targets": ["acct_a", "acct_b", "acct_c"]}


@pytest.fixture
def batch_api(idempotent_api: IdempotentAPI) -> IdempotentAPI:
    """The generic policy plus a batch route."""
    idempotent_api.reset(BATCH_VARIANT)
    return idempotent_api


def assert_partial(api: IdempotentAPI, envelope: dict[str, Any]) -> None:
    statuses = {r["target"]: r["status"] for r in envelope["results"]}
    assert statuses == {"acct_a": "published", "acct_b": "failed", "acct_c": "published"}
    assert envelope["results"][1]["error"] == "transient"
    first = api.journal[0]
    assert (first.fault, first.decision, first.committed) == ("partial_batch", "new", True)
    assert sorted(s.detail["target"] for s in api.side_effects) == ["acct_a", "acct_c"]


def test_partial_batch_commits_the_other_targets(batch_api: IdempotentAPI, send: Sender) -> None:
    batch_api.faults.partial_batch({"acct_b": "transient"})

    mixed = send(KEY, body=BATCH, path="/v1/batches")
    retry = send(KEY, body=BATCH, path="/v1/batches")

    assert isinstance(mixed, (requests.Response, httpx.Response)), mixed
    assert isinstance(retry, (requests.Response, httpx.Response)), retry
    assert mixed.status_code == 207
    assert_partial(batch_api, mixed.json())
    # generic caches 2xx: the retry replays the mixed envelope verbatim, nothing re-publishes.
    assert (retry.status_code, retry.content) == (207, mixed.content)
    batch_api.assert_replayed(seq=2)
    batch_api.assert_side_effects(2)


@pytest.mark.asyncio
async def test_partial_batch_reaches_the_async_client(batch_api: IdempotentAPI) -> None:
    batch_api.faults.partial_batch({"acct_b": "transient"})
    async with httpx.AsyncClient(timeout=2.0) as client:
        mixed = await send_async(batch_api, client, KEY, body=BATCH, path="/v1/batches")
    assert isinstance(mixed, httpx.Response), mixed
    assert mixed.status_code == 207
    assert_partial(batch_api, mixed.json())


def test_partial_batch_wildcard_fails_every_target(batch_api: IdempotentAPI, send: Sender) -> None:
    batch_api.faults.partial_batch({"*": "permanent"})

    failed = send(KEY, body=BATCH, path="/v1/batches")

    assert isinstance(failed, (requests.Response, httpx.Response)), failed
    assert {r["error"] for r in failed.json()["results"]} == {"permanent"}
    assert batch_api.side_effects == []


# -- restart -----------------------------------------------------------------------------------


def assert_lost_in_restart(api: IdempotentAPI) -> None:
    lost = api.journal[0]
    assert lost.finished.wait(5.0)
    assert (lost.wire, lost.decision, lost.committed, lost.side_effects) == (
        "reset",
        None,
        False,
        [],
    )
    assert "restart" in lost.note


def test_restart_loses_the_held_request_and_its_claim(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    fault = idempotent_api.faults.hold()
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(send, KEY)
        fault.wait_until_held()
        idempotent_api.restart()
        lost = first.result(timeout=5)

    if send.client == "requests":
        assert isinstance(lost, requests.ConnectionError), lost
        assert any(isinstance(e, ConnectionResetError) for e in causes(lost)), causes(lost)
    else:
        assert isinstance(lost, httpx.ReadError), lost
    assert_lost_in_restart(idempotent_api)
    retry = send(KEY)  # the claim died with the restart: the retry runs
    assert isinstance(retry, (requests.Response, httpx.Response)), retry
    assert retry.status_code == 201
    idempotent_api.assert_fresh(seq=2)
    idempotent_api.assert_exactly_once()


@pytest.mark.asyncio
async def test_restart_loses_the_held_async_request(idempotent_api: IdempotentAPI) -> None:
    fault = idempotent_api.faults.hold()
    async with httpx.AsyncClient(timeout=5.0) as client:
        first = asyncio.ensure_future(send_async(idempotent_api, client, KEY))
        await asyncio.to_thread(fault.wait_until_held)
        idempotent_api.restart()
        lost = await first
        assert isinstance(lost, httpx.ReadError), lost
        assert_lost_in_restart(idempotent_api)
        retry = await send_async(idempotent_api, client, KEY)
    assert isinstance(retry, httpx.Response), retry
    assert retry.status_code == 201
    idempotent_api.assert_fresh(seq=2)
    idempotent_api.assert_exactly_once()


@pytest.mark.parametrize(("keep_records", "after_restart"), [(True, "replayed"), (False, "new")])
def test_restart_loses_a_slow_response_that_was_already_committed(
    idempotent_api: IdempotentAPI, send: Sender, keep_records: bool, after_restart: str
) -> None:
    idempotent_api.faults.slow_response(seconds=None)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(send, KEY)
        idempotent_api.wait_for_requests(1)
        slow = idempotent_api.journal[0]
        assert slow.finished.wait(5.0)  # committed; only its response is still to go out
        idempotent_api.restart(keep_records=keep_records)
        lost = first.result(timeout=5)

    assert isinstance(lost, (requests.ConnectionError, httpx.ReadError)), lost
    assert (slow.wire, slow.decision, slow.committed, len(slow.side_effects)) == (
        "reset",
        "new",
        True,
        1,
    )
    assert "lost in a server restart" in slow.note
    retry = send(KEY)
    assert status_of(retry) == 201
    assert idempotent_api.journal[1].decision == after_restart
    idempotent_api.assert_side_effects(1 if keep_records else 2, key=KEY)


@pytest.mark.parametrize(("keep_records", "after_restart"), [(True, "replayed"), (False, "new")])
@pytest.mark.parametrize("how", ["api", "fault"])
def test_restart_keeps_or_drops_completed_records(
    idempotent_api: IdempotentAPI,
    send: Sender,
    how: str,
    keep_records: bool,
    after_restart: str,
) -> None:
    done = send(KEY)
    assert isinstance(done, (requests.Response, httpx.Response)), done
    if how == "api":
        idempotent_api.restart(keep_records=keep_records)
    else:
        idempotent_api.faults.restart(keep_records=keep_records, key="trigger")
        triggered = send("trigger")
        assert isinstance(triggered, (requests.ConnectionError, httpx.ReadError)), triggered
        trigger = idempotent_api.journal[1]
        assert (trigger.fault, trigger.wire, trigger.committed) == ("restart", "reset", False)

    retry = send(KEY)

    assert isinstance(retry, (requests.Response, httpx.Response)), retry
    assert retry.status_code == 201
    assert idempotent_api.journal[-1].decision == after_restart
    idempotent_api.assert_side_effects(1 if keep_records else 2, key=KEY)
    assert (retry.content == done.content) is keep_records


# -- matching ----------------------------------------------------------------------------------


def test_queued_faults_fire_in_order(idempotent_api: IdempotentAPI, send: Sender) -> None:
    idempotent_api.faults.drop_response()
    idempotent_api.faults.error_before_commit(503)
    idempotent_api.faults.reset_connection()

    outcomes = [send(KEY) for _ in range(4)]

    assert [e.fault for e in idempotent_api.exchanges] == ["drop", "error_before", "reset", None]
    assert [e.committed for e in idempotent_api.exchanges] == [True, False, False, False]
    assert [e.decision for e in idempotent_api.exchanges] == ["new", None, None, "replayed"]
    last = outcomes[-1]
    assert isinstance(last, (requests.Response, httpx.Response)), last
    assert last.status_code == 201
    idempotent_api.assert_exactly_once()


def test_fault_matches_method_path_key_and_attempt(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    faults = idempotent_api.faults
    faults.error_before_commit(503, method="GET")
    faults.error_before_commit(502, path="/v1/other/*")
    faults.error_before_commit(504, key="k-special")
    faults.error_before_commit(429, key=KEY, attempt=2)

    statuses = [
        status_of(send(key, path=path))
        for key, path in [
            (KEY, PATH),  # attempt 1 of KEY: nothing matches
            ("k-special", PATH),  # key
            (KEY, PATH),  # attempt 2 of KEY
            ("k-3", "/v1/other/x"),  # path
            (KEY, PATH),  # attempt 3: replayed
        ]
    ]
    got = httpx.get(idempotent_api.url_for("/v1/things/x"), timeout=2.0)

    assert statuses == [201, 504, 429, 502, 201]
    assert got.status_code == 503
    assert [e.attempt for e in idempotent_api.journal.filter(key=KEY)] == [1, 2, 3]
    assert [e.fault for e in idempotent_api.journal.filter(key=KEY)] == [
        None,
        "error_before",
        None,
    ]


def test_times_counts_firings_and_none_fires_for_ever(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    twice = idempotent_api.faults.error_before_commit(503, key="twice", times=2)
    ever = idempotent_api.faults.error_before_commit(502, key="ever", times=None)

    twice_statuses = [status_of(send("twice")) for _ in range(3)]
    ever_statuses = [status_of(send("ever")) for _ in range(4)]

    assert twice_statuses == [503, 503, 201]
    assert ever_statuses == [502] * 4
    assert (twice.fired, ever.fired) == (2, 4)


def test_hold_parks_an_unkeyed_request_before_its_handler(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    fault = idempotent_api.faults.hold()

    with ThreadPoolExecutor(1) as pool:
        unkeyed = pool.submit(send, None)  # no key, nothing to claim: held before the handler
        fault.wait_until_held()
        assert idempotent_api.side_effects == []
        fault.release()
        assert status_of(unkeyed.result(timeout=5)) == 201

    assert idempotent_api.journal[0].decision == "no_key"
    assert len(idempotent_api.side_effects) == 1


def test_hold_says_why_it_held_nothing_when_it_matched_a_replay(
    idempotent_api: IdempotentAPI, send: Sender
) -> None:
    assert status_of(send("k")) == 201
    fault = idempotent_api.faults.hold()

    replay = send("k")  # answered from the record: no handler runs, nothing to hold

    assert status_of(replay) == 201
    assert idempotent_api.journal[1].fault == "hold"
    with pytest.raises(TimeoutError, match="a hold only parks a request that runs the handler"):
        fault.wait_until_held(timeout=0.05)


def test_fault_options_are_checked_with_a_fix_in_the_message(
    idempotent_api: IdempotentAPI,
) -> None:
    faults = idempotent_api.faults
    with pytest.raises(FaultError, match="unknown fault kind 'explode'; use one of"):
        faults.add("explode")
    with pytest.raises(FaultError, match="use a 5xx"):
        faults.error_after_commit(404)
    with pytest.raises(FaultError, match="'truncated' or 'status_line'"):
        faults.garbage(style="noise")
    with pytest.raises(FaultError, match="attempt counts from 1"):
        faults.drop_response(attempt=0)
    with pytest.raises(FaultError, match="must start with '/'"):
        faults.drop_response(path="v1/things")
    with pytest.raises(FaultError, match="unknown option"):
        faults.drop_response(status_code=500)
    assert faults.scripted == []


@pytest.mark.parametrize(
    ("script", "ignored", "used_by"),
    [
        (
            lambda f: f.drop_response(seconds=5),
            "seconds",
            "clock_jump, in_flight, late, latency, slow",
        ),
        (lambda f: f.hold(status=503), "status", "error_after, error_before"),
        (lambda f: f.reset_connection(style="status_line"), "style", "garbage"),
        (lambda f: f.add("drop", keep_records=False), "keep_records", "restart"),
        (lambda f: f.error_after_commit(503, seconds=2), "seconds", "clock_jump"),
        (lambda f: f.slow_response(1, failures={"*": "transient"}), "failures", "partial_batch"),
    ],
)
def test_an_option_the_fault_kind_would_ignore_is_refused_naming_what_it_takes(
    idempotent_api: IdempotentAPI, script: Any, ignored: str, used_by: str
) -> None:
    """``drop_response(seconds=5)`` was accepted and the seconds silently did nothing."""
    with pytest.raises(FaultError) as caught:
        script(idempotent_api.faults)
    message = str(caught.value)
    assert message.startswith(f"{ignored} would be ignored by the ")
    assert used_by in message
    assert "fault takes method, path, key, attempt, seq, times" in message
    assert idempotent_api.faults.scripted == []


def test_every_option_a_kind_takes_is_accepted(idempotent_api: IdempotentAPI) -> None:
    faults = idempotent_api.faults
    scripted = [
        faults.error_before_commit(503, retry_after=2, path="/v1/things", times=2),
        faults.error_after_commit(502, retry_after="1", key="k", attempt=1),
        faults.slow_response(seconds=0.01, method="POST", seq=3),
        faults.garbage(style="status_line"),
        faults.restart(keep_records=False, times=None),
        faults.partial_batch({"*": "transient"}),
        faults.add("latency", seconds=0.01, path="/v1/things"),
    ]
    assert [f.kind for f in faults.scripted] == [f.kind for f in scripted]
    faults.clear()
