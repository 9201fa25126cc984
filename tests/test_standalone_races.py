"""Races of the standalone server made deterministic: admin calls against a restart, a key's
expiry decided after its request arrived, and requests held across a reset. The server runs
as a process and is spoken to with raw bytes; every race is pinned with a fault and the
journal, never with sleeps."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hardening_support import TIMEOUT, Standalone, read_all, serving, split


@pytest.fixture(scope="module")
def server() -> Iterator[Standalone]:
    """One generic standalone server for the module (stopped, its stderr checked, at the end)."""
    yield from serving("--variant", "generic")


@pytest.fixture
def target(server: Standalone) -> Standalone:
    server.reset()
    return server


def _request(target: Standalone, method: str, path: str, body: Any = None, **headers: str) -> bytes:
    """A keep-alive request (no ``Connection: close``): the server decides when to close."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{target.port}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}", "", ""]
    return "\r\n".join(lines).encode() + payload


def _in_thread(work: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    return thread, out


def _create_raw(target: Standalone, key: str) -> bytes:
    """A keyed create on its own connection: every byte the server sent until it closed
    (empty when the connection was reset or closed without an answer)."""
    data = _request(target, "POST", "/v1/things", {"name": "x"}, Idempotency_Key=key)
    return target.raw(data)


# -- F1: every admin call gets its answer across a restart -------------------------------------


def test_an_admin_call_under_way_during_a_restart_is_answered_then_closed(
    target: Standalone,
) -> None:
    status, added = target.call("POST", "/__admin/faults", {"kind": "hold", "key": "race-h-01"})
    assert status == 201, added
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as waiting:
        # An admin call that stays under way until a request is held (it waits on the fault).
        waiting.sendall(_request(target, "POST", "/__admin/faults/1/wait", {"timeout": 30}))
        status, body = target.call("POST", "/__admin/restart", {"keep_records": True})
        assert status == 200, body
        assert target.create("race-h-01") == 201  # the restart released the hold: passes
        answer = read_all(waiting)  # answered, then closed (a restart closes connections)
    assert answer, "the admin call under way got no answer"
    status, _, payload = split(answer)
    assert status == 200, answer
    assert json.loads(payload)["fault"]["held"] == 1


def test_a_connection_opened_before_a_restart_gets_the_answer_to_its_first_call(
    target: Standalone,
) -> None:
    # Connected (and so accepted, before the restart's own connection) but nothing sent yet:
    # the client is about to send on it. The restart must not shut it under the call.
    with socket.create_connection(("127.0.0.1", target.port), timeout=TIMEOUT) as fresh:
        status, body = target.call("POST", "/__admin/restart", {})
        assert status == 200, body
        fresh.sendall(_request(target, "POST", "/__admin/faults", {"kind": "drop"}))
        answer = read_all(fresh)
    assert answer, "the first call on a connection opened before the restart got no answer"
    assert split(answer)[0] == 201
    status, faults = target.call("GET", "/__admin/faults")
    assert len(faults["faults"]) == 1  # queued once, and the caller knows it


# -- F2: the journal says when the key was decided -----------------------------------------------


def test_an_expiry_decided_after_arrival_records_when_it_was_decided(target: Standalone) -> None:
    assert target.create("race-ttl-01") == 201
    status, policy = target.call("GET", "/__admin/variant")
    ttl = policy["ttl"]
    spec = {"kind": "latency", "key": "race-ttl-01", "seconds": 60}  # parked before the layer
    assert target.call("POST", "/__admin/faults", spec)[0] == 201
    thread, out = _in_thread(lambda: target.create("race-ttl-01"))
    target.journal(wait_for="2")  # #2 arrived and is parked in the latency fault
    assert target.call("POST", "/__admin/clock", {"advance": ttl + 1})[0] == 200
    assert target.call("POST", "/__admin/faults/1/release")[0] == 200
    thread.join(TIMEOUT)
    assert out == [201]
    first, second = target.exchanges()
    assert second["decision"] == "new"
    assert second["expired"]["seq"] == 1
    expired_at = second["expired"]["at"]
    assert second["at"] < expired_at  # it arrived inside the TTL ...
    assert second["decided_at"] >= expired_at  # ... and was decided after it ran out
    assert first["decided_at"] <= second["at"]
    status, body = target.call("GET", "/__admin/timeline")
    assert status == 200, body
    assert "; #2 arrived at +" in body["timeline"]
    assert "and was decided at +" in body["timeline"]


# -- F4: a reset ends the requests of the state it discards --------------------------------------


def test_a_request_held_across_a_reset_is_lost_and_its_retry_runs_once(
    target: Standalone,
) -> None:
    assert (
        target.call("POST", "/__admin/faults", {"kind": "hold", "key": "race-reset-01"})[0] == 201
    )
    thread, out = _in_thread(lambda: _create_raw(target, "race-reset-01"))
    status, body = target.call("POST", "/__admin/faults/1/wait", {"timeout": TIMEOUT})
    assert status == 200, body
    target.reset()
    thread.join(TIMEOUT)
    assert out == [b""], "a request held across a reset still answered"
    assert target.create("race-reset-01") == 201
    exchanges = target.exchanges()
    assert [(e["key"], e["decision"]) for e in exchanges] == [("race-reset-01", "new")]
    assert target.effects() == 1


def test_a_duplicate_waiting_on_a_held_original_across_a_reset_is_lost_too(
    target: Standalone,
) -> None:
    status, body = target.call("POST", "/__admin/reset", {"policy": {"on_in_flight": "wait"}})
    assert status == 200, body
    assert (
        target.call("POST", "/__admin/faults", {"kind": "hold", "key": "race-reset-02"})[0] == 201
    )
    original, first = _in_thread(lambda: _create_raw(target, "race-reset-02"))
    assert target.call("POST", "/__admin/faults/1/wait", {"timeout": TIMEOUT})[0] == 200
    duplicate, second = _in_thread(lambda: _create_raw(target, "race-reset-02"))
    target.journal(wait_for="2")  # the duplicate arrived and waits for the original
    target.reset()
    original.join(TIMEOUT)
    duplicate.join(TIMEOUT)
    assert first == [b""]
    assert second == [b""]
    assert target.effects() == 0
    assert target.exchanges() == []
