"""Who receives events: endpoints registered or routed by the test, and the implicit ones a
resource's callback URL (Moda's ``callback_url``) makes.

Both are bounded. Registered and routed endpoints are at most :data:`MAX_ENDPOINTS`; one more
is refused naming the bound (chosen: a real provider caps webhook endpoints per account,
Stripe at 16). Routing a callback URL again replaces its route. Implicit endpoints are one per
URL (the same URL, the same endpoint) and at most :data:`MAX_IMPLICIT_ENDPOINTS`: past it the
least recently used one is forgotten and counted (chosen: a provider sends to a task's
callback URL without registering anything, so a client is never refused for naming many; a
forgotten endpoint's deliveries still due are made all the same, and the next event for its URL
makes a new one).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable

from .destinations import DestinationError
from .scheduler import Endpoint

__all__ = ["MAX_ENDPOINTS", "MAX_IMPLICIT_ENDPOINTS", "EndpointBook"]

#: Most endpoints a test registers or routes.
MAX_ENDPOINTS = 100
#: Most implicit endpoints (one per callback URL) kept at once.
MAX_IMPLICIT_ENDPOINTS = 1_000


class EndpointBook:
    """The endpoints of one hub. The caller holds the hub's lock."""

    def __init__(self) -> None:
        self._explicit: list[Endpoint] = []
        self._routes: dict[str, Endpoint] = {}
        self._implicit: OrderedDict[str, Endpoint] = OrderedDict()
        self._ids = itertools.count(1)
        self._implicit_limit = MAX_IMPLICIT_ENDPOINTS
        #: Implicit endpoints forgotten past :data:`MAX_IMPLICIT_ENDPOINTS`.
        self.dropped_implicit = 0

    def next_id(self) -> str:
        return f"we_{next(self._ids)}"

    def add(self, endpoint: Endpoint, route_url: str | None) -> None:
        """A registered (or, with ``route_url``, routed) endpoint; refused past the bound."""
        replaced = self._routes.get(route_url) if route_url is not None else None
        if replaced is None and len(self._explicit) >= MAX_ENDPOINTS:
            raise DestinationError(
                f"at most {MAX_ENDPOINTS} webhook endpoints can be registered or routed; "
                "reuse one (events= filters by type) or reset the server"
            )
        if replaced is not None:
            self._explicit.remove(replaced)
        self._explicit.append(endpoint)
        if route_url is not None:
            self._routes[route_url] = endpoint

    def broadcast(self, event_type: str) -> list[Endpoint]:
        """The registered endpoints that get an event without a callback URL."""
        return [e for e in self._explicit if not e.route and e.wants(event_type)]

    def routed(self, url: str) -> Endpoint | None:
        return self._routes.get(url)

    def implicit(self, url: str, make: Callable[[str], Endpoint]) -> Endpoint:
        """The endpoint of callback URL ``url``, made with ``make(id)`` the first time."""
        endpoint = self._implicit.get(url)
        if endpoint is not None:
            self._implicit.move_to_end(url)
            return endpoint
        endpoint = self._implicit[url] = make(self.next_id())
        while len(self._implicit) > self._implicit_limit:
            self._implicit.popitem(last=False)
            self.dropped_implicit += 1
        return endpoint

    def all(self) -> list[Endpoint]:
        return [*self._explicit, *self._implicit.values()]
