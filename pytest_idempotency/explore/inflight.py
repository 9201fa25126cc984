"""The retry meets the original still running, deterministically.

``InFlight`` parks request ``seq`` at its claim (a ``hold`` fault) until the next request with
its key has been decided (under a policy whose duplicates wait for the original: until it has
arrived), then lets it complete. Until the original has finished, the request after that
sibling (attempt + 2 under the key) is kept at its arrival (a ``latency`` fault), so no later
retry races the original's commit. Unlike ``faults.in_flight``, a client that closes its
connection does not end the hold: the outcome does not depend on which side is faster.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from ..faults import Fault
from ..journal import Exchange, Journal

if TYPE_CHECKING:
    from ..api import IdempotentAPI

__all__ = ["InFlight", "in_flight"]


class InFlight:
    """Hold request ``seq`` (attempt ``attempt`` of its key) in flight; see the module."""

    def __init__(
        self,
        api: IdempotentAPI,
        seq: int,
        attempt: int | None,
        *,
        path: str | None = None,
        bound: float = 30.0,
    ) -> None:
        self._journal: Journal = api.journal
        self._plan = api.faults
        self._seq = seq
        self._waits = api.policy.on_in_flight == "wait"
        self._stopped = threading.Event()
        self.hold: Fault = api.faults.add("hold", seq=seq)
        self._gate: Fault | None = None
        if attempt is not None:
            self._gate = api.faults.add("latency", path=path, attempt=attempt + 2, seconds=bound)
        self._thread = threading.Thread(target=self._watch, name="explore-in-flight", daemon=True)

    def start(self) -> InFlight:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release everything now (the run is over). The gate is withdrawn if no later retry
        met it: it is the helper's own, so a client that sent fewer retries is not blamed for
        a scripted fault that never fired."""
        self._stopped.set()
        self.hold.release()
        if self._gate is not None:
            self._gate.release()
            self._plan.withdraw(self._gate)
        self._journal.touch()
        self._thread.join(5.0)
        self._settle()

    def _settle(self) -> None:
        """Wait (5 s at most) for the released original to finish, so what is asserted next
        counts what it did: a client that gave up on it leaves it running on the server."""
        with contextlib.suppress(TimeoutError):
            self._journal.wait_for(self._settled, 5.0)

    def _settled(self, journal: Journal) -> bool:
        me = self._original(journal)
        return me is None or me.finished.is_set()

    def __enter__(self) -> InFlight:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the watcher ---------------------------------------------------------------------------

    def _original(self, journal: Journal) -> Exchange | None:
        return journal[self._seq - 1] if len(journal) >= self._seq else None

    def _sibling_met(self, journal: Journal) -> bool:
        me = self._original(journal)
        if me is None or me.key is None:
            return False
        return any(
            e.key == me.key
            and e.tenant == me.tenant
            and (e.finished.is_set() or (self._waits and e.attempt is not None))
            for e in journal.exchanges[self._seq :]
        )

    def _original_done(self, journal: Journal) -> bool:
        me = self._original(journal)
        return me is not None and me.finished.is_set()

    def _wait(self, predicate: Callable[[Journal], bool]) -> None:
        while not self._stopped.is_set():
            try:
                self._journal.wait_for(lambda j: self._stopped.is_set() or predicate(j), 1.0)
                return
            except TimeoutError:
                continue

    def _watch(self) -> None:
        self._wait(self._sibling_met)
        self.hold.release()
        self._wait(self._original_done)
        if self._gate is not None:
            self._gate.release()


def in_flight(
    api: IdempotentAPI, seq: int, attempt: int | None = 1, path: str | None = None
) -> InFlight:
    """``with in_flight(idempotent_api, seq=1): operation()`` (a reproducer's in-flight hold)."""
    return InFlight(api, seq, attempt, path=path)
