"""Webhook receivers for the tests: written right and written wrong, served on loopback.

A receiver keeps its own state in a :class:`Ledger` (its "database"). ``Ledger.has`` is the
read of a check-then-act: it calls ``webhooks.checkpoint()``, so while the fake delivers
concurrent copies both reads happen before either write, every time (no timing luck).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from pytest_idempotency.webhooks import Webhooks

Handler = Callable[["Ledger", dict[str, Any]], None]


class Ledger:
    """What a receiver did: ``actions`` holds one event id per action taken."""

    def __init__(self, hooks: Webhooks | None = None) -> None:
        self.hooks = hooks
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.actions: list[str] = []
        self.types: list[str] = []

    def has(self, key: str) -> bool:
        with self.lock:
            found = key in self.seen
        if self.hooks is not None:
            self.hooks.checkpoint()
        return found

    def add(self, key: str) -> None:
        with self.lock:
            self.seen.add(key)

    def claim(self, key: str) -> bool:
        """Atomic insert-if-absent (``INSERT ... ON CONFLICT DO NOTHING``)."""
        if self.hooks is not None:
            self.hooks.checkpoint()
        with self.lock:
            if key in self.seen:
                return False
            self.seen.add(key)
            return True

    def act(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.actions.append(event["id"])
            self.types.append(event["type"])


def right(ledger: Ledger, event: dict[str, Any]) -> None:
    """Dedupe on the event id, atomically."""
    if ledger.claim(event["id"]):
        ledger.act(event)


def no_dedupe(ledger: Ledger, event: dict[str, Any]) -> None:
    ledger.act(event)


def check_then_act(ledger: Ledger, event: dict[str, Any]) -> None:
    """Dedupe on the event id, but read then write: two copies at once both get through."""
    if not ledger.has(event["id"]):
        ledger.act(event)
        ledger.add(event["id"])


def wrong_field(ledger: Ledger, event: dict[str, Any]) -> None:
    """Dedupe atomically, but on the resource (task, post, run) instead of the event."""
    data = event["data"]
    data = data["object"] if isinstance(data.get("object"), dict) else data  # Stripe's shape
    key = str(data.get("id") or data.get("postId") or data.get("run_id"))
    if ledger.claim(key):
        ledger.act(event)


RECEIVERS: dict[str, Handler] = {
    "right": right,
    "no_dedupe": no_dedupe,
    "check_then_act": check_then_act,
    "wrong_field": wrong_field,
}


def wsgi_receiver(handler: Handler, ledger: Ledger, status: Iterable[int] = ()) -> Any:
    """A WSGI app that hands each delivery to ``handler``; answers the ``status`` values in
    turn first (e.g. ``[500, 503]``), then 200."""
    script = list(status)
    script_lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with script_lock:
            scripted = script.pop(0) if script else None
        if scripted is not None:
            return Response("scripted", status=scripted)(environ, start_response)
        handler(ledger, json.loads(request.get_data()))
        return Response("ok")(environ, start_response)

    return app


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Served:
    """A WSGI app on a real loopback socket, one thread per request."""

    def __init__(self, app: Any) -> None:
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_Quiet
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
