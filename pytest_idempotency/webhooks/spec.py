"""What a variant's webhooks look like, as data: event ids, envelope, signing, retry schedule.

Providers declare one :class:`EventSpec` each (``EVENTS`` at the end of their module); a team's
own variant sets ``Variant(events=EventSpec(...))``. A test overrides any field with
``idempotent_api.webhooks.configure(...)``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_SECRET", "Envelope", "EventSpec", "generic_envelope"]

#: The signing secret every endpoint gets unless the test passes ``secret=`` (chosen).
DEFAULT_SECRET = "whsec_test_secret"


@dataclass(frozen=True)
class EventFacts:
    """What an envelope is built from."""

    event_id: str
    type: str
    created: float
    obj: Mapping[str, Any]
    request_id: str | None = None
    key: str | None = None

    @property
    def created_iso(self) -> str:
        """``created`` as ISO-8601 UTC with milliseconds, e.g. ``2026-12-01T09:00:00.000Z``."""
        when = _dt.datetime.fromtimestamp(self.created, tz=_dt.timezone.utc)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: ``(facts) -> JSON-able envelope``.
Envelope = Callable[[EventFacts], dict[str, Any]]


def generic_envelope(facts: EventFacts) -> dict[str, Any]:
    """``{"id", "type", "created_at", "data": {...}}``."""
    return {
        "id": facts.event_id,
        "type": facts.type,
        "created_at": facts.created_iso,
        "data": dict(facts.obj),
    }


@dataclass(frozen=True)
class EventSpec:
    """One variant's webhooks.

    ``schedule`` is the wait (seconds on the fake clock) after each failed attempt: its length
    plus one is the number of attempts. ``signature_header`` (``None``: unsigned) carries
    ``t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload">`` with the endpoint's secret.
    ``destination_field`` names the object field holding a per-resource callback URL (Moda's
    ``callback_url``); events of an object that has one go there only.
    """

    id_prefix: str = "evt_"
    envelope: Envelope = generic_envelope
    types: tuple[str, ...] = ()
    schedule: tuple[float, ...] = (30.0, 120.0, 600.0, 3600.0, 21600.0)
    signature_header: str | None = "Webhook-Signature"
    timeout: float = 10.0
    destination_field: str | None = None
    user_agent: str = "pytest-idempotency-webhooks/1"
    #: Per event type, seconds on the fake clock before a scheduled event fires (overrides the
    #: provider's ``after=``), e.g. ``{"task.completed": 5}``.
    after: Mapping[str, float] = field(default_factory=dict)
    extra_headers: tuple[tuple[str, str], ...] = ()
