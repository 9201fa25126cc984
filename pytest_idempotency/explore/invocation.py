"""One invocation of the operation under test, in its own thread, that can be crashed.

A sync operation is ended by an asynchronous exception (:class:`ClientCrash`, a
``BaseException`` that ``except Exception`` cannot swallow); an ``async def`` operation runs in
its own event loop and is ended by cancelling its task.
"""

from __future__ import annotations

import asyncio
import ctypes
import inspect
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from .sleep import fake_sleep, forget

__all__ = ["ClientCrash", "Invocation", "Outcome"]

Operation = Callable[[], Any]


class ClientCrash(BaseException):
    """The client process died (raised into the operation by the explorer)."""


@dataclass
class Outcome:
    """How one invocation ended: ``returned``, ``raised``, ``crashed`` or ``hung``."""

    how: str
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0
    slept: float = 0.0


class Invocation:
    """Run ``operation`` once in a daemon thread; :meth:`wait`, :meth:`crash`, :meth:`abandon`."""

    def __init__(
        self, operation: Operation, clock: Clock | None, on_done: Callable[[], None]
    ) -> None:
        self._operation = operation
        self._clock = clock
        self._on_done = on_done
        self._lock = threading.Lock()
        self._finished = False
        self._injected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._slept = 0.0
        self.outcome: Outcome | None = None
        #: ``time.monotonic()`` by which the explorer calls this invocation hung.
        self.deadline = 0.0
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._target, name="explore-operation", daemon=True)

    def start(self, deadline: float) -> Invocation:
        self.deadline = deadline
        self._started = time.perf_counter()
        self._thread.start()
        return self

    # -- the thread ----------------------------------------------------------------------------

    def _target(self) -> None:
        try:
            try:
                value = self._call()
                self.outcome = Outcome("returned", value=value)
            except BaseException as exc:
                self.outcome = Outcome(self._how(exc), error=exc)
            with self._lock:
                self._finished = True
        except BaseException as exc:  # the one injected exception, during bookkeeping
            if self.outcome is None:
                self.outcome = Outcome(self._how(exc), error=exc)
            self._finished = True
        forget(threading.get_ident())
        self.outcome.seconds = time.perf_counter() - self._started
        self.outcome.slept = self._slept
        self.done.set()
        self._on_done()

    def _how(self, exc: BaseException) -> str:
        if isinstance(exc, ClientCrash) or (
            self._injected and isinstance(exc, asyncio.CancelledError)
        ):
            return "crashed"
        return "raised"

    def _note_sleep(self, seconds: float) -> None:
        self._slept += seconds

    def _call(self) -> Any:
        if self._clock is None:
            return self._invoke()
        with fake_sleep(self._clock, on_sleep=self._note_sleep):
            return self._invoke()

    def _invoke(self) -> Any:
        if inspect.iscoroutinefunction(self._operation):
            return asyncio.run(self._main(self._operation))
        result = self._operation()
        if inspect.isawaitable(result):
            return asyncio.run(self._main(lambda: result))
        return result

    async def _main(self, make: Callable[[], Awaitable[Any]]) -> Any:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        return await make()

    # -- the explorer's side -------------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)

    def crash(self) -> bool:
        """End the operation now, as a dying process would; ``False`` if it already ended."""
        with self._lock:
            if self._finished or self._injected:
                return False
            self._injected = True
            loop, task = self._loop, self._task
            if loop is not None and task is not None:
                loop.call_soon_threadsafe(task.cancel)
                return True
            ident = self._thread.ident
            if ident is None:
                return False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(ClientCrash)
            )
            return True

    def abandon(self, grace: float) -> bool:
        """Crash a hung operation and wait up to ``grace`` seconds for its thread to end."""
        self.crash()
        return self.done.wait(grace)
