"""Variants read from documents: how long loading Adyen Checkout v71 (512 KB) takes, and the
app time of a keyed create through document-built variants against built-in ``phantom``.

The app time is the CPU time of the WSGI app alone (no sockets), measured side by side in each
round (the order alternates), so the figure is a ratio: document variant / phantom. The first request
of each document variant, which builds its schema and validator, is made before timing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

from benchmarks.common import Spread, spread
from pytest_idempotency import App, Variant, get_variant, variant_from_openapi
from pytest_idempotency.api import credential_headers

ROOT = Path(__file__).resolve().parent.parent
SPECS = Path(os.environ.get("PYTEST_IDEMPOTENCY_SPECS") or ROOT.parent / "shared" / "specs")
CHECKOUT = SPECS / "adyen-checkout-v71.json"
PETSTORE = ROOT / "tests" / "data" / "petstore-3.0.yaml"
CALLS = 300
ROUNDS = 21
PAYMENT = {
    "amount": {"currency": "EUR", "value": 1000},
    "reference": "order-1",
    "merchantAccount": "TestMerchant",
    "paymentMethod": {"type": "scheme", "encryptedCardNumber": "test_4111111111111111"},
    "returnUrl": "https://example.com/return",
}


def load_time(rounds: int = ROUNDS) -> Spread:
    """Seconds to build the variant from Adyen Checkout v71 (the package already imported)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        variant_from_openapi(CHECKOUT)
        times.append(time.perf_counter() - start)
    return spread(times)


def _environs(variant: Variant, request: tuple[str, str, dict[str, Any]], count: int) -> list[Any]:
    method, path, body = request
    headers = {"Content-Type": "application/json", **credential_headers(variant, None)}
    out = []
    for n in range(count):
        key = f"bench-key-{n:020d}"
        payload = dict(body)
        if variant.policy.key_header is not None:
            headers[variant.policy.key_header] = key
        else:
            payload[str(variant.policy.key_field)] = key
        data = json.dumps(payload).encode()
        out.append(
            EnvironBuilder(path=path, method=method, data=data, headers=headers).get_environ()
        )
    return out


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    if not status.startswith("2"):
        raise AssertionError(f"the benchmark request failed: {status}")
    return lambda data: None


def _per_call(app: App, environs: list[Any]) -> float:
    """Microseconds of this thread's CPU per call (CPU time, not wall time: six processes
    sharing two cores make wall time mostly a measure of the neighbours)."""
    app.reset()
    start = time.thread_time()
    for environ in environs:
        app(environ, _start_response)
    return (time.thread_time() - start) / len(environs) * 1e6


def app_costs(rounds: int = ROUNDS) -> dict[str, tuple[Spread, Spread]]:
    """Per document variant: (its microseconds per keyed create, ratio to phantom)."""
    phantom = get_variant("phantom")
    cases = {
        "phantom": (phantom, phantom.example),
        "Adyen Checkout POST /v71/payments": (
            variant_from_openapi(CHECKOUT),
            ("POST", "/v71/payments", PAYMENT),
        ),
        "petstore (3.0 YAML) POST /v1/pets": (
            variant_from_openapi(PETSTORE),
            ("POST", "/v1/pets", {"name": "Rex", "age": 3}),
        ),
    }
    apps = {name: App(variant) for name, (variant, _) in cases.items()}
    for name, (variant, request) in cases.items():  # warm up: schemas and validators
        _per_call(apps[name], _environs(variant, request, 20))
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(rounds):
        order = list(cases) if round_ % 2 == 0 else list(reversed(cases))
        for name in order:
            variant, request = cases[name]
            times[name].append(_per_call(apps[name], _environs(variant, request, CALLS)))
    base = times["phantom"]
    return {
        name: (spread(values), spread([v / b for v, b in zip(values, base, strict=True)]))
        for name, values in times.items()
        if name != "phantom"
    } | {"phantom": (spread(base), spread([1.0] * len(base)))}


def run() -> dict[str, Any]:
    return {"load": load_time(), "costs": app_costs()}


def report(result: dict[str, Any]) -> list[str]:
    load: Spread = result["load"]
    lines = [
        "## Variants from OpenAPI documents",
        "",
        "Loading Adyen Checkout v71 (512 KB, OpenAPI 3.1, `$ref` everywhere) with "
        "`variant_from_openapi`, the package already imported (wall time); and the WSGI app's CPU "
        "time per keyed "
        f"create with fresh keys ({CALLS:,} per round, {ROUNDS} rounds, side by side with "
        "built-in `phantom`, no sockets). Validators are compiled, and checked against their "
        "metaschema, when the app takes the variant, before timing.",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        f"| load Adyen Checkout v71 | {load.fmt(3, ' s')} | <= 1 s |",
    ]
    costs = result["costs"]
    phantom_us, _ = costs["phantom"]
    lines.append(f"| phantom keyed create (app time) | {phantom_us.fmt(1, ' us')} | (baseline) |")
    for name, (micro, ratio) in costs.items():
        if name == "phantom":
            continue
        lines.append(
            f"| {name} (app time) | {micro.fmt(1, ' us')}; {ratio.fmt(2, 'x')} phantom | <= 1.5x |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    for line in report(run()):
        print(line)
