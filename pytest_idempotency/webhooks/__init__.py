"""At-least-once webhooks from the fake: events, destinations, delivery on the fake clock,
delivery faults, the delivery journal and signatures (``docs/webhooks.md``)."""

from __future__ import annotations

from .destinations import Answer, DestinationError, WebhookRequest, is_loopback_url
from .events import Event, spec_for
from .faults import DELIVERY_FAULT_KINDS, DeliveryFault, DeliveryFaultError, DeliveryFaultPlan
from .hub import Webhooks
from .journal import Attempt, DeliveryJournal
from .registry import close_for, hub_for
from .scheduler import Endpoint, Job
from .signing import sign, verify
from .spec import DEFAULT_SECRET, EventFacts, EventSpec, generic_envelope

__all__ = [
    "DEFAULT_SECRET",
    "DELIVERY_FAULT_KINDS",
    "Answer",
    "Attempt",
    "DeliveryFault",
    "DeliveryFaultError",
    "DeliveryFaultPlan",
    "DeliveryJournal",
    "DestinationError",
    "Endpoint",
    "Event",
    "EventFacts",
    "EventSpec",
    "Job",
    "WebhookRequest",
    "Webhooks",
    "close_for",
    "generic_envelope",
    "hub_for",
    "is_loopback_url",
    "sign",
    "spec_for",
    "verify",
]
