"""No real waiting: ``time.sleep`` and ``asyncio.sleep`` advance the fake clock instead.

Only threads registered with :func:`fake_sleep` are affected; every other thread (the server's
own among them) sleeps for real. The patch is installed while at least one thread is
registered and removed when the last one leaves, whatever happens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..clock import Clock

__all__ = ["fake_sleep", "forget", "sleeping_threads"]

T = TypeVar("T")

_real_sleep = time.sleep
_real_async_sleep = asyncio.sleep
_lock = threading.Lock()
_clocks: dict[int, tuple[Clock, Callable[[float], None] | None]] = {}


def _advance(ident: int, seconds: float) -> bool:
    entry = _clocks.get(ident)
    if entry is None:
        return False
    clock, note = entry
    wait = max(0.0, float(seconds))
    clock.advance(wait)
    if note is not None:
        note(wait)
    return True


def _patched_sleep(seconds: Any) -> None:
    if not _advance(threading.get_ident(), seconds):
        _real_sleep(seconds)
        return
    _real_sleep(0)


async def _patched_async_sleep(delay: float, result: Any = None) -> Any:
    if not _advance(threading.get_ident(), delay):
        return await _real_async_sleep(delay, result)
    return await _real_async_sleep(0, result)


def _install() -> None:
    time.sleep = _patched_sleep
    asyncio.sleep = _patched_async_sleep


def _uninstall() -> None:
    time.sleep = _real_sleep
    asyncio.sleep = _real_async_sleep


def sleeping_threads() -> int:
    """How many threads sleep on a fake clock right now."""
    with _lock:
        return len(_clocks)


def forget(ident: int) -> None:
    """Drop thread ``ident`` from the fake clock (after it ended, however it ended), so a later
    thread that reuses its id sleeps for real."""
    with _lock:
        if _clocks.pop(ident, None) is not None and not _clocks:
            _uninstall()


@contextmanager
def fake_sleep(
    clock: Clock,
    *,
    ident: int | None = None,
    on_sleep: Callable[[float], None] | None = None,
) -> Iterator[None]:
    """While inside, ``time.sleep(s)`` and ``await asyncio.sleep(s)`` called from the thread
    ``ident`` (default: this one) return at once and move ``clock`` forward by ``s``.

    ``with fake_sleep(idempotent_api.clock): client.create(...)`` makes a client's backoff
    free in wall time while a TTL still expires as if it had slept."""
    key = threading.get_ident() if ident is None else ident
    with _lock:
        if not _clocks:
            _install()
        _clocks[key] = (clock, on_sleep)
    try:
        yield
    finally:
        with _lock:
            _clocks.pop(key, None)
            if not _clocks:
                _uninstall()
