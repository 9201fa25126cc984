"""The standalone server's life under stress: a SIGTERM the kernel hands to a serving thread
still stops it, and running out of file descriptors neither spins the accept loop nor leaves
clients unanswered. Each test starts its own ``serve`` process."""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import signal
import socket
import time

import pytest
from hardening_support import TIMEOUT, Standalone, clean_stderr, read_all, statuses

#: tgkill(2): a signal to one thread of a process (Python has no wrapper for it).
_TGKILL = {"x86_64": 234, "aarch64": 131}.get(platform.machine())


def _tgkill(pid: int, tid: int, signum: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_TGKILL, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


@pytest.mark.skipif(_TGKILL is None, reason="tgkill's number is known on x86_64 and aarch64")
def test_a_sigterm_delivered_to_a_serving_thread_still_stops_the_server() -> None:
    """The kernel may hand a process's SIGTERM to any of its threads; the server's main thread
    used to block for ever and never run the handler, so the process kept serving."""
    server = Standalone()
    try:
        assert server.create("before-the-signal") == 201
        pid = server.proc.pid
        others = [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]
        assert others, "the server runs its accept loop on a thread of its own"
        _tgkill(pid, others[0], signal.SIGTERM)
        server.proc.wait(timeout=10)
        assert server.proc.returncode == 0
    finally:
        err = server.close()
    assert clean_stderr(err) == []


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _limited_server(limit: int) -> Standalone:
    """A server whose process may hold only ``limit`` file descriptors."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    return Standalone(preexec_fn=lower)


def test_out_of_descriptors_the_server_answers_503_and_does_not_spin() -> None:
    """With 64 descriptors and connections held open past them, the next client gets ``503``
    at once (a descriptor kept in reserve answers it) and the accept loop backs off instead of
    spinning a core; once clients leave, the server serves again."""
    server = _limited_server(64)
    held: list[socket.socket] = []
    try:
        for _ in range(80):
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT))
        time.sleep(0.2)  # let the accept loop reach the limit
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as late:
            late.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert 503 in statuses(read_all(late))
        before = _cpu_seconds(server.proc.pid)
        time.sleep(1.0)
        assert _cpu_seconds(server.proc.pid) - before < 0.5  # a spin would burn the whole second
        for sock in held:
            sock.close()
        time.sleep(0.2)
        assert server.create("after-the-flood") == 201
    finally:
        for sock in held:
            sock.close()
        err = server.close()
    assert clean_stderr(err) == []
