"""The code under test: Acme's own client for its orders API.

One idempotency key per logical operation, resent on every retry; retries lost responses,
409 (the original is still in flight) and 5xx; never retries other 4xx.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

RETRY_STATUSES = frozenset({409, 500, 502, 503, 504})


class OrderError(Exception):
    """The API refused the request: ``status`` and Acme's error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class OrdersClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.max_retries = max_retries
        self.sleep = sleep
        self.session = requests.Session()

    def create_order(self, sku: str, quantity: int, *, key: str | None = None) -> dict[str, Any]:
        return self._post("/orders", {"sku": sku, "quantity": quantity}, key)

    def refund(self, order_id: str, amount: int, *, key: str | None = None) -> dict[str, Any]:
        return self._post(f"/orders/{order_id}/refunds", {"amount": amount}, key)

    def _post(self, path: str, body: dict[str, Any], key: str | None) -> dict[str, Any]:
        key = key or str(uuid.uuid4())  # minted once, before the first attempt
        headers = {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": key}
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self.session.post(
                    self.base_url + path, json=body, headers=headers, timeout=5
                )
            except requests.ConnectionError:
                if last:
                    raise
                self.sleep(0.1 * 2**attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                self.sleep(0.1 * 2**attempt)
                continue
            if response.ok:
                result: dict[str, Any] = response.json()
                return result
            error = response.json()["errors"][0]
            raise OrderError(response.status_code, error["code"], error["message"])
        raise AssertionError("unreachable")  # pragma: no cover
