"""A small, realistic retrying API client: the kind of code pytest-idempotency exists to test.

It mints one idempotency key per *logical operation* and resends it on every retry; it retries
transport failures (lost response, reset, timeout, garbled reply) and retryable statuses (409,
429, 5xx), honouring ``Retry-After``; it never retries other 4xx. ``mint_key_per_attempt=True``
reproduces the classic bug (a new key on every attempt) so the tests can show it being caught.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

RETRYABLE_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class RetriesExhausted(Exception):
    """Every attempt failed on the transport; ``last_error`` is the final one."""

    def __init__(self, attempts: int, last_error: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last_error!r}")
        self.attempts = attempts
        self.last_error = last_error


@dataclass
class KeyPlacement:
    """Where the API wants its idempotency key."""

    header: str | None = "Idempotency-Key"
    body_field: str | None = None
    structured_field: bool = False  # IETF draft: the header value is a quoted sf-string
    form_encoded: bool = False  # Stripe: application/x-www-form-urlencoded bodies


@dataclass
class RetryingClient:
    base_url: str
    credential: str | None = None
    placement: KeyPlacement = field(default_factory=KeyPlacement)
    max_retries: int = 3
    timeout: float = 2.0
    backoff: float = 0.0
    max_retry_after: float = 5.0
    mint_key_per_attempt: bool = False
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)
    attempts: int = 0

    def post(
        self, path: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> requests.Response:
        """POST one logical operation, retrying it safely under one idempotency key."""
        key = idempotency_key or str(uuid.uuid4())
        last_error: BaseException | None = None
        for attempt in range(self.max_retries + 1):
            if self.mint_key_per_attempt and attempt > 0:
                key = str(uuid.uuid4())  # the bug: every retry becomes a new operation
            self.attempts += 1
            try:
                response = self.session.post(
                    self.base_url + path, timeout=self.timeout, **self._request(params, key)
                )
            except TRANSPORT_ERRORS as exc:
                last_error = exc
                self.sleep(self.backoff * 2**attempt)
                continue
            if response.status_code in RETRYABLE_STATUSES and attempt < self.max_retries:
                self.sleep(self._wait(response, attempt))
                continue
            return response
        assert last_error is not None
        raise RetriesExhausted(self.max_retries + 1, last_error)

    def _request(self, params: Mapping[str, Any], key: str) -> dict[str, Any]:
        headers: dict[str, str] = {}
        if self.credential:
            headers["Authorization"] = f"Bearer {self.credential}"
        body = dict(params)
        placement = self.placement
        if placement.header is not None:
            headers[placement.header] = f'"{key}"' if placement.structured_field else key
        elif placement.body_field is not None:
            body[placement.body_field] = key
        if placement.form_encoded:
            return {"headers": headers, "data": body}
        return {"headers": headers, "json": body}

    def _wait(self, response: requests.Response, attempt: int) -> float:
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            try:
                return min(float(retry_after), self.max_retry_after)
            except ValueError:
                pass
        return float(self.backoff * 2**attempt)
