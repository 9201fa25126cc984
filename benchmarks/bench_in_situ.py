"""What one piece of the request path costs alone, and what it costs inside the whole request.

The standalone server's request path runs in process, no sockets: the head is parsed, the
environ built, the app answers a keyed create with a fresh key, the response head is encoded.
Three of its pieces are timed twice: alone, the same call repeated in a tight loop; and in situ,
the same call timed where it runs while the whole path serves fresh keys. The ratio says how
much of a request's cost is the code it runs and how much is running so much different code in
a row (the processor's caches and predictors go cold between one piece and the next).

    python -m benchmarks.bench_in_situ
"""

from __future__ import annotations

import gc
import time
import timeit
from collections.abc import Callable
from typing import Any

from benchmarks.common import spread
from pytest_idempotency import cli, connection
from pytest_idempotency.http1 import body_framing, parse_head
from pytest_idempotency.limits import Limits
from pytest_idempotency.server import IdempotencyServer
from pytest_idempotency.wire import encode_head

ROUNDS = 5
REQUESTS = 4000
BODY = b'{"name": "x"}'
PIECES = ("parse_head", "environ", "encode_head")


def _head(key: str) -> bytes:
    return (
        "POST /v1/things HTTP/1.1\r\nHost: 127.0.0.1:1\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: {key}\r\nContent-Length: {len(BODY)}"
    ).encode()


class _Path:
    """The standalone server's request path, piece by piece, each piece timed."""

    def __init__(self) -> None:
        app, _ = cli.build_app(cli.build_parser().parse_args(["serve", "--port", "0"]))
        self.server = IdempotencyServer(app, "127.0.0.1", 0)
        self.limits = Limits()
        self.spent = dict.fromkeys(PIECES, 0.0)

    def parse(self, head: bytes) -> connection._Request:
        parsed = parse_head(head, self.limits)
        request = connection._Request(parsed)
        body_framing(parsed)
        request.body = BODY
        return request

    def environ(self, request: connection._Request) -> dict[str, Any]:
        return connection._environ(self.server, None, ("127.0.0.1", 5), request)  # type: ignore[arg-type]

    def one(self, head: bytes) -> None:
        clock, spent = time.perf_counter, self.spent
        began = clock()
        request = self.parse(head)
        parsed = clock()
        environ = self.environ(request)
        built = clock()
        status, headers, _ = connection._call_app(self.server, environ)
        answered = clock()
        encode_head(status, headers, False)
        spent["parse_head"] += parsed - began
        spent["environ"] += built - parsed
        spent["encode_head"] += clock() - answered


def _alone(path: _Path) -> dict[str, float]:
    """Each piece repeated on one request, microseconds per call."""
    head = _head("alone")
    request = path.parse(head)
    calls: dict[str, Callable[[], object]] = {
        "parse_head": lambda: path.parse(head),
        "environ": lambda: path.environ(request),
        "encode_head": lambda: encode_head(
            "201 Created", [("Content-Type", "application/json"), ("Content-Length", "80")], False
        ),
    }
    return {
        name: min(timeit.repeat(call, number=2000, repeat=3)) / 2000 * 1e6
        for name, call in calls.items()
    }


def run(rounds: int = ROUNDS, requests: int = REQUESTS) -> dict[str, Any]:
    path = _Path()
    heads = [_head(f"k{n}") for n in range((rounds + 1) * requests)]
    for head in heads[:requests]:  # warm up
        path.one(head)
    out: dict[str, Any] = {f"{name}{what}": [] for name in PIECES for what in ("_alone", "_in")}
    out["request"] = []
    gc.freeze()
    for index in range(rounds):
        path.spent = dict.fromkeys(PIECES, 0.0)
        began = time.perf_counter()
        for head in heads[(index + 1) * requests : (index + 2) * requests]:
            path.one(head)
        out["request"].append((time.perf_counter() - began) / requests * 1e6)
        for name, micros in _alone(path).items():
            out[f"{name}_alone"].append(micros)
            out[f"{name}_in"].append(path.spent[name] / requests * 1e6)
    gc.unfreeze()
    out["requests"] = requests
    return out


def report(result: dict[str, Any]) -> list[str]:
    lines = [
        "## One piece alone, and inside the whole request",
        "",
        "The standalone server's request path in process (no sockets), keyed creates with fresh "
        "keys: three of its pieces timed alone (the same call repeated in a tight loop) and in "
        "situ (timed where they run while the whole path serves requests). "
        f"{len(result['request'])} rounds of {result['requests']} requests.",
        "",
        "| piece | alone, us per call | inside a request, us per call | in situ / alone |",
        "|---|---|---|---|",
    ]
    factors = []
    for name in PIECES:
        alone, inside = spread(result[f"{name}_alone"]), spread(result[f"{name}_in"])
        factors.append(inside.median / alone.median)
        lines.append(
            f"| `{name}` | {alone.fmt(1)} | {inside.fmt(1)} | {inside.median / alone.median:.1f}x |"
        )
    whole = spread(result["request"])
    lines += [
        "",
        f"The whole in-process request takes {whole.fmt(0)} us. Each piece costs "
        f"{min(factors):.1f}-{max(factors):.1f}x more inside a request than alone: the same "
        "code, run between a hundred other functions instead of again after itself, runs "
        "slower (most likely because the processor's instruction caches and branch predictors "
        "no longer hold it). A request's cost follows how much different code it runs more "
        "than how fast any one piece is alone: making one function faster in a tight loop "
        "gains little, running less code per request is what gains.",
        "",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
