"""Calling a WSGI app in-process: its status line, headers and whole body."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["call_wsgi"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def call_wsgi(app: WsgiApp, environ: dict[str, Any]) -> tuple[str | None, list[Any], bytes]:
    """Run ``app`` on ``environ``: ``(status line, headers, body)``, the body read whole and the
    app's iterable closed; the status is ``None`` when the app never called
    ``start_response``."""
    captured: list[Any] = [None, []]

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        captured[:] = [status, headers]
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return captured[0], captured[1], body
