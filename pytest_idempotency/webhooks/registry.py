"""One :class:`Webhooks` per test state, found from what a handler holds (its resources)."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from .hub import Webhooks

if TYPE_CHECKING:
    from ..clock import Clock
    from ..variant import Resources, Variant

__all__ = ["close_for", "hub_for", "hub_of"]

_HUBS: weakref.WeakKeyDictionary[Resources, Webhooks] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def hub_for(resources: Resources, clock: Clock, variant: Variant) -> Webhooks:
    """The webhooks of the state owning ``resources`` (made on first use)."""
    with _LOCK:
        hub = _HUBS.get(resources)
        if hub is None:
            hub = _HUBS[resources] = Webhooks(resources, clock, variant)
        return hub


def hub_of(resources: Resources) -> Webhooks | None:
    """The webhooks of the state owning ``resources`` if anything used them yet."""
    with _LOCK:
        return _HUBS.get(resources)


def close_for(resources: Resources) -> None:
    """The state owning ``resources`` is being replaced: stop its webhooks."""
    with _LOCK:
        hub = _HUBS.pop(resources, None)
    if hub is not None:
        hub.close()
