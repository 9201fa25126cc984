"""Profile first: where a keyed POST spends its time inside the fake.

cProfile over the WSGI app itself (no sockets), for keyed creates with fresh keys, on the generic
and phantom variants; and the same request's full round trip over loopback with a keep-alive
``requests.Session``, to show how much of it is the fake and how much is HTTP.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import time
from typing import Any

import requests
from werkzeug.test import EnvironBuilder

from benchmarks.common import spread
from pytest_idempotency import App, IdempotencyServer, get_variant

CALLS = 3000


def _environs(variant: str, count: int) -> list[dict[str, Any]]:
    method, path, params = get_variant(variant).example
    v = get_variant(variant)
    headers = {"Content-Type": "application/json"}
    if v.example_credential:
        headers["Authorization"] = f"Bearer {v.example_credential}"
    out = []
    for n in range(count):
        body = dict(params)
        key = f"profile-key-{n:020d}"
        if v.policy.key_header is not None:
            headers[v.policy.key_header] = key
        elif v.policy.key_field is not None:
            body[v.policy.key_field] = key
        builder = EnvironBuilder(
            path=path, method=method, data=json.dumps(body).encode(), headers=headers
        )
        out.append(builder.get_environ())
    return out


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return lambda data: None


def app_cost(variant: str, rounds: int = 5) -> tuple[Any, list[tuple[str, int, float]]]:
    """Microseconds per call of the WSGI app, and its top functions by cumulative time."""
    app = App(get_variant(variant))
    per_call = []
    for _ in range(rounds):
        app.reset()
        environs = _environs(variant, CALLS)
        start = time.perf_counter()
        for environ in environs:
            app(environ, _start_response)
        per_call.append((time.perf_counter() - start) / CALLS * 1e6)
    app.reset()
    environs = _environs(variant, CALLS)
    profiler = cProfile.Profile()
    profiler.enable()
    for environ in environs:
        app(environ, _start_response)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "pytest_idempotency" in filename or "werkzeug" in filename or "jsonschema" in filename:
            short = filename.split("site-packages/")[-1].split("main/")[-1]
            rows.append((f"{short}:{line} {name}", calls, cumulative / CALLS * 1e6))
    rows.sort(key=lambda row: row[2], reverse=True)
    return spread(per_call), rows[:12]


def round_trip(rounds: int = 5, count: int = 500) -> Any:
    """Microseconds per keyed create over loopback (generic, keep-alive requests.Session)."""
    app = App(get_variant("generic"))
    server = IdempotencyServer(app)
    server.start()
    session = requests.Session()
    per_call = []
    try:
        for round_ in range(rounds):
            app.reset()
            start = time.perf_counter()
            for n in range(count):
                session.post(
                    server.url_for("/v1/things"),
                    json={"name": "example"},
                    headers={"Idempotency-Key": f"trip-{round_}-{n}"},
                    timeout=5,
                )
            per_call.append((time.perf_counter() - start) / count * 1e6)
    finally:
        session.close()
        server.stop()
    return spread(per_call)


def run() -> dict[str, Any]:
    return {
        "generic": app_cost("generic"),
        "phantom": app_cost("phantom"),
        "round_trip": round_trip(),
    }


def report(result: dict[str, Any]) -> list[str]:
    generic, rows = result["generic"]
    phantom, _ = result["phantom"]
    trip = result["round_trip"]
    lines = [
        "## Profile: where a request's time goes",
        "",
        f"cProfile over the WSGI app alone (no sockets), {CALLS:,} keyed creates with fresh "
        "keys; and the full round trip of the same create over loopback with a keep-alive "
        "`requests.Session` (client included).",
        "",
        "| what | us per request |",
        "|---|---|",
        f"| the app (generic: route, auth, parse, key, fingerprint, claim, handler, journal) | "
        f"{generic.fmt(1)} |",
        f"| the app (phantom, with JSON Schema validation) | {phantom.fmt(1)} |",
        f"| full round trip over loopback, client included (generic) | {trip.fmt(1)} |",
        "",
        "The fake's own work is a small share of a round trip; the rest is the HTTP client, "
        "werkzeug's request parsing and the socket. Top functions inside the app (generic, "
        "cumulative us per request):",
        "",
        "| function | calls | cumulative us per request |",
        "|---|---|---|",
    ]
    for name, calls, cumulative in rows:
        lines.append(f"| `{name}` | {calls:,} | {cumulative:.1f} |")
    lines.append("")
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
