"""Real retry layers against real faults: urllib3 ``Retry``, tenacity around httpx, and a
hand-written loop.

A retry that resends the key of the first attempt survives a lost response with exactly one
side effect; a retry that mints a new key per attempt creates twice, and the fake says so. The
table of which layer retries which fault is measured here (and printed in docs/faults.md).
Backoff never costs wall time: ``backoff_factor=0``, ``wait_none()``, or a backoff that runs
on the fake clock.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import tenacity
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pytest_idempotency import IdempotentAPI

PATH = "/v1/things"
BODY = {"name": "lamp"}
KEY = "order-42"
STATUSES = [500, 502, 503, 504]

# A client creates one thing. ``key`` is the key it resends on every attempt; ``None`` means
# the bug under test: a fresh key is minted for every attempt.
Create = Callable[[IdempotentAPI, "str | None"], Any]


# -- urllib3 Retry (under requests) ------------------------------------------------------------


class _KeyPerAttemptConnection(urllib3.connection.HTTPConnection):
    """A transport that stamps a fresh key on every request it sends: below urllib3's retry
    loop, so every retry goes out under a new key (the bug)."""

    def request(
        self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any
    ) -> None:
        stamped = {**(headers or {}), "Idempotency-Key": uuid.uuid4().hex}
        super().request(method, url, body=body, headers=stamped, **kwargs)


class _KeyPerAttemptPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _KeyPerAttemptConnection


class _KeyPerAttemptAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "http": _KeyPerAttemptPool,
        }


def retry_any_method() -> Retry:
    """POST allowed (``allowed_methods=None``), no backoff."""
    return Retry(total=3, allowed_methods=None, status_forcelist=STATUSES, backoff_factor=0)


def urllib3_create(api: IdempotentAPI, key: str | None) -> requests.Response:
    adapter_cls = HTTPAdapter if key is not None else _KeyPerAttemptAdapter
    with requests.Session() as session:
        session.mount("http://", adapter_cls(max_retries=retry_any_method()))
        return session.post(api.url_for(PATH), timeout=2.0, **api.request_kwargs(BODY, key=key))


# -- tenacity around httpx ---------------------------------------------------------------------


def tenacity_create(api: IdempotentAPI, key: str | None) -> httpx.Response:
    @tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_none(),
        retry=tenacity.retry_if_exception_type(httpx.TransportError),
        reraise=True,
    )
    def create(client: httpx.Client) -> httpx.Response:
        # The bug: a key made inside the retried function is new on every attempt.
        attempt_key = key if key is not None else uuid.uuid4().hex
        return client.post(api.url_for(PATH), **api.request_kwargs(BODY, key=attempt_key))

    with httpx.Client(timeout=2.0) as client:
        return create(client)


# -- a hand-written loop -----------------------------------------------------------------------


def loop_create(api: IdempotentAPI, key: str | None, attempts: int = 3) -> requests.Response:
    last: Exception | None = None
    with requests.Session() as session:
        for _ in range(attempts):
            attempt_key = key if key is not None else uuid.uuid4().hex
            try:
                response = session.post(
                    api.url_for(PATH), timeout=2.0, **api.request_kwargs(BODY, key=attempt_key)
                )
            except requests.ConnectionError as exc:
                last = exc
                continue
            if response.status_code < 500:
                return response
            last = requests.HTTPError(f"{response.status_code}", response=response)
    assert last is not None
    raise last


CLIENTS: dict[str, Create] = {
    "urllib3_retry": urllib3_create,
    "tenacity_httpx": tenacity_create,
    "hand_loop": loop_create,
}


@pytest.mark.parametrize("create", CLIENTS.values(), ids=CLIENTS.keys())
def test_retry_reusing_the_key_survives_a_lost_response_once(
    idempotent_api: IdempotentAPI, create: Create
) -> None:
    idempotent_api.faults.drop_response()

    response = create(idempotent_api, KEY)

    assert response.status_code == 201
    assert [(e.wire, e.decision, e.key) for e in idempotent_api.exchanges] == [
        ("dropped", "new", KEY),
        ("response", "replayed", KEY),
    ]
    idempotent_api.assert_exactly_once()
    idempotent_api.assert_same_key_on_retries()
    # The caller gets the object the lost attempt created.
    assert response.json()["id"] == idempotent_api.side_effects[0].resource_id


@pytest.mark.parametrize("create", CLIENTS.values(), ids=CLIENTS.keys())
def test_retry_minting_a_key_per_attempt_creates_twice(
    idempotent_api: IdempotentAPI, create: Create
) -> None:
    idempotent_api.faults.drop_response()

    response = create(idempotent_api, None)

    assert response.status_code == 201
    first, second = idempotent_api.exchanges
    assert (first.decision, second.decision) == ("new", "new")
    assert first.key != second.key
    assert len(idempotent_api.side_effects) == 2
    with pytest.raises(AssertionError, match="2 different keys") as failure:
        idempotent_api.assert_exactly_once()
    assert str(first.key) in str(failure.value)
    assert str(second.key) in str(failure.value)
    with pytest.raises(AssertionError, match="a retry must resend the key of the first attempt"):
        idempotent_api.assert_same_key_on_retries()


@pytest.mark.asyncio
@pytest.mark.parametrize(("reuse", "effects"), [(True, 1), (False, 2)])
async def test_async_retry_loop_reusing_or_minting_keys(
    idempotent_api: IdempotentAPI, reuse: bool, effects: int
) -> None:
    idempotent_api.faults.drop_response()
    async with httpx.AsyncClient(timeout=2.0) as client:
        for _ in range(3):
            key = KEY if reuse else uuid.uuid4().hex
            try:
                response = await client.post(
                    idempotent_api.url_for(PATH), **idempotent_api.request_kwargs(BODY, key=key)
                )
            except httpx.TransportError:
                continue
            break
    assert response.status_code == 201
    assert len(idempotent_api.side_effects) == effects
    assert idempotent_api.journal[-1].decision == ("replayed" if reuse else "new")


# -- which layer retries which fault (measured) ------------------------------------------------


def _urllib3_layer(retry: Retry) -> Callable[[IdempotentAPI], Any]:
    def send(api: IdempotentAPI) -> Any:
        with requests.Session() as session:
            session.mount("http://", HTTPAdapter(max_retries=retry))
            return session.post(api.url_for(PATH), timeout=0.2, **api.request_kwargs(BODY, key=KEY))

    return send


def _httpx_transport_layer(api: IdempotentAPI) -> Any:
    with httpx.Client(timeout=0.2, transport=httpx.HTTPTransport(retries=2)) as client:
        return client.post(api.url_for(PATH), **api.request_kwargs(BODY, key=KEY))


def _tenacity_layer(api: IdempotentAPI) -> Any:
    with httpx.Client(timeout=0.2) as client:
        for attempt in tenacity.Retrying(
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_none(),
            retry=tenacity.retry_if_exception_type(httpx.TransportError),
            reraise=True,
        ):
            with attempt:
                return client.post(api.url_for(PATH), **api.request_kwargs(BODY, key=KEY))
    raise AssertionError("unreachable")  # pragma: no cover


LAYERS: dict[str, Callable[[IdempotentAPI], Any]] = {
    "urllib3_any_method": _urllib3_layer(retry_any_method()),
    "urllib3_default_methods": _urllib3_layer(
        Retry(total=3, status_forcelist=STATUSES, backoff_factor=0)
    ),
    "httpx_transport_retries": _httpx_transport_layer,
    "tenacity_transport_errors": _tenacity_layer,
}

FAULTS: dict[str, Callable[[IdempotentAPI], Any]] = {
    "drop": lambda api: api.faults.drop_response(),
    "reset": lambda api: api.faults.reset_connection(),
    "slow": lambda api: api.faults.slow_response(seconds=None),
    "error_before_503": lambda api: api.faults.error_before_commit(503),
    "error_before_409": lambda api: api.faults.error_before_commit(409),
    "error_after_500": lambda api: api.faults.error_after_commit(500),
    "garbage_truncated": lambda api: api.faults.garbage(style="truncated"),
    "garbage_status_line": lambda api: api.faults.garbage(style="status_line"),
}

# (layer, fault) -> what the caller gets: the status after the retries, or the exception class
# name, plus the side effects on the server. Missing pairs are "not retried": the caller sees
# the fault itself (see NOT_RETRIED) and the journal holds one request.
RETRIED: dict[tuple[str, str], tuple[int, int]] = {
    ("urllib3_any_method", "drop"): (201, 1),
    ("urllib3_any_method", "reset"): (201, 1),
    ("urllib3_any_method", "slow"): (201, 1),
    ("urllib3_any_method", "error_before_503"): (201, 1),
    ("urllib3_any_method", "error_after_500"): (201, 2),  # generic does not cache 5xx
    ("urllib3_any_method", "garbage_status_line"): (201, 1),
    ("tenacity_transport_errors", "drop"): (201, 1),
    ("tenacity_transport_errors", "reset"): (201, 1),
    ("tenacity_transport_errors", "slow"): (201, 1),
    ("tenacity_transport_errors", "garbage_truncated"): (201, 1),
    ("tenacity_transport_errors", "garbage_status_line"): (201, 1),
}
NOT_RETRIED: dict[str, dict[str, str | int]] = {
    "requests": {
        "drop": "ConnectionError",
        "reset": "ConnectionError",
        "slow": "ReadTimeout",
        "error_before_503": 503,
        "error_before_409": 409,
        "error_after_500": 500,
        "garbage_truncated": "ChunkedEncodingError",
        "garbage_status_line": "ConnectionError",
    },
    "httpx": {
        "drop": "RemoteProtocolError",
        "reset": "ReadError",
        "slow": "ReadTimeout",
        "error_before_503": 503,
        "error_before_409": 409,
        "error_after_500": 500,
        "garbage_truncated": "RemoteProtocolError",
        "garbage_status_line": "RemoteProtocolError",
    },
}


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("layer", LAYERS, ids=str)
def test_which_layer_retries_which_fault(
    idempotent_api: IdempotentAPI, layer: str, fault: str
) -> None:
    scripted = FAULTS[fault](idempotent_api)
    try:
        outcome: str | int = LAYERS[layer](idempotent_api).status_code
    except (requests.RequestException, httpx.HTTPError) as exc:
        outcome = type(exc).__name__
    finally:
        scripted.release()  # a slow response goes out now (the client stopped waiting)

    if (layer, fault) in RETRIED:
        status, effects = RETRIED[(layer, fault)]
        assert outcome == status
        assert len(idempotent_api.exchanges) == 2
        assert len(idempotent_api.side_effects) == effects
    else:
        family = "requests" if layer.startswith("urllib3") else "httpx"
        assert outcome == NOT_RETRIED[family][fault]
        assert len(idempotent_api.exchanges) == 1


# -- time: backoff on the fake clock -----------------------------------------------------------


def test_clock_advance_never_sleeps(
    idempotent_api: IdempotentAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"clock.advance() slept {seconds} s")

    before = idempotent_api.clock.now()
    with monkeypatch.context() as patch:
        patch.setattr(time, "sleep", no_sleep)
        idempotent_api.clock.advance(days=365)
    assert idempotent_api.clock.now() - before >= 365 * 86400


@pytest.mark.parametrize(
    ("backoff", "decisions", "effects"),
    [
        (3600.0, ["new", "replayed"], 1),  # within the 24 h TTL: replayed
        (86400.0, ["new", "new"], 2),  # the record expired while the client was retrying
    ],
    ids=["within_ttl", "after_ttl"],
)
def test_record_that_expires_while_the_client_retries_runs_again(
    idempotent_api: IdempotentAPI, backoff: float, decisions: list[str], effects: int
) -> None:
    idempotent_api.faults.drop_response()
    waited: list[float] = []

    def sleep_on_fake_clock(seconds: float) -> None:
        waited.append(seconds)
        idempotent_api.clock.advance(seconds)

    @tenacity.retry(
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_fixed(backoff),
        retry=tenacity.retry_if_exception_type(httpx.TransportError),
        sleep=sleep_on_fake_clock,
        reraise=True,
    )
    def create(client: httpx.Client) -> httpx.Response:
        return client.post(
            idempotent_api.url_for(PATH), **idempotent_api.request_kwargs(BODY, key=KEY)
        )

    started = time.monotonic()
    with httpx.Client(timeout=2.0) as client:
        response = create(client)

    assert time.monotonic() - started < backoff  # the backoff cost no wall time
    assert waited == [backoff]
    assert response.status_code == 201
    assert [e.decision for e in idempotent_api.exchanges] == decisions
    idempotent_api.assert_same_key_on_retries()
    idempotent_api.assert_side_effects(effects, key=KEY)
    if effects == 2:
        with pytest.raises(AssertionError, match="expired"):
            idempotent_api.assert_exactly_once()
