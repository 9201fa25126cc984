"""Memory stays bounded: the standalone journal keeps a window and counts what it dropped;
expiry does not depend on unrelated traffic."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from hardening_support import TIMEOUT, Standalone, clean_stderr, read_all, statuses

from pytest_idempotency import get_variant
from pytest_idempotency.app import App
from pytest_idempotency.journal import MAX_PROBLEM_TEXT, Journal
from pytest_idempotency.server import IdempotencyServer


@pytest.fixture(scope="module")
def bounded() -> Iterator[Standalone]:
    proc = Standalone("--journal-limit", "20")
    yield proc
    assert clean_stderr(proc.close()) == []


def test_the_standalone_journal_keeps_a_window_and_counts_what_it_dropped(
    bounded: Standalone,
) -> None:
    bounded.reset()
    for index in range(30):
        assert bounded.create(f"key-{index}") < 300
    assert bounded.create("key-0") < 300  # its record outlives its journal row: a replay
    journal = bounded.journal()
    assert journal["retention"] == 20
    assert journal["total_exchanges"] == 31
    assert journal["dropped_exchanges"] == 11
    assert [e["seq"] for e in journal["exchanges"]] == list(range(12, 32))
    assert journal["exchanges"][-1]["decision"] == "replayed"
    assert bounded.effects() == 30  # exact, though only 20 are kept
    _, timeline = bounded.call("GET", "/__admin/timeline")
    assert "11 earlier exchanges" in timeline["timeline"]
    assert "31 request(s), 30 side effect(s)" in timeline["timeline"]


def test_the_journal_pages_with_after_and_limit(bounded: Standalone) -> None:
    bounded.reset()
    for index in range(25):
        bounded.create(f"page-{index}")
    first = bounded.journal(limit="8")
    assert [e["seq"] for e in first["exchanges"]] == list(range(6, 14))
    second = bounded.journal(after=str(first["next_after"]), limit="8")
    assert [e["seq"] for e in second["exchanges"]] == list(range(14, 22))
    last = bounded.journal(after="21", limit="8")
    assert [e["seq"] for e in last["exchanges"]] == list(range(22, 26))
    assert last["next_after"] is None
    status, body = bounded.call("GET", "/__admin/journal?after=-1")
    assert status == 400
    assert "after" in body["error"]


def test_a_reset_keeps_the_retention_limit(bounded: Standalone) -> None:
    bounded.reset()
    assert bounded.journal()["retention"] == 20


def test_the_fixture_journal_is_unbounded() -> None:
    journal = Journal()
    for _ in range(50):
        journal.open("POST", "/x", b"", "")
    assert journal.limit is None
    assert len(journal) == 50
    assert journal.dropped_exchanges == 0


def test_a_huge_problem_text_is_kept_once_and_cut() -> None:
    journal = Journal(limit=5)
    journal.problem("schema", "v" * 1_000_000)
    [(category, text)] = journal.problems
    assert category == "schema"
    assert text.startswith("v" * MAX_PROBLEM_TEXT)
    assert len(text) < MAX_PROBLEM_TEXT + 100


def test_a_one_megabyte_invalid_value_is_quoted_short_in_answer_record_note_and_problem() -> None:
    app = App(get_variant("phantom"))
    body = {"user_id": "123", "delta": "9" * 1_000_000, "reason": "x"}
    credential = app.variant.example_credential
    headers = {"Authorization": f"Bearer {credential}", "Idempotency-Key": "big-1"}
    with IdempotencyServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        first = client.post("/api/v1/economy/adjust", json=body, headers=headers)
        again = client.post("/api/v1/economy/adjust", json=body, headers=headers)
    assert 400 <= first.status_code < 500
    assert b"delta" in first.content, first.content[:300]
    assert len(first.content) < 2_000, "the answer quotes the value's first characters only"
    assert len(again.content) < 2_000
    [exchange, *_] = app.state.journal.exchanges
    assert len(exchange.note) < 1_000
    assert app.state.journal.problems, "the invalid value is recorded as a problem"
    assert all(len(text) < 1_000 for _, text in app.state.journal.problems)
    assert app.state.journal.side_effects == []


def _replay_after_setting_back(unrelated_traffic: bool) -> str:
    app = App(get_variant("generic"))
    with IdempotencyServer(app) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:

            def create(key: str) -> None:
                client.post("/v1/things", json={"name": "x"}, headers={"Idempotency-Key": key})

            create("k")
            start = app.clock.now()
            app.clock.advance(hours=25)
            if unrelated_traffic:
                for index in range(20):  # sweeps expired records on the way
                    create(f"other-{index}")
            app.clock.set(start)
            create("k")
        decision = app.state.journal.filter(key="k")[-1].decision
    return str(decision)


def test_expiry_after_setting_the_clock_back_does_not_depend_on_other_traffic() -> None:
    assert _replay_after_setting_back(False) == _replay_after_setting_back(True) == "new"


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_a_200_mib_chunked_upload_is_refused_without_being_kept(bounded: Standalone) -> None:
    bounded.reset()
    before = _rss_mib(bounded.proc.pid)
    chunk = b"4000000\r\n" + b"x" * 0x4000000 + b"\r\n"  # 64 MiB per chunk
    with socket.create_connection(("127.0.0.1", bounded.port), timeout=TIMEOUT) as sock:
        sock.sendall(
            b"POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Idempotency-Key: huge\r\nTransfer-Encoding: chunked\r\n\r\n"
        )

        def upload() -> None:
            with contextlib.suppress(OSError):  # the server closes once it answered
                for _ in range(3):
                    sock.sendall(chunk)

        sender = threading.Thread(target=upload)
        sender.start()
        answer = read_all(sock)  # read while it sends, as a client that watches for an answer
        sender.join()
    assert statuses(answer) == [413], answer[:200]
    assert _rss_mib(bounded.proc.pid) - before < 32
    assert bounded.effects() == 0
    assert bounded.create("after-the-upload") < 300


def test_a_record_made_after_the_clock_went_back_counts_from_then() -> None:
    app = App(get_variant("generic"))
    with IdempotencyServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        start = app.clock.now()
        app.clock.advance(hours=25)
        app.clock.set(start)
        for _ in range(2):
            client.post("/v1/things", json={"name": "x"}, headers={"Idempotency-Key": "later"})
        app.clock.advance(hours=23)
        client.post("/v1/things", json={"name": "x"}, headers={"Idempotency-Key": "later"})
    decisions = [e.decision for e in app.state.journal.filter(key="later")]
    assert decisions == ["new", "replayed", "replayed"]
