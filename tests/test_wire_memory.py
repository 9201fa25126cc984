"""Memory of the standalone server under hostile bodies and reads: a body of one-byte chunks
costs the body, and many full journal reads at once cost about one answer's text. Each test
starts its own server and reads its peak resident memory (``VmHWM``) from ``/proc``."""

from __future__ import annotations

import json
import socket
import threading

from hardening_support import (
    TIMEOUT,
    Standalone,
    chunked,
    clean_stderr,
    head_of,
    read_all,
    split,
    statuses,
)


def _rss_peak_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_one_byte_chunks_cost_the_body_not_an_object_per_chunk() -> None:
    """256 KiB in one-byte chunks (1.5 MiB of framing) grows the server's peak memory by far
    less than the 40 MB one object per chunk cost."""
    server = Standalone()
    try:
        pid = server.proc.pid
        assert server.create("warm-up") == 201
        before = _rss_peak_kib(pid)
        body = json.dumps({"name": "c" * (256 * 1024)}).encode()
        head = head_of(
            server,
            "POST /v1/things HTTP/1.1",
            "Content-Type: application/json",
            "Idempotency-Key: many-chunks",
            "Transfer-Encoding: chunked",
            "Connection: close",
        )
        status, _, _ = split(server.raw(head + chunked(body, 1), half_close=False))
        assert status == 201
        assert (_rss_peak_kib(pid) - before) < 16 * 1024
    finally:
        assert clean_stderr(server.close()) == []


def test_many_full_journal_reads_at_once_stay_small() -> None:
    """16 unpaged reads of a 5,000-exchange journal at once: each answer is the journal's text,
    encoded exchange by exchange, one at a time, so the peak grows by about 14 MB, not the 62 MB that a
    structure of objects per read cost."""
    server = Standalone()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            one = head_of(
                server, "POST /v1/things HTTP/1.1", "Content-Type: application/json"
            ).replace(b"\r\n\r\n", b"\r\nContent-Length: 13\r\n\r\n")
            sock.sendall((one + b'{"name": "x"}') * 5000)
            sock.shutdown(socket.SHUT_WR)
            assert statuses(read_all(sock)).count(201) == 5000
        before = _rss_peak_kib(server.proc.pid)
        answers: list[dict[str, object]] = []

        def read() -> None:
            answers.append(server.journal())

        threads = [threading.Thread(target=read) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 3)
        assert [len(a["exchanges"]) for a in answers] == [5000] * 16  # type: ignore[arg-type]
        assert (_rss_peak_kib(server.proc.pid) - before) < 30 * 1024
    finally:
        assert clean_stderr(server.close()) == []
