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
#: States already replaced: a hub asked for one of them is born closed, never registered.
_CLOSED: weakref.WeakSet[Resources] = weakref.WeakSet()
_LOCK = threading.Lock()


def hub_for(resources: Resources, clock: Clock, variant: Variant) -> Webhooks:
    """The webhooks of the state owning ``resources`` (made on first use). For a state that
    was replaced (a handler of the old state still running after a reset), a closed hub that
    delivers nothing and listens to no clock."""
    with _LOCK:
        hub = _HUBS.get(resources)
        if hub is None:
            hub = Webhooks(resources, clock, variant)
            if resources in _CLOSED:
                hub.close()
            else:
                _HUBS[resources] = hub
        return hub


def hub_of(resources: Resources) -> Webhooks | None:
    """The webhooks of the state owning ``resources`` if anything used them yet."""
    with _LOCK:
        return _HUBS.get(resources)


def close_for(resources: Resources) -> None:
    """The state owning ``resources`` is being replaced: stop its webhooks."""
    with _LOCK:
        _CLOSED.add(resources)
        hub = _HUBS.pop(resources, None)
    if hub is not None:
        hub.close()
