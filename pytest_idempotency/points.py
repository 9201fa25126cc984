"""What each fault kind does at its named point of a request's life.

:data:`FAULT_ACTIONS` maps every kind in :data:`~pytest_idempotency.faults.FAULT_KINDS` to one
small function; the pipeline calls it when the request reaches the kind's point. ``None`` lets the
request go on; a response answers it there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .clock import LATEST
from .faults import BatchFaults, Fault
from .peer import peer_closed
from .store import StoredResponse

if TYPE_CHECKING:
    from .pipeline import Flight

__all__ = ["FAULT_ACTIONS", "FaultAction"]


def _latency(f: Flight, fault: Fault) -> None:
    fault.released.wait(fault.seconds or 0.0)


def _clock_jump(f: Flight, fault: Fault) -> None:
    clock = f.state.clock
    seconds = fault.seconds or 0.0
    room = max(0.0, LATEST - clock.now() - 1.0)  # a second of margin: real time runs on
    if seconds <= room:
        clock.advance(seconds)
        f.exchange.note = f"the fake clock jumped {seconds:g} s"
        return
    # The clock ends at LATEST: a longer jump stops there (every TTL has run out by then).
    clock.advance(room)
    f.exchange.note = (
        f"the fake clock jumped {room:g} s of {seconds:g}: its dates end at 9000-01-01"
    )


def _reset(f: Flight, fault: Fault) -> StoredResponse:
    f.action.kind = "reset"
    return StoredResponse(500, (), b"")


def _restart(f: Flight, fault: Fault) -> StoredResponse:
    f.app.restart(keep_records=fault.keep_records)
    f.exchange.note = "server restarted" + ("" if fault.keep_records else "; records lost")
    f.action.kind = "reset"
    return StoredResponse(500, (), b"")


def _error(f: Flight, fault: Fault) -> StoredResponse:
    return f.app._fault_error(f.state, fault, f.request_id)


def _hold(f: Flight, fault: Fault) -> None:
    f.exchange.note = "held in flight"
    fault._note_held()
    fault.released.wait()


def _in_flight(f: Flight, fault: Fault) -> None:
    f.exchange.note = "in flight until a request with the same key is answered"
    fault._note_held()
    _wait_for_sibling(f, fault)


def _partial_batch(f: Flight, fault: Fault) -> None:
    f.batch_faults = BatchFaults(fault.failures)


def _drop(f: Flight, fault: Fault) -> None:
    f.action.kind = "drop"


def _garbage(f: Flight, fault: Fault) -> None:
    f.action.kind = "garbage"
    f.action.style = fault.style


def _slow(f: Flight, fault: Fault) -> None:
    f.action.kind = "late"
    f.action.delay = fault.seconds
    f.action.release = fault.released


def _late(f: Flight, fault: Fault) -> None:
    _slow(f, fault)
    f.action.until_peer_closes = True


FaultAction = Callable[["Flight", Fault], "StoredResponse | None"]
#: Every fault kind -> what it does at its point (``None``: the request goes on).
FAULT_ACTIONS: dict[str, FaultAction] = {
    "latency": _latency,
    "clock_jump": _clock_jump,
    "reset": _reset,
    "restart": _restart,
    "error_before": _error,
    "hold": _hold,
    "in_flight": _in_flight,
    "partial_batch": _partial_batch,
    "error_after": _error,
    "drop": _drop,
    "garbage": _garbage,
    "slow": _slow,
    "late": _late,
}


def _wait_for_sibling(f: Flight, fault: Fault) -> None:
    """Park until a later request with the same key (and tenant) has been answered, the client
    closed this connection, the fault was released, or ``fault.seconds`` passed (``None``: no
    bound; teardown releases it). Under a
    policy whose duplicates wait for the original, the sibling's arrival is enough (it would
    otherwise wait for this request while this request waits for it)."""
    me = f.exchange
    arrival_is_enough = f.state.variant.policy.on_in_flight == "wait"
    sock = f.environ.get("werkzeug.socket")
    deadline = time.monotonic() + (math.inf if fault.seconds is None else fault.seconds)

    def sibling_done(journal: Any) -> bool:
        if fault.released.is_set():
            return True
        return any(
            e.key == me.key
            and e.tenant == me.tenant
            and (e.finished.is_set() or (arrival_is_enough and e.attempt is not None))
            for e in journal.exchanges[me.seq :]
        )

    while not peer_closed(sock):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            f.state.journal.wait_for(sibling_done, timeout=min(remaining, 0.05))
            return
        except TimeoutError:
            continue
