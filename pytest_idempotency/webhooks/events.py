"""Events: one thing that happened to a resource, with an id a receiver dedupes on."""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .spec import EventFacts, EventSpec

if TYPE_CHECKING:
    from ..variant import Variant

__all__ = ["Event", "EventFactory", "builtin_spec", "spec_for"]


@dataclass
class Event:
    """One event as emitted: the envelope and the exact bytes every delivery carries."""

    id: str
    type: str
    created: float
    envelope: dict[str, Any]
    body: bytes
    resource_id: str | None = None
    destination: str | None = None
    tenant: str | None = None
    seq: int = 0
    tags: dict[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        """A fresh copy of the envelope."""
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


def _iso(epoch: float) -> str:
    when = _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventFactory:
    """Numbers events and renders them in the variant's envelope."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def make(
        self,
        spec: EventSpec,
        event_type: str,
        obj: Mapping[str, Any],
        now: float,
        *,
        request_id: str | None = None,
        key: str | None = None,
        tenant: str | None = None,
    ) -> Event:
        with self._lock:
            seq = next(self._seq)
        event_id = f"{spec.id_prefix}{seq:06d}{_suffix(seq)}"
        snapshot = json.loads(json.dumps(dict(obj), default=str))
        facts = EventFacts(event_id, event_type, now, snapshot, request_id, key, _iso(now))
        envelope = spec.envelope(facts)
        body = json.dumps(envelope, separators=(",", ":")).encode()
        field_name = spec.destination_field
        destination = snapshot.get(field_name) if field_name else None
        return Event(
            id=event_id,
            type=event_type,
            created=now,
            envelope=envelope,
            body=body,
            resource_id=str(snapshot["id"]) if "id" in snapshot else None,
            destination=destination if isinstance(destination, str) and destination else None,
            tenant=tenant,
            seq=seq,
        )


def _suffix(seq: int) -> str:
    """A few stable letters so ids look like ``evt_000001Qx7a`` rather than a counter."""
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    value, out = seq * 2654435761 % (len(alphabet) ** 4), ""
    for _ in range(4):
        value, digit = divmod(value, len(alphabet))
        out += alphabet[digit]
    return out


def builtin_spec(name: str) -> EventSpec | None:
    """The ``EVENTS`` a built-in provider module declares, or ``None``."""
    import importlib

    if name not in {"moda", "letmepost", "whet", "stripe", "phantom", "ietf", "generic"}:
        return None
    module = importlib.import_module(f"pytest_idempotency.providers.{name}")
    spec = getattr(module, "EVENTS", None)
    return spec if isinstance(spec, EventSpec) else None


def spec_for(variant: Variant) -> EventSpec:
    """The variant's own ``events``, else its provider's ``EVENTS``, else the generic spec."""
    own = getattr(variant, "events", None)
    if isinstance(own, EventSpec):
        return own
    return builtin_spec(variant.name) or EventSpec()
