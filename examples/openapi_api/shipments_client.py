"""The code under test: Acme's client for its shipments API.

One idempotency key per shipment, minted before the first attempt and resent on every retry;
retries lost responses and 5xx, never 4xx.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests

RETRY_STATUSES = frozenset({500, 502, 503, 504})


class ShipmentsClient:
    def __init__(self, base_url: str, api_key: str, *, max_retries: int = 3) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["X-Acme-Key"] = api_key
        self.max_retries = max_retries

    def ship(self, order_id: str, address: str) -> dict[str, Any]:
        key = str(uuid.uuid4())
        body = {"order_id": order_id, "address": address}
        for attempt in range(self.max_retries + 1):
            try:
                response = self.session.post(
                    f"{self.base_url}/shipments", json=body, headers={"Idempotency-Key": key}
                )
            except requests.ConnectionError:
                if attempt == self.max_retries:
                    raise
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                continue
            response.raise_for_status()
            return dict(response.json())
        raise AssertionError("unreachable")

    def get(self, shipment_id: str) -> dict[str, Any]:
        response = self.session.get(f"{self.base_url}/shipments/{shipment_id}")
        response.raise_for_status()
        return dict(response.json())
