"""A lean keep-alive HTTP/1.1 client over one raw socket, and server processes to point it at:
the standalone fake and a minimal standard-library keep-alive server (the floor)."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

FLOOR_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b'{"id": "thing_000001", "object": "thing", "name": "x"}'

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self._headers_buffer.append(b"\r\n")
        self.wfile.write(b"".join(self._headers_buffer) + BODY)
        self._headers_buffer = []

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"serving on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
"""

#: The fake's own HTTP/1.1 server (strict parsing, limits, keep-alive) around a canned app: what
#: the wire costs without the idempotency layer.
WIRE_SERVER = r"""
import threading
from pytest_idempotency.server import IdempotencyServer

BODY = b'{"id": "thing_000001", "object": "thing", "name": "x"}'

class Variant:
    max_body_bytes = 1 << 20

class State:
    variant = Variant()

class CannedApp:
    admin = None
    state = State()

    def __call__(self, environ, start_response):
        start_response(
            "201 Created",
            [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))],
        )
        return [BODY]

server = IdempotencyServer(CannedApp())
server.start()
print(f"serving on http://127.0.0.1:{server.port}", flush=True)
threading.Event().wait()
"""

_PORT = re.compile(r"http://127\.0\.0\.1:(\d+)")
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def start(kind: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    """Start the ``fake`` (standalone), the ``floor`` or the ``wire`` server; its process and
    port."""
    if kind == "fake":
        command = [sys.executable, "-m", "pytest_idempotency", "serve", "--port", "0", *args]
    elif kind == "wire":
        command = [sys.executable, "-c", WIRE_SERVER]
    else:
        command = [sys.executable, "-c", FLOOR_SERVER]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    found = _PORT.search(lines.get(timeout=30))
    assert found is not None
    return proc, int(found.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


class Client:
    """One keep-alive connection; :meth:`create` sends a keyed create and reads the answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = port
        self.buf = b""

    def create(self, key: str) -> int:
        body = b'{"name": "x"}'
        head = (
            f"POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nIdempotency-Key: {key}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + body)
        return self._read()

    def get(self, path: str) -> bytes:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
        self._read()
        return self.last_body

    def _read(self) -> int:
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        found = _LENGTH.search(head)
        length = int(found.group(1)) if found else 0
        while len(rest) < length:
            self.buf = head + b"\r\n\r\n" + rest
            self._recv()
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.last_body, self.buf = rest[:length], rest[length:]
        return int(head[9:12])

    def _recv(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buf += data

    def close(self) -> None:
        self.sock.close()


def rate(client: Client, count: int, prefix: str) -> float:
    """Keyed creates per second over ``count`` requests with fresh keys."""
    started = time.perf_counter()
    for index in range(count):
        client.create(f"{prefix}-{index}")
    return count / (time.perf_counter() - started)
