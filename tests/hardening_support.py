"""Targets for the hardening tests: the in-process server and the standalone process, both
spoken to with raw bytes over a socket."""

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from pytest_idempotency import get_variant
from pytest_idempotency.admin import Admin
from pytest_idempotency.app import App
from pytest_idempotency.limits import Limits
from pytest_idempotency.server import IdempotencyServer

TIMEOUT = 10.0
FIRST_LINE = re.compile(r"pytest-idempotency: serving (\S+) on http://127\.0\.0\.1:(\d+)")
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


class Target:
    """A running server with its admin API, spoken to over raw sockets."""

    name = ""
    port = 0

    def raw(self, data: bytes, *, half_close: bool = True) -> bytes:
        """Send ``data`` on a fresh connection and read until the server closes it."""
        return self.raw_to(self.port, data, half_close=half_close)

    @staticmethod
    def raw_to(port: int, data: bytes, *, half_close: bool = True) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            return read_all(sock)

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        """One well-formed request (``Connection: close``); status and decoded JSON body."""
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        if body is not None:
            lines.append("Content-Type: application/json")
        lines += [f"Content-Length: {len(payload)}", "Connection: close", "", ""]
        answer = self.raw("\r\n".join(lines).encode() + payload, half_close=False)
        if not answer:
            raise ConnectionError(f"{method} {path}: the server closed without an answer")
        status, head, body_bytes = split(answer)
        if b"json" not in head.lower():
            return status, body_bytes.decode("latin-1")
        return status, json.loads(body_bytes) if body_bytes else None

    def create(self, key: str, name: str = "x") -> int:
        status, _ = self.call("POST", "/v1/things", {"name": name}, Idempotency_Key=key)
        return status

    def journal(self, **params: str) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        status, body = self.call("GET", "/__admin/journal" + (f"?{query}" if query else ""))
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def exchanges(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.journal()["exchanges"]
        return result

    def effects(self) -> int:
        status, body = self.call("GET", "/__admin/side-effects")
        assert status == 200, body
        return int(body["count"])

    def reset(self) -> None:
        status, body = self.call("POST", "/__admin/reset", {})
        assert status == 200, body


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def split(answer: bytes) -> tuple[int, bytes, bytes]:
    """Status, head and body of the first response in ``answer``."""
    found = STATUS.match(answer)
    assert found is not None, answer[:200]
    head, _, rest = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    body = rest[: int(length.group(1))] if length else rest
    return int(found.group(1)), head, body


def statuses(answer: bytes) -> list[int]:
    """Every response status on a connection (100 Continue included)."""
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


class InProcess(Target):
    name = "in-process"

    def __init__(self, limits: Limits | None = None) -> None:
        self.app = App(get_variant("generic"), admin=Admin())
        self.server = IdempotencyServer(self.app, limits=limits)
        self.server.start()
        self.port = self.server.port

    def close(self) -> None:
        self.server.stop()


class Standalone(Target):
    name = "standalone"

    def __init__(self, *args: str, preexec_fn: Any = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_idempotency", "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec_fn,
        )
        assert self.proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        line = lines.get(timeout=30)
        found = FIRST_LINE.match(line)
        assert found is not None, line
        self.port = int(found.group(2))
        #: The variant the server says it serves.
        self.variant = found.group(1)
        self._err: str | None = None

    def close(self) -> str:
        """Stop the server (SIGTERM) and return its stderr; a server that does not stop in 20 s
        is killed, and the test fails, rather than left running."""
        if self._err is None:
            self.proc.terminate()
            try:
                _, self._err = self.proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, self._err = self.proc.communicate()
                raise AssertionError("the server did not stop within 20 s of SIGTERM") from None
        return self._err or ""


def serving(*args: str) -> Iterator[Standalone]:
    """A standalone server started with ``args``, for a fixture to ``yield from``: stopped at
    the end, and its stderr must hold nothing but its own notices."""
    served = Standalone(*args)
    try:
        yield served
    finally:
        assert clean_stderr(served.close()) == []


def clean_stderr(text: str) -> list[str]:
    """Lines of a standalone server's stderr that are not its own one-line notices."""
    return [line for line in text.splitlines() if not line.startswith("pytest-idempotency: ")]


def wait_until(predicate: Any, what: str, timeout: float = TIMEOUT) -> None:
    """Wait for a condition another thread or process makes true (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.01)


def head_of(target: Target, *lines: str) -> bytes:
    """A request head for ``target``: ``lines``, then its ``Host`` and the blank line."""
    return ("\r\n".join([*lines, f"Host: 127.0.0.1:{target.port}", "", ""])).encode()


def chunked(body: bytes, size: int) -> bytes:
    """``body`` in chunked coding, ``size`` bytes a chunk, then the last chunk."""
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def served_after(target: Target, capfd: Any, key: str = "served-after") -> Iterator[None]:
    """The body of an autouse fixture: the target fresh before the test; after it, still
    serving (a create answered below 300) and nothing on stderr that looks like a traceback."""
    target.reset()
    yield
    assert target.create(key) < 300
    assert "Traceback" not in capfd.readouterr().err
