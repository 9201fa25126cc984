"""A long-running server's memory stays bounded however many keys and objects clients make: the
store keeps at most ``max_records`` records and refuses a new key past it with ``507`` before
anything runs (it never forgets a record to make room, which could run a key twice); the
resources keep at most ``max_objects`` objects and forget the oldest, counted. The standalone
server's bounds are 100,000 each by default; here they are made small so the tests run quickly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hardening_support import InProcess, Standalone, Target, clean_stderr, split

from pytest_idempotency import journal as journal_module
from pytest_idempotency.clock import Clock
from pytest_idempotency.faults import MAX_FAULTS, FaultError
from pytest_idempotency.journal import Journal
from pytest_idempotency.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_OBJECTS, DEFAULT_MAX_RECORDS
from pytest_idempotency.store import Store, StoredResponse, StoreFull
from pytest_idempotency.stubs import MAX_STUBS, StubError
from pytest_idempotency.variant import Resources

BOUND = 3


def _bounded_in_process() -> InProcess:
    target = InProcess()
    target.app.admin.max_records = BOUND  # type: ignore[union-attr]
    target.app.admin.max_objects = BOUND  # type: ignore[union-attr]
    target.reset()  # an admin call: the fresh state gets the admin's bounds
    return target


@pytest.fixture(params=["in-process", "standalone"])
def target(request: pytest.FixtureRequest) -> Any:
    if request.param == "standalone":
        server: Target = Standalone("--max-records", str(BOUND), "--max-objects", str(BOUND))
    else:
        server = _bounded_in_process()
    yield server
    err = server.close()
    if request.param == "standalone":
        assert clean_stderr(err or "") == []


def _create(target: Target, key: str) -> tuple[int, bytes, Any]:
    body = json.dumps({"name": key}).encode()
    request = (
        f"POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1:{target.port}\r\n"
        f"Content-Type: application/json\r\nIdempotency-Key: {key}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    status, head, payload = split(target.raw(request, half_close=False))
    return status, head, json.loads(payload)


def test_a_new_key_past_max_records_is_refused_with_507_before_anything_runs(
    target: Target,
) -> None:
    assert [_create(target, f"k{n}")[0] for n in range(BOUND)] == [201] * BOUND
    status, head, body = _create(target, "one-too-many")
    assert status == 507
    assert b"X-Pytest-Idempotency-Error: store-full" in head
    assert body["error"]["code"] == "store_full"
    assert "--max-records" in body["error"]["message"]
    assert target.effects() == BOUND  # the refused key ran nothing
    refused = target.exchanges()[-1]
    assert (refused["decision"], refused["status"]) == ("rejected", 507)
    problems = target.journal()["problems"]
    assert [p["category"] for p in problems] == ["internal"]


def test_a_stored_key_still_replays_when_the_store_is_full(target: Target) -> None:
    first = [_create(target, f"k{n}") for n in range(BOUND)]
    status, _, body = _create(target, "k0")
    assert status == 201
    assert body == first[0][2]  # the same answer: a replay, not a second execution
    assert target.effects() == BOUND
    assert target.exchanges()[-1]["decision"] == "replayed"


def test_a_reset_makes_room_again(target: Target) -> None:
    for n in range(BOUND + 1):
        _create(target, f"k{n}")
    target.reset()
    assert _create(target, "after-reset")[0] == 201


def test_health_reports_the_bounds_and_what_they_refused_or_dropped(target: Target) -> None:
    for n in range(BOUND + 2):
        _create(target, f"k{n}")
    status, health = target.call("GET", "/__admin/health")
    assert status == 200
    assert (health["records"], health["max_records"], health["refused_keys"]) == (BOUND, BOUND, 2)
    assert (health["objects"], health["max_objects"]) == (BOUND, BOUND)


def test_objects_past_max_objects_are_forgotten_oldest_first_and_counted(target: Target) -> None:
    ids = []
    for n in range(BOUND + 2):  # unkeyed creates: no record, but an object each
        status, body = target.call("POST", "/v1/things", {"name": f"n{n}"})
        assert status == 201, body
        ids.append(body["id"])
    status, health = target.call("GET", "/__admin/health")
    assert (health["objects"], health["dropped_objects"]) == (BOUND, 2)
    assert target.call("GET", f"/v1/things/{ids[0]}")[0] == 404  # the oldest is gone
    assert target.call("GET", f"/v1/things/{ids[-1]}")[0] == 200


def test_the_standalone_bounds_default_to_100000_and_0_turns_them_off() -> None:
    default = Standalone()
    off = Standalone("--max-records", "0", "--max-objects", "0", "--max-bytes", "0")
    try:
        health = default.call("GET", "/__admin/health")[1]
        unbounded = off.call("GET", "/__admin/health")[1]
    finally:
        errors = clean_stderr(default.close()) + clean_stderr(off.close())
    assert (health["max_records"], health["max_objects"], health["max_bytes"]) == (
        DEFAULT_MAX_RECORDS,
        DEFAULT_MAX_OBJECTS,
        DEFAULT_MAX_BYTES,
    )
    assert (DEFAULT_MAX_RECORDS, DEFAULT_MAX_OBJECTS, DEFAULT_MAX_BYTES) == (
        100_000,
        100_000,
        64 * 1024 * 1024,
    )  # the documented defaults
    assert (unbounded["max_records"], unbounded["max_objects"], unbounded["max_bytes"]) == (
        None,
        None,
        None,
    )
    assert errors == []


def test_a_record_whose_ttl_passed_makes_room_for_a_new_key() -> None:
    clock = Clock()
    store = Store(clock, max_records=1)
    first = store.claim(("k1",), "k1", None, 1).record
    store.complete(first, StoredResponse(201, (), b"{}"), ttl=60)
    with pytest.raises(StoreFull):
        store.claim(("k2",), "k2", None, 2)
    clock.advance(61)
    claim = store.claim(("k2",), "k2", None, 3)
    assert claim.status == "new"
    assert len(store) == 1
    assert store.refused == 1


def test_an_in_flight_record_counts_and_is_never_forgotten_for_room() -> None:
    store = Store(Clock(), max_records=1)
    held = store.claim(("k1",), "k1", None, 1)
    with pytest.raises(StoreFull, match="at most 1 idempotency records"):
        store.claim(("k2",), "k2", None, 2)
    assert store.claim(("k1",), "k1", None, 3).status == "in_flight"
    assert store.claim(("k1",), "k1", None, 3).record is held.record


def test_resources_reads_of_unknown_tables_keep_nothing() -> None:
    resources = Resources(max_objects=2)
    for tenant in ("a", "b", "c"):
        assert resources.get(tenant, "thing", "x") is None
        assert not resources.exists(tenant, "thing", "x")
        assert resources.all(tenant, "thing") == []
    assert resources._tables == {}
    resources.put("a", "thing", {"id": "1"})
    resources.put("b", "thing", {"id": "2"})
    resources.put("c", "thing", {"id": "3"})  # the oldest table's object goes
    assert (len(resources), resources.dropped_objects) == (2, 1)
    assert resources.get("a", "thing", "1") is None
    assert resources.get("c", "thing", "3") == {"id": "3"}
    assert list(resources._tables) == [("b", "thing"), ("c", "thing")]
    assert resources.delete("b", "thing", "2")
    assert (len(resources), list(resources._tables)) == (1, [("c", "thing")])


def test_a_new_key_past_max_bytes_of_records_is_refused_with_507() -> None:
    server = Standalone("--max-bytes", "3000")
    try:
        big = "x" * 1000
        answers = [
            server.call("POST", "/v1/things", {"name": big}, Idempotency_Key=f"k{n}")
            for n in range(4)
        ]
        status, health = server.call("GET", "/__admin/health")
    finally:
        err = server.close()
    assert status == 200
    codes = [code for code, _ in answers]
    # Each record keeps its ~1 kB body and ~1 kB answer: the second one takes the store past
    # 3,000 bytes, so the third and fourth keys are refused.
    assert codes == [201, 201, 507, 507]
    refused = answers[2][1]["error"]
    assert (refused["code"], "--max-bytes" in refused["message"]) == ("store_full", True)
    assert health["records"] == 2
    assert 3000 <= health["record_bytes"] <= 2 * (1100 + 1100)
    assert (health["refused_keys"], health["objects"]) == (2, 2)
    assert clean_stderr(err) == []


def test_records_count_their_scoped_keys_long_credentials_included() -> None:
    store = Store(Clock(), max_bytes=16_000)
    token = "t" * 8192  # an 8 KB bearer token is part of every scope it keys
    for n in range(2):
        store.claim((token, f"k{n}"), f"k{n}", None, n, body=b"{}")
    assert store.bytes == 2 * (8192 + 2 + 2)
    with pytest.raises(StoreFull, match="--max-bytes"):
        store.claim((token, "k3"), "k3", None, 3, body=b"{}")


def test_a_bounded_journal_counts_paths_and_headers_not_only_bodies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(journal_module, "MAX_KEPT_BODY_BYTES", 80_000)
    journal = Journal(Clock().now, limit=1000)
    header = ("Authorization", "Bearer " + "t" * 8000)
    each = len(b"{}") + len("/v1/things") + len(header[0]) + len(header[1])  # body, path, headers
    for _ in range(60):
        journal.open("POST", "/v1/things", b"{}", "application/json", (header,))
    assert len(journal) == 80_000 // each  # the bytes bound dropped the oldest, not the count
    assert journal.dropped_exchanges == 60 - 80_000 // each


def test_records_count_their_bytes_and_give_them_back() -> None:
    store = Store(Clock(), max_bytes=100)
    record = store.claim(("k1",), "k1", None, 1, body=b"x" * 60).record
    store.complete(record, StoredResponse(201, (), b"y" * 50), ttl=None)
    assert store.bytes == 60 + 50 + len("k1")  # the bodies and the scoped key
    with pytest.raises(StoreFull, match="--max-bytes"):
        store.claim(("k2",), "k2", None, 2, body=b"z")
    assert store.claim(("k1",), "k1", None, 3).status == "completed"  # still replays
    store.clear()
    assert store.bytes == 0
    other = store.claim(("k3",), "k3", None, 4, body=b"z" * 10).record
    store.release(other)
    assert store.bytes == 0


def test_resources_past_max_bytes_forget_the_oldest_but_keep_the_newest() -> None:
    resources = Resources(max_bytes=250)
    for n in range(5):
        resources.put("t", "thing", {"id": str(n), "text": "a" * 100})
    kept = [obj["id"] for obj in resources.all("t", "thing")]
    assert kept == ["3", "4"]
    assert resources.dropped_objects == 3
    assert resources.bytes <= 250
    huge = {"id": "h", "text": "b" * 1000}
    resources.put("u", "thing", huge)  # alone over the bound: it stays, the others go
    assert resources.get("u", "thing", "h") is huge
    assert len(resources) == 1


def test_objects_kept_before_max_bytes_is_set_are_counted_and_dropped_first() -> None:
    resources = Resources()  # seeded unbounded, as a variant's seeds are
    for n in range(3):
        resources.put("t", "seed", {"id": str(n), "text": "a" * 100})
    resources.bound(None, 250)
    assert resources.bytes > 300  # the seeds count
    resources.put("t", "thing", {"id": "new", "text": "b" * 10})
    assert resources.bytes <= 250
    assert [obj["id"] for obj in resources.all("t", "seed")] == ["2"]
    assert resources.dropped_objects == 2
    resources.bound(None, None)
    assert resources.bytes == 0


def test_a_fault_for_a_key_the_full_store_refuses_stays_queued_for_the_next_request(
    target: Target,
) -> None:
    assert [_create(target, f"k{n}")[0] for n in range(BOUND)] == [201] * BOUND
    status, fault = target.call(
        "POST", "/__admin/faults", {"kind": "error_after", "path": "/v1/things", "times": 1}
    )
    assert status == 201, fault
    assert _create(target, "one-too-many")[0] == 507  # refused before the claim: no fault acted
    _, listed = target.call("GET", "/__admin/faults")
    assert [f["fired"] for f in listed["faults"]] == [0]
    assert target.exchanges()[-1]["fault"] is None
    if isinstance(target, InProcess):  # the standalone bound can only be lifted by a reset
        target.app.state.store.max_records = BOUND + 1  # room for one more key
        assert _create(target, "fresh")[0] == 500  # the same fault, still queued, strikes now
        _, listed = target.call("GET", "/__admin/faults")
        assert [f["fired"] for f in listed["faults"]] == [1]


@pytest.mark.idempotency(assert_all_faults_fired=False)  # scripted to fill the plan, not to fire
def test_past_1000_scripted_faults_the_next_is_refused_naming_the_fix(idempotent_api) -> None:
    """Each fault holds an event and a semaphore (20,000 of them took 66 MB); the plan keeps at
    most 1,000 and refuses the next (ids are positions: none is forgotten to make room)."""
    for n in range(MAX_FAULTS):
        idempotent_api.faults.drop_response(key=f"k{n}")
    with pytest.raises(FaultError, match="1000 faults are scripted already"):
        idempotent_api.faults.drop_response(key="one-too-many")
    idempotent_api.faults.clear()
    idempotent_api.faults.drop_response(key="after-a-clear")


def test_past_1000_stubs_the_next_is_refused_naming_the_fix(idempotent_api) -> None:
    for n in range(MAX_STUBS):
        idempotent_api.stub(f"GET /v1/things/t{n}", json={"id": n})
    with pytest.raises(StubError, match="1000 stubs are set already"):
        idempotent_api.stub("GET /v1/things/one-too-many", json={})


def test_the_admin_api_refuses_fault_1001_and_goes_on_serving() -> None:
    server = Standalone()
    try:
        for n in range(MAX_FAULTS):
            status, body = server.call("POST", "/__admin/faults", {"kind": "drop", "key": f"k{n}"})
            assert status == 201, body
        status, body = server.call("POST", "/__admin/faults", {"kind": "drop", "key": "more"})
        assert status == 400
        assert "DELETE /__admin/faults" in body["error"]
        assert server.create("served") == 201
    finally:
        assert clean_stderr(server.close()) == []


def test_a_reset_answers_with_the_bounds_the_fresh_state_already_has() -> None:
    """The reset's own answer used to say ``max_records: null`` (the bounds were applied after
    the admin call returned), and a request racing the reset met an unbounded store."""
    server = Standalone("--max-records", str(BOUND), "--journal-limit", "5")
    try:
        status, reset = server.call("POST", "/__admin/reset", {"variant": "generic"})
        health = server.call("GET", "/__admin/health")[1]
        codes = [_create(server, f"after-reset-{n}")[0] for n in range(BOUND + 1)]
        for n in range(6):
            server.call("GET", f"/v1/things/none-{n}")
        journal = server.call("GET", "/__admin/journal")[1]
    finally:
        errors = clean_stderr(server.close())
    assert status == 200
    assert reset["max_records"] == health["max_records"] == BOUND
    assert (reset["max_objects"], reset["max_bytes"]) == (
        health["max_objects"],
        health["max_bytes"],
    )
    assert codes == [201] * BOUND + [507]  # the first requests after the reset are bounded
    assert len(journal["exchanges"]) == 5
    assert errors == []
