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

    def serves_admin(self, path):
        return False

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

#: The least a Python server must do per keyed create, with none of the fake's checks, faults,
#: journal detail or limits: parse the head into a dict, read the JSON body, fingerprint it
#: (SHA-256 of canonical JSON), claim the key in one dict under a lock, make the object, answer
#: it as JSON. What the fake's request path could cost at best in this language.
MINIMAL_SERVER = r"""
import hashlib, itertools, json, socket, threading, time

records, objects, journal = {}, {}, []
ids, lock = itertools.count(1), threading.Lock()
encode = json.JSONEncoder(separators=(",", ":")).encode
canonical = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode

def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.lower(), []).append(value.strip())
        length = int(headers.get("content-length", ["0"])[0])
        while len(rest) < length:
            rest += conn.recv(65536)
        body, buf = rest[:length], rest[length:]
        data = json.loads(body)
        key = headers["idempotency-key"][0]
        fingerprint = hashlib.sha256(canonical(data).encode()).hexdigest()[:16]
        with lock:
            record = records.get(key)
            new = record is None
            if new:
                record = records[key] = [fingerprint, b""]
        if new:
            obj = {"id": f"thing_{next(ids):06d}", "object": "thing", **data}
            obj["created"] = int(time.time())
            objects[obj["id"]] = obj
            record[1] = encode(obj).encode()
            journal.append((method, target, key, fingerprint, 201))
        out = record[1]
        date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
        conn.sendall(
            (
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(out)}\r\nDate: {date}\r\n\r\n"
            ).encode()
            + out
        )

listener = socket.create_server(("127.0.0.1", 0))
print(f"serving on http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

_PORT = re.compile(r"http://127\.0\.0\.1:(\d+)")
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def start(kind: str, *args: str) -> tuple[subprocess.Popen[str], int]:
    """Start the ``fake`` (standalone), the ``floor``, the ``wire`` or the ``minimal`` server;
    its process and port."""
    if kind == "fake":
        command = [sys.executable, "-m", "pytest_idempotency", "serve", "--port", "0", *args]
    elif kind == "wire":
        command = [sys.executable, "-c", WIRE_SERVER]
    elif kind == "minimal":
        command = [sys.executable, "-c", MINIMAL_SERVER]
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
