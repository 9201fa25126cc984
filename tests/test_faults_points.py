"""Faults at named points of a request's life: the ``seq`` matcher, the in-flight, late,
clock-jump and latency kinds, two faults on one request, and the admin API's words for them.

Everything goes over a real socket with real clients (requests, httpx, raw sockets where the
test must close its end at a chosen moment). Nothing sleeps: parked requests are awaited with
``wait_until_held`` and the journal with ``wait_for``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import requests
from hardening_support import Standalone

from pytest_idempotency import (
    FAULT_KINDS,
    FAULT_POINTS,
    POINTS,
    FaultError,
    HandlerContext,
    IdempotentAPI,
    Reply,
    Route,
    get_variant,
)

PATH = "/v1/things"
BODY = {"name": "lamp"}


def post(api: IdempotentAPI, key: str | None, timeout: float = 5.0, **kw: Any) -> Any:
    """One POST of the generic create; the response, or the exception the client raised."""
    try:
        return requests.post(
            api.url_for(kw.pop("path", PATH)),
            timeout=timeout,
            **api.request_kwargs(kw.pop("body", BODY), key=key),
        )
    except requests.RequestException as exc:
        return exc


def raw_request(api: IdempotentAPI, key: str) -> socket.socket:
    """Send one keyed POST on a raw socket and return the socket, unread."""
    body = json.dumps(BODY).encode()
    head = [f"POST {PATH} HTTP/1.1", f"Host: 127.0.0.1:{api.server.port}"]
    head += [f"{k}: {v}" for k, v in api.headers(key).items()]
    head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    sock = socket.create_connection(("127.0.0.1", api.server.port), timeout=5)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return sock


# -- the map of points ------------------------------------------------------------------------


def test_every_fault_kind_acts_at_one_named_point() -> None:
    assert set(FAULT_POINTS) == set(FAULT_KINDS)
    assert set(FAULT_POINTS.values()) <= set(POINTS)
    assert FAULT_POINTS["reset"] == "before_layer"
    assert FAULT_POINTS["drop"] == "wire"
    assert FAULT_POINTS["error_after"] == "commit"
    assert FAULT_POINTS["in_flight"] == "claim"
    assert POINTS.index("before_layer") < POINTS.index("claim") < POINTS.index("wire")


def test_every_new_kind_is_a_fault_plan_method(idempotent_api: IdempotentAPI) -> None:
    faults = idempotent_api.faults
    made = [
        faults.in_flight(seq=1),
        faults.late_response(seq=2),
        faults.clock_jump(60, seq=3),
        faults.latency(0.0, seq=4),
    ]
    assert [(f.kind, f.point) for f in made] == [
        ("in_flight", "claim"),
        ("late", "wire"),
        ("clock_jump", "clock"),
        ("latency", "arrival"),
    ]
    assert (made[0].seconds, made[1].seconds) == (10.0, 10.0)
    assert faults.latency(0.1).times is None  # a delay on every request by default
    faults.clear()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"seq": 0}, "seq counts from 1"),
        ({"seq": "3"}, "seq counts from 1"),
        ({"seq": True}, "seq counts from 1"),
    ],
)
def test_a_bad_seq_is_refused_naming_the_fix(
    idempotent_api: IdempotentAPI, spec: dict[str, Any], words: str
) -> None:
    with pytest.raises(FaultError, match=words):
        idempotent_api.faults.add("drop", **spec)


@pytest.mark.parametrize("kind", ["clock_jump", "latency"])
def test_a_jump_or_delay_without_seconds_is_refused(
    idempotent_api: IdempotentAPI, kind: str
) -> None:
    with pytest.raises(FaultError, match="needs seconds=N"):
        idempotent_api.faults.add(kind)


# -- seq ----------------------------------------------------------------------------------------


def test_seq_hits_the_nth_request_since_the_last_reset(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.faults.drop_response(seq=3)

    outcomes = [post(idempotent_api, f"k{i}") for i in range(1, 5)]

    assert [e.wire for e in idempotent_api.exchanges] == [
        "response",
        "response",
        "dropped",
        "response",
    ]
    assert isinstance(outcomes[2], requests.ConnectionError)
    assert idempotent_api.journal[2].committed  # dropped after the commit

    idempotent_api.reset()
    idempotent_api.faults.drop_response(seq=1)
    assert isinstance(post(idempotent_api, "again"), requests.ConnectionError)


# -- in flight ----------------------------------------------------------------------------------


def test_in_flight_the_retry_meets_the_original_still_running(
    idempotent_api: IdempotentAPI,
) -> None:
    fault = idempotent_api.faults.in_flight(key="k", attempt=1)
    with ThreadPoolExecutor(1) as pool:
        original = pool.submit(post, idempotent_api, "k")
        fault.wait_until_held()
        assert idempotent_api.side_effects == []  # claimed, parked before the handler

        retry = post(idempotent_api, "k")

        assert retry.status_code == 409
        assert retry.json()["error"]["code"] == "idempotency_key_in_use"
        first = original.result(timeout=5)  # the retry was answered: the original goes on
    assert first.status_code == 201
    held, dup = idempotent_api.exchanges
    assert (held.decision, held.committed, held.fault) == ("new", True, "in_flight")
    assert (dup.decision, dup.replay_of) == ("in_flight", 1)
    idempotent_api.assert_exactly_once()


def test_in_flight_goes_on_when_the_client_closes_its_connection(
    idempotent_api: IdempotentAPI,
) -> None:
    fault = idempotent_api.faults.in_flight()
    sock = raw_request(idempotent_api, "k")
    fault.wait_until_held()
    sock.close()

    idempotent_api.journal.wait_for(
        lambda j: len(j) > 0 and j[0].finished.is_set(), what="the original"
    )

    assert (idempotent_api.journal[0].decision, idempotent_api.journal[0].committed) == (
        "new",
        True,
    )
    retry = post(idempotent_api, "k")
    assert retry.status_code == 201
    idempotent_api.assert_replayed(seq=2)
    idempotent_api.assert_exactly_once()


def test_in_flight_goes_on_when_its_bound_has_passed(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.faults.in_flight(seconds=0)

    first = post(idempotent_api, "k")

    assert first.status_code == 201
    assert idempotent_api.journal[0].note.startswith("in flight")


def test_in_flight_under_a_waiting_policy_the_retry_gets_the_original(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.reset(on_in_flight="wait")
    fault = idempotent_api.faults.in_flight(key="k", attempt=1)
    with ThreadPoolExecutor(1) as pool:
        original = pool.submit(post, idempotent_api, "k")
        fault.wait_until_held()

        retry = post(idempotent_api, "k")  # its arrival lets the original go on

        first = original.result(timeout=5)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.content == first.content
    idempotent_api.assert_replayed(seq=2)
    idempotent_api.assert_exactly_once()


# -- late ---------------------------------------------------------------------------------------


def test_late_response_is_discarded_when_the_client_gives_up_first(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.late_response(seconds=30)
    sock = raw_request(idempotent_api, "k")
    idempotent_api.journal.wait_for(
        lambda j: len(j) > 0 and j[0].finished.is_set(), what="the commit"
    )
    sock.close()  # the client's timeout fired: it gives up on this connection

    idempotent_api.journal.wait_for(lambda j: "discarded" in j[0].note, what="the discard")

    first = idempotent_api.journal[0]
    assert (first.wire, first.committed, first.fault) == ("late", True, "late")
    retry = post(idempotent_api, "k")
    assert retry.status_code == 201
    idempotent_api.assert_replayed(seq=2)
    idempotent_api.assert_exactly_once()


def test_late_response_a_client_that_times_out_sees_the_retry_replay(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.late_response(seconds=30)

    gave_up = post(idempotent_api, "k", timeout=0.2)
    retry = post(idempotent_api, "k")

    assert isinstance(gave_up, requests.ReadTimeout)
    assert retry.status_code == 201
    idempotent_api.assert_replayed(seq=2)
    idempotent_api.assert_exactly_once()


def test_late_response_is_sent_once_its_bound_passes(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.faults.late_response(seconds=0)

    first = post(idempotent_api, "k")

    assert first.status_code == 201
    assert idempotent_api.journal[0].wire == "late"


def test_late_response_is_sent_when_released(idempotent_api: IdempotentAPI) -> None:
    fault = idempotent_api.faults.late_response(seconds=60)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, idempotent_api, "k")
        idempotent_api.journal.wait_for(lambda j: len(j) == 1 and j[0].finished.is_set())
        fault.release()
        assert pending.result(timeout=5).status_code == 201


# -- clock jump and latency ---------------------------------------------------------------------


def test_clock_jump_lets_the_keys_ttl_run_out_before_the_attempt(
    idempotent_api: IdempotentAPI,
) -> None:
    ttl = idempotent_api.policy.ttl
    assert ttl is not None
    idempotent_api.faults.clock_jump(ttl + 1, key="k", attempt=2)

    first = post(idempotent_api, "k")
    retry = post(idempotent_api, "k")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.content != first.content  # the record had expired: a second execution
    assert [e.decision for e in idempotent_api.exchanges] == ["new", "new"]
    assert idempotent_api.journal[1].note.startswith("the fake clock jumped")
    idempotent_api.assert_side_effects(2, key="k")


def test_latency_delays_every_request_by_real_time(idempotent_api: IdempotentAPI) -> None:
    fault = idempotent_api.faults.latency(0.05)
    idempotent_api.faults.drop_response(key="lost")

    started = time.monotonic()
    answered = post(idempotent_api, "a")
    middle = time.monotonic()
    lost = post(idempotent_api, "lost")
    done = time.monotonic()

    assert answered.status_code == 201
    assert isinstance(lost, requests.ConnectionError)
    assert middle - started >= 0.05  # at least the delay asked for, on every request
    assert done - middle >= 0.05
    assert fault.fired == 2
    assert idempotent_api.journal[1].fault == "latency+drop"


# -- two faults on one request ------------------------------------------------------------------


def _batch(ctx: HandlerContext) -> Reply:
    results = []
    for target in ctx.data["targets"]:
        failure = ctx.target_fails(target)
        if failure is None:
            ctx.side_effect("post.published", "post", ctx.resources.new_id("post"), target=target)
        results.append({"target": target, "status": failure or "published"})
    return Reply(207, {"results": results})


BATCH_VARIANT = dataclasses.replace(
    get_variant("generic"),
    name="generic-batch",
    routes=(Route("POST /v1/batches", _batch), *get_variant("generic").routes),
)


def test_partial_batch_and_drop_response_both_act_on_one_request(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.reset(BATCH_VARIANT)
    idempotent_api.faults.partial_batch({"b": "transient"})
    idempotent_api.faults.drop_response()
    body = {"targets": ["a", "b", "c"]}

    lost = post(idempotent_api, "k", path="/v1/batches", body=body)
    retry = post(idempotent_api, "k", path="/v1/batches", body=body)

    assert isinstance(lost, requests.ConnectionError)
    first = idempotent_api.journal[0]
    assert (first.fault, first.wire, first.committed) == ("partial_batch+drop", "dropped", True)
    assert [r["status"] for r in retry.json()["results"]] == ["published", "transient", "published"]
    assert sorted(s.detail["target"] for s in idempotent_api.side_effects) == ["a", "c"]


def test_faults_pinned_to_one_request_combine_in_any_order(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.drop_response(seq=1)
    idempotent_api.faults.error_after_commit(500, seq=1)

    lost = post(idempotent_api, "k")

    assert isinstance(lost, requests.ConnectionError)
    first = idempotent_api.journal[0]
    assert (first.fault, first.status, first.wire) == ("error_after+drop", 500, "dropped")
    assert first.side_effects


def test_a_fault_past_the_point_that_answered_is_given_back(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.error_before_commit(503, seq=1)
    drop = idempotent_api.faults.drop_response(key="k")

    refused = post(idempotent_api, "k")
    lost = post(idempotent_api, "k")

    assert refused.status_code == 503
    assert isinstance(lost, requests.ConnectionError)
    assert [e.fault for e in idempotent_api.exchanges] == ["error_before", "drop"]
    assert drop.fired == 1


def test_one_shot_faults_without_matchers_still_queue(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.faults.drop_response()
    idempotent_api.faults.reset_connection()

    post(idempotent_api, "k")
    post(idempotent_api, "k")
    post(idempotent_api, "k")

    assert [e.fault for e in idempotent_api.exchanges] == ["drop", "reset", None]


# -- async waiting --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_wait_until_held_async_leaves_the_event_loop_free(
    idempotent_api: IdempotentAPI,
) -> None:
    fault = idempotent_api.faults.hold()
    kwargs = idempotent_api.request_kwargs(BODY, key="k")
    async with httpx.AsyncClient(timeout=5.0) as client:
        # The held request is sent by this very loop: a blocking wait would never see it.
        original = asyncio.ensure_future(client.post(idempotent_api.url_for(PATH), **kwargs))
        await fault.wait_until_held_async()
        duplicate = await client.post(idempotent_api.url_for(PATH), **kwargs)
        fault.release()
        first = await original
    assert (first.status_code, duplicate.status_code) == (201, 409)
    idempotent_api.assert_exactly_once()


# -- the admin API, standalone ------------------------------------------------------------------


@pytest.fixture(scope="module")
def standalone() -> Iterator[str]:
    """A standalone ``generic`` server process; yields its base URL."""
    server = Standalone("--variant=generic")
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        err = server.close()
        assert "Traceback" not in err, err


def test_admin_takes_the_new_kinds_and_seq(standalone: str) -> None:
    with httpx.Client(base_url=standalone, timeout=5) as client:
        client.post("/__admin/reset", json={})
        added = client.post("/__admin/faults", json={"kind": "in_flight", "seq": 2})
        assert added.status_code == 201, added.text
        assert (added.json()["fault"]["seq"], added.json()["fault"]["seconds"]) == (2, 10.0)
        for kind, extra in [("late", {}), ("clock_jump", {"seconds": 5}), ("latency", {})]:
            spec = {"kind": kind, "seq": 9, **extra}
            if kind == "latency":
                spec["seconds"] = 0
            assert client.post("/__admin/faults", json=spec).status_code == 201
        refused = client.post("/__admin/faults", json={"kind": "nope"})
        assert refused.status_code == 400
        for kind in ("in_flight", "late", "clock_jump", "latency"):
            assert kind in refused.text
        client.post("/__admin/faults", json={"kind": "drop", "seq": 1})
        client.delete("/__admin/faults")


# -- a restart meets parked requests ---------------------------------------------------------------


def test_a_restart_loses_a_request_parked_in_flight(idempotent_api: IdempotentAPI) -> None:
    fault = idempotent_api.faults.in_flight(key="k", attempt=1)
    with ThreadPoolExecutor(1) as pool:
        original = pool.submit(post, idempotent_api, "k")
        fault.wait_until_held()
        idempotent_api.restart()
        lost = original.result(timeout=5)

    assert isinstance(lost, requests.ConnectionError)
    first = idempotent_api.journal[0]
    assert (first.wire, first.committed) == ("reset", False)
    assert post(idempotent_api, "k").status_code == 201  # its claim vanished: the retry runs
    idempotent_api.assert_exactly_once()


def test_a_restart_loses_a_late_response_not_yet_sent(idempotent_api: IdempotentAPI) -> None:
    idempotent_api.faults.late_response(seconds=30)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, idempotent_api, "k")
        idempotent_api.journal.wait_for(lambda j: len(j) > 0 and j[0].finished.is_set())
        idempotent_api.restart()
        lost = pending.result(timeout=5)

    assert isinstance(lost, requests.ConnectionError)
    assert idempotent_api.journal[0].wire == "reset"
    assert post(idempotent_api, "k").status_code == 201  # committed before: a replay
    idempotent_api.assert_replayed(seq=2)
