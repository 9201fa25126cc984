"""The standalone server serving a team's own API as a process: from an OpenAPI document
(with an overlay, a contract file and --set), from a contract file, and from a module that
registers Python variants. All processes start together; each is then used over HTTP only."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_specs import DATA, spec

FIRST_LINE = re.compile(r"pytest-idempotency: serving (\S+) on (http://127\.0\.0\.1:\d+)")

CONTRACT = """
name = "acme-orders"
description = "Orders, stated without Python"

[policy]
key_header = "Idempotency-Key"
keyed_routes = ["POST /orders"]
ttl = 3600
replay_headers = [["Idempotent-Replayed", "true"]]
mismatch = { status = 422, code = "key_reused", message = "Key '{key}' was used for another order." }

[credential]
scheme = "header"
header = "X-API-Key"
example = "acme_key"

[errors.template]
errors = [{ code = "{code}", detail = "{message}" }]
trace_id = "{request_id}"

[example]
route = "POST /orders"
body = { sku = "tea" }

[[routes]]
route = "POST /orders"
resource = "order"
id_prefix = "ord"
schema = { type = "object", required = ["sku"], properties = { sku = { type = "string" } } }
response = { status = "pending" }

[[routes]]
route = "GET /orders/{id}"
resource = "order"
"""

PLUGIN = """
from pytest_idempotency import Policy, Route, Variant, default_create_handler, register_variant

