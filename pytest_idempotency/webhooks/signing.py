"""Webhook signatures in Stripe's scheme: ``t=<unix time>,v1=<hex HMAC-SHA256("t.payload")>``.

``stripe.Webhook.construct_event(payload, header, secret)`` accepts what :func:`sign` makes.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["sign", "verify"]


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The header value for ``payload`` signed with ``secret`` at ``timestamp``."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(payload: bytes, header: str, secret: str) -> bool:
    """Whether ``header`` carries a valid ``v1`` signature of ``payload`` (no time check)."""
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for name, value in parts if name.strip() == "t"]
    if not stamps or not stamps[0].strip().isdigit():
        return False
    expected = sign(payload, secret, int(stamps[0])).rsplit("v1=", 1)[1]
    return any(
        hmac.compare_digest(expected, value.strip()) for name, value in parts if name == "v1"
    )
