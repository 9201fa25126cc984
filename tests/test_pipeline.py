"""The life of a request as named stages, and every fault kind attached to one named point.

The structure is checked where it is public (the stage names, the fault-point map, the action
table); the behaviour over a real socket: a fault at each point leaves the journal saying whether
anything was committed, exactly as its point implies, and a request refused at each stage is
journaled with what that stage decided.
"""

from __future__ import annotations

import inspect
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from pytest_idempotency import FAULT_KINDS, FAULT_POINTS, POINTS, IdempotentAPI, pipeline

PATH = "/v1/things"


def post(api: IdempotentAPI, key: str | None = "k", **kw: Any) -> Any:
    try:
        return requests.post(
            api.url_for(kw.pop("path", PATH)),
            timeout=5,
            **api.request_kwargs(kw.pop("body", {"name": "lamp"}), key=key),
            **kw,
        )
    except requests.RequestException as exc:
        return exc


def test_the_stages_run_in_the_documented_order() -> None:
    assert [name for name, _ in pipeline.STAGES] == [
        "framing",
        "route",
        "credential",
        "parse",
        "key",
        "faults",
        "arrival",
        "clock",
        "before_layer",
        "validation",
        "layer",
    ]


def test_every_fault_kind_has_an_action_and_every_point_a_place() -> None:
    assert set(pipeline.FAULT_ACTIONS) == set(FAULT_KINDS)
    stages = {name for name, _ in pipeline.STAGES}
    inside_the_layer = {"claim", "handler", "commit", "wire"}
    assert set(POINTS) == (stages & set(POINTS)) | inside_the_layer


def test_no_stage_tests_a_fault_by_kind() -> None:
    """Faults act through their point; no stage branches on a fault's kind."""
    source = inspect.getsource(pipeline)
    assert ".kind ==" not in source
    assert ".kind in " not in source


# -- each point, seen from the journal ------------------------------------------------------------

COMMITTED_AT = {point: POINTS.index(point) > POINTS.index("before_layer") for point in POINTS}
OPTIONS: dict[str, dict[str, Any]] = {
    "error_before": {"status": 503},
    "error_after": {"status": 500},
    "partial_batch": {"failures": {"*": "transient"}},
    "slow": {"seconds": 0},
    "late": {"seconds": 0},
    "in_flight": {"seconds": 0},
    "clock_jump": {"seconds": 1},
    "latency": {"seconds": 0, "times": 1},
}


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "hold"])
def test_a_fault_at_its_point_commits_exactly_when_its_point_is_past_the_layer(
    idempotent_api: IdempotentAPI, kind: str
) -> None:
    idempotent_api.faults.add(kind, seq=1, **OPTIONS.get(kind, {}))

    post(idempotent_api)

    first = idempotent_api.journal[0]
    point = FAULT_POINTS[kind]
    assert first.fault == kind
    # arrival and clock faults let the request go on: it commits like any other.
    expected = COMMITTED_AT[point] or point in ("arrival", "clock")
    assert first.committed is expected, (kind, point, first)
    assert len(idempotent_api.side_effects) == int(expected)


def test_a_hold_parks_at_the_claim_point_before_the_side_effect(
    idempotent_api: IdempotentAPI,
) -> None:
    fault = idempotent_api.faults.hold(seq=1)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, idempotent_api)
        fault.wait_until_held()
        assert idempotent_api.side_effects == []
        fault.release()
        assert pending.result(timeout=5).status_code == 201
    assert idempotent_api.journal[0].committed


# -- each stage, seen from the journal ------------------------------------------------------------


def test_the_framing_stage_refuses_a_body_over_the_limit(idempotent_api: IdempotentAPI) -> None:
    refused = post(idempotent_api, body={"name": "x" * 1_100_000})

    assert refused.status_code == 413
    assert (idempotent_api.journal[0].decision, idempotent_api.journal[0].key) == (
        "rejected",
        None,
    )


@pytest.mark.idempotency(variant="moda", assert_all_requests_were_expected=False)
def test_the_route_stage_refuses_an_unknown_path_before_the_credential(
    idempotent_api: IdempotentAPI,
) -> None:
    refused = requests.post(idempotent_api.url_for("/v1/nothing"), json={}, timeout=5)

    assert refused.status_code == 404
    first = idempotent_api.journal[0]
    assert (first.decision, first.tenant) == ("rejected", None)


@pytest.mark.idempotency(variant="moda")
def test_the_credential_stage_refuses_before_the_key_is_read(
    idempotent_api: IdempotentAPI,
) -> None:
    refused = requests.post(
        idempotent_api.url_for("/v1/tasks"),
        json={"prompt": "deck", "idempotency_key": "k"},
        timeout=5,
    )

    assert refused.status_code == 401
    assert (idempotent_api.journal[0].decision, idempotent_api.journal[0].key) == (
        "rejected",
        None,
    )


def test_the_key_stage_reads_the_key_and_counts_its_attempt(idempotent_api: IdempotentAPI) -> None:
    post(idempotent_api, key="k")
    post(idempotent_api, key="k")

    assert [(e.key, e.attempt) for e in idempotent_api.exchanges] == [("k", 1), ("k", 2)]


def test_a_request_cut_short_by_a_raw_socket_is_journaled(idempotent_api: IdempotentAPI) -> None:
    """The stages run on what the framing gave them; a peer that goes away mid-answer does not
    break the next request."""
    idempotent_api.faults.late_response(seconds=30, seq=1)
    sock = socket.create_connection(("127.0.0.1", idempotent_api.server.port), timeout=5)
    body = '{"name":"lamp"}'
    lines = [f"POST {PATH} HTTP/1.1", "Host: x", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in idempotent_api.headers("k").items()]
    head = "\r\n".join([*lines, f"Content-Length: {len(body)}", "", body])
    sock.sendall(head.encode())
    idempotent_api.journal.wait_for(lambda j: len(j) > 0 and j[0].finished.is_set())
    sock.close()

    after = post(idempotent_api, key="k")

    assert after.status_code == 201
    idempotent_api.assert_exactly_once()


@pytest.mark.idempotency(variant="moda", assert_all_bodies_were_valid=False)
def test_a_fault_for_a_later_point_is_given_back_when_validation_refuses_the_request(
    idempotent_api: IdempotentAPI,
) -> None:
    # Moda checks the body before the key: the refused request never reaches the commit or the
    # wire fault, so the drop is given back and acts on the next (valid) request instead.
    fault = idempotent_api.faults.drop_response()
    method, url, params = idempotent_api.example()
    invalid = requests.request(
        method, url, timeout=5, **idempotent_api.request_kwargs({"nonsense": 1}, key="k-invalid")
    )
    assert invalid.status_code == 422
    assert fault.fired == 0, idempotent_api.timeline()
    with pytest.raises(requests.ConnectionError):
        requests.request(
            method, url, timeout=5, **idempotent_api.request_kwargs(params, key="k-valid")
        )
    assert fault.fired == 1
    assert [e.wire for e in idempotent_api.exchanges] == ["response", "dropped"]