register_variant(Variant(
    name="acme-python",
    policy=Policy(ttl=60),
    routes=(Route("POST /things", default_create_handler("thing", "thg")),),
))
"""

OVERLAY_CONTRACT = """
[policy]
ttl = 120
[credential]
scheme = "basic"
example = "u:p"
"""


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_idempotency", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    (folder / "acme.toml").write_text(CONTRACT)
    (folder / "acme_plugin.py").write_text(PLUGIN)
    (folder / "basic.toml").write_text(OVERLAY_CONTRACT)
    path = os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])
    procs = {
        "openapi": _start("--openapi", str(DATA / "petstore-3.0.yaml"), "--set", "ttl=60"),
        "contract": _start("--contract", str(folder / "acme.toml")),
        "plugin": _start(
            "--plugin", "acme_plugin", "--variant", "acme-python", env={"PYTHONPATH": path}
        ),
        "both": _start(
            "--openapi", str(DATA / "petstore-3.0.yaml"), "--contract", str(folder / "basic.toml")
        ),
        "adyen": _start(
            "--openapi",
            str(spec("adyen-transfers-v4.json")),
            "--overlay",
            str(DATA / "adyen-transfers-overlay.json"),
        ),
    }
    urls = {}
    try:
        for label, proc in procs.items():
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            found = FIRST_LINE.fullmatch(line)
            assert found, (
                f"{label}: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
            )
            urls[label] = (found.group(1), found.group(2))
        yield urls
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.communicate(timeout=20)
            assert proc.returncode == 0


def test_serve_openapi_replays_a_retried_create(servers):
    name, url = servers["openapi"]
    assert name == "pet-store"
    with httpx.Client(base_url=url, headers={"Authorization": "Bearer t"}) as client:
        health = client.get("/__admin/health").json()
        assert health["variant"] == "pet-store"
        headers = {"Idempotency-Key": "k1"}
        first = client.post("/v1/pets", json={"name": "a", "age": 1}, headers=headers)
        again = client.post("/v1/pets", json={"name": "a", "age": 1}, headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert client.get(f"/v1/pets/{first.json()['id']}").status_code == 200
        assert client.post("/__admin/reset", json={}).status_code == 200  # found by name
        assert client.get(f"/v1/pets/{first.json()['id']}").status_code == 404


def test_serve_contract_states_policy_credential_errors_and_routes(servers):
    name, url = servers["contract"]
    assert name == "acme-orders"
    with httpx.Client(base_url=url) as client:
        assert client.post("/orders", json={"sku": "x"}).status_code == 401
        headers = {"X-API-Key": "acme_key", "Idempotency-Key": "o1"}
        first = client.post("/orders", json={"sku": "tea"}, headers=headers)
        assert first.status_code == 201
        order = first.json()
        assert order["status"] == "pending"
        assert order["id"].startswith("ord_")
        replay = client.post("/orders", json={"sku": "tea"}, headers=headers)
        assert replay.headers["Idempotent-Replayed"] == "true"
        reused = client.post("/orders", json={"sku": "coffee"}, headers=headers)
        assert reused.status_code == 422
        assert reused.json()["errors"][0]["code"] == "key_reused"
        assert client.get(f"/orders/{order['id']}", headers=headers).json() == order


def test_serve_plugin_serves_a_registered_python_variant(servers):
    name, url = servers["plugin"]
    assert name == "acme-python"
    with httpx.Client(base_url=url) as client:
        for _ in range(2):
            client.post("/things", json={"n": 1}, headers={"Idempotency-Key": "t"})
        timeline = client.get("/__admin/journal").json()
        decisions = [e["decision"] for e in timeline["exchanges"]]
        assert decisions == ["new", "replayed"]


def test_a_contract_changes_a_document(servers):
    name, url = servers["both"]
    assert name == "pet-store"
    with httpx.Client(base_url=url) as client:
        assert (
            client.post(
                "/v1/pets", json={"name": "a", "age": 1}, headers={"Authorization": "Bearer t"}
            ).status_code
            == 401
        )
        basic = client.post("/v1/pets", json={"name": "a", "age": 1}, auth=("u", "p"))
        assert basic.status_code == 201


def test_serve_adyen_transfers_with_an_overlay(servers):
    name, url = servers["adyen"]
    assert name == "transfers-api"
    with httpx.Client(base_url=url, headers={"X-API-Key": "k", "Idempotency-Key": "t1"}) as client:
        body = {
            "amount": {"currency": "EUR", "value": 1},
            "category": "bank",
            "counterparty": {},
            "balanceAccountId": "BA1",
        }
        first = client.post("/btl/v4/transfers", json=body)
        assert first.status_code == 200
        assert client.post("/btl/v4/transfers", json=body).json() == first.json()


def test_bad_serve_input_exits_2_naming_the_fix_and_the_place(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        Path(DATA / "orders-root-extension.json")
        .read_text()
        .replace("#/components/schemas/Failure", "#/components/schemas/Nope")
    )
    cases = {
        ("--openapi", "nope.yaml"): "cannot read the OpenAPI document",
        ("--contract", "nope.toml"): "cannot read the contract file",
        ("--plugin", "no_such_module_here"): "--plugin no_such_module_here: cannot import it",
        ("--overlay", "x.json"): "--overlay changes an OpenAPI document: pass --openapi FILE too",
        ("--openapi", str(bad)): (
            "at /paths/~1orders/post/responses/422/content/application~1json/schema/$ref: "
            "the $ref '#/components/schemas/Nope' points nowhere"
        ),
    }
    running = {args: _start(*args) for args in cases}  # all at once: start-up is paid once
    for args, proc in running.items():
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 2, (args, stderr)
        assert cases[args] in stderr, (args, stderr)
        assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("label", "scheme", "header"),
    [
        ("contract", "header", "X-API-Key"),
        ("both", "basic", "Authorization"),
        ("adyen", "header", "X-API-Key"),
        ("openapi", "bearer", "Authorization"),
    ],
)
def test_the_variant_call_says_how_the_credential_is_sent_and_it_works(
    servers, label, scheme, header
):
    """A client in another language reads GET /__admin/variant and sends exactly
    ``credential.headers``: the example create is accepted; without them it is a 401."""
    _, url = servers[label]
    with httpx.Client(base_url=url) as client:
        described = client.get("/__admin/variant").json()
        credential = described["credential"]
        assert (credential["scheme"], credential["header"]) == (scheme, header)
        assert list(credential["headers"]) == [header]
        example = described["example"]
        sent = {**credential["headers"], "Idempotency-Key": f"cred-{label}"}
        made = client.request(
            example["method"], example["path"], json=example["params"], headers=sent
        )
        bare = client.request(example["method"], example["path"], json=example["params"])
    assert made.status_code < 300, made.text
    assert bare.status_code == 401


def test_a_variant_that_needs_no_credential_says_so(servers):
    _, url = servers["plugin"]
    with httpx.Client(base_url=url) as client:
        credential = client.get("/__admin/variant").json()["credential"]
    assert credential == {"scheme": "bearer", "header": "Authorization", "headers": {}}
