"""Events: one thing that happened to a resource, with an id a receiver dedupes on."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..jsontext import encoder
from ..variant import approx_size
from .spec import Envelope, EventFacts, EventSpec

if TYPE_CHECKING:
    from ..variant import Variant

__all__ = ["Event", "EventFactory", "builtin_spec", "event_size", "spec_for"]


#: One encoder for every event (compact, anything unusual as its ``str``).
_ENCODE = encoder(default=str)


@dataclass
class Event:
    """One event as emitted. Its bytes (:attr:`body`) are rendered once, on first use, from a
    copy of the object taken when it was emitted; every delivery carries the same bytes."""

    id: str
    type: str
    created: float
    facts: EventFacts = field(repr=False)
    envelope_of: Envelope = field(repr=False)
    resource_id: str | None = None
    destination: str | None = None
    tenant: str | None = None
    seq: int = 0
    _body: bytes | None = field(default=None, repr=False)

    @property
    def body(self) -> bytes:
        """The exact bytes every delivery of this event carries."""
        if self._body is None:
            try:
                self._body = _ENCODE(self.envelope_of(self.facts)).encode()
            except Exception as exc:
                name = getattr(self.envelope_of, "__qualname__", repr(self.envelope_of))
                raise ValueError(
                    f"the webhook envelope {name} raised {type(exc).__name__}: {exc} for event "
                    f"{self.id} ({self.type}); it takes EventFacts and returns a JSON-able dict"
                ) from exc
        return self._body

    def json(self) -> dict[str, Any]:
        """A fresh copy of the envelope."""
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded

    @property
    def envelope(self) -> dict[str, Any]:
        """The envelope as delivered (parsed from :attr:`body`)."""
        return self.json()


def event_size(event: Event) -> int:
    """About how many bytes ``event`` holds: its body once rendered, else an estimate."""
    if event._body is not None:
        return len(event._body)
    obj = event.facts.obj
    return len(event.id) + approx_size(obj if isinstance(obj, dict) else dict(obj))


def _copy(value: Any) -> Any:
    """A copy of the JSON-like structure (dicts and lists copied, leaves shared)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class EventFactory:
    """Numbers events and keeps what their envelope is rendered from."""

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
        snapshot: dict[str, Any] = _copy(dict(obj))  # later changes to obj do not show
        facts = EventFacts(event_id, event_type, now, snapshot, request_id, key)
        field_name = spec.destination_field
        destination = snapshot.get(field_name) if field_name else None
        return Event(
            id=event_id,
            type=event_type,
            created=now,
            facts=facts,
            envelope_of=spec.envelope,
            resource_id=str(snapshot["id"]) if "id" in snapshot else None,
            destination=destination if isinstance(destination, str) and destination else None,
            tenant=tenant,
            seq=seq,
        )


def _suffix(seq: int) -> str:
    """Four stable hex digits so ids look like ``evt_000001b1e9`` rather than a counter."""
    return format(seq * 2654435761 % 65536, "04x")


def builtin_spec(name: str) -> EventSpec | None:
    """The ``EVENTS`` a built-in provider module declares, or ``None``."""
    import importlib

    from ..providers import BUILTIN_VARIANTS

    module_name = BUILTIN_VARIANTS.get(name)
    if module_name is None:
        return None
    module = importlib.import_module(f"pytest_idempotency.providers.{module_name}")
    spec = getattr(module, "EVENTS", None)
    return spec if isinstance(spec, EventSpec) else None


def spec_for(variant: Variant) -> EventSpec:
    """The variant's own ``events``, else its provider's ``EVENTS``, else the generic spec."""
    own = getattr(variant, "events", None)
    if isinstance(own, EventSpec):
        return own
    return builtin_spec(variant.name) or EventSpec()
