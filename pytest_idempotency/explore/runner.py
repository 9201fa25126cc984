"""One run of the operation under one schedule, from fresh state, with a bound on its time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..faults import Fault
from ..journal import Exchange, Journal, SideEffect
from .inflight import InFlight
from .invocation import Invocation, Outcome
from .menu import CRASH, PlannedFault

if TYPE_CHECKING:
    from ..api import IdempotentAPI

__all__ = ["Run", "Settings", "crash_after", "run_schedule"]


@dataclass(frozen=True)
class Settings:
    """How runs are bounded: ``run_timeout`` (real seconds before a run is a hang),
    ``patch_sleep`` (sleeps advance the fake clock), ``hold`` (the bound of a late or in-flight
    hold), ``grace`` (how long an abandoned operation gets to end)."""

    run_timeout: float = 5.0
    patch_sleep: bool = True
    hold: float = 30.0
    grace: float = 5.0


@dataclass(eq=False)
class Run:
    """What one run did: the journal, the invocations' outcomes, which faults never fired."""

    faults: tuple[PlannedFault, ...]
    journal: Journal
    outcomes: list[Outcome] = field(default_factory=list)
    hung: bool = False
    unfired: tuple[PlannedFault, ...] = ()
    elapsed: float = 0.0
    #: Requests the journal held when the operation returned (later ones came from elsewhere).
    sent_by_return: int = 0

    @property
    def final(self) -> Outcome:
        return self.outcomes[-1]

    @property
    def exchanges(self) -> list[Exchange]:
        return self.journal.exchanges

    @property
    def side_effects(self) -> list[SideEffect]:
        return self.journal.side_effects

    @property
    def operation_seconds(self) -> float:
        return sum(o.seconds for o in self.outcomes)

    @property
    def slept(self) -> float:
        return sum(o.slept for o in self.outcomes)


def _start(
    api: IdempotentAPI, operation: Callable[[], Any], settings: Settings, deadline: float
) -> Invocation:
    clock = api.clock if settings.patch_sleep else None
    return Invocation(operation, clock, api.journal.touch).start(deadline)


def _finished(journal: Journal, seq: int, invocation: Invocation) -> bool:
    def reached(j: Journal) -> bool:
        return invocation.done.is_set() or (len(j) >= seq and j[seq - 1].finished.is_set())

    remaining = invocation.deadline - time.monotonic()
    try:
        journal.wait_for(reached, timeout=max(0.0, remaining), what=f"request #{seq}")
    except TimeoutError:
        return False
    return not invocation.done.is_set()


def _crash_first(
    api: IdempotentAPI, first: Invocation, seq: int, fault: Fault, settings: Settings
) -> bool:
    """Crash ``first`` once request ``seq`` is committed, before its answer goes out."""
    if not _finished(api.journal, seq, first):
        return False
    crashed = first.crash()
    fault.release()
    first.wait(settings.grace)
    return crashed


def _invoke(
    api: IdempotentAPI,
    operation: Callable[[], Any],
    settings: Settings,
    deadline: float,
    crash: tuple[int, Fault] | None = None,
) -> tuple[list[Outcome], bool, bool]:
    """Run the operation (twice around a crash); ``(outcomes, hung, crashed)``."""
    invocation = _start(api, operation, settings, deadline)
    crashed = False
    outcomes: list[Outcome] = []
    if crash is not None and _crash_first(api, invocation, crash[0], crash[1], settings):
        crashed = True
        if invocation.outcome is not None:
            outcomes.append(invocation.outcome)
        invocation = _start(api, operation, settings, deadline)
    if not invocation.wait(max(0.0, deadline - time.monotonic())):
        api.release_all()
        invocation.abandon(settings.grace)
        outcomes.append(invocation.outcome or Outcome("hung"))
        return outcomes, True, crashed
    assert invocation.outcome is not None
    outcomes.append(invocation.outcome)
    return outcomes, False, crashed


def _install(
    api: IdempotentAPI, fault: PlannedFault, settings: Settings, holds: list[InFlight]
) -> Fault:
    if fault.name != "in_flight":
        return fault.install(api.faults, api.policy, settings.hold)
    hold = InFlight(api, fault.seq, fault.attempt, path=fault.path, bound=settings.hold)
    holds.append(hold.start())
    return hold.hold


#: What the wire shows after a wire fault acted.
_WIRE_SHOWS = {"drop": ("dropped",), "late": ("late", "reset"), "garbage": ("garbage",)}


def _acted(planned: PlannedFault, fault: Fault, exchange: Exchange | None) -> bool:
    """Whether the fault really acted on its request (a matched fault whose point the request
    never reached, e.g. a body refused before the layer, did not), read from the journal."""
    if fault.fired == 0 or exchange is None:
        return False
    if planned.kind in _WIRE_SHOWS:
        return exchange.wire in _WIRE_SHOWS[planned.kind]
    if planned.kind == "error_after":
        return bool(exchange.side_effects) or exchange.committed
    if planned.kind == "in_flight":
        return fault.held_count > 0
    return True


def _settle(api: IdempotentAPI, grace: float) -> None:
    """The operation is over: let held requests complete (a parked original still runs, as it
    would on a real server) and wait until the server has decided every request."""
    api.release_all()
    with contextlib.suppress(TimeoutError):
        api.journal.wait_for(
            lambda j: all(e.finished.is_set() for e in j.exchanges),
            timeout=grace,
            what="every request of the run to be answered",
        )
    # A client reused across runs must not carry a pooled connection into the next one (a
    # restart fault leaves it dead; a retry on it would change the run): it reconnects.
    api.server.close_connections(wait=grace)


def run_schedule(
    api: IdempotentAPI,
    operation: Callable[[], Any],
    faults: Sequence[PlannedFault],
    settings: Settings,
) -> Run:
    """Reset the fake, script ``faults`` by position, run the operation, collect the journal."""
    started = time.perf_counter()
    api.reset()
    run = Run(tuple(faults), api.journal)
    holds: list[InFlight] = []
    installed = [(f, _install(api, f, settings, holds)) for f in faults]
    crash = next(((f.seq, s) for f, s in installed if f.name == CRASH), None)
    deadline = time.monotonic() + settings.run_timeout
    try:
        run.outcomes, run.hung, crashed = _invoke(api, operation, settings, deadline, crash)
        run.sent_by_return = len(run.journal)
    finally:
        for hold in holds:
            hold.stop()
        _settle(api, settings.grace)
    exchanges = {e.seq: e for e in run.exchanges}
    run.unfired = tuple(
        f
        for f, s in installed
        if (not crashed if f.name == CRASH else not _acted(f, s, exchanges.get(f.seq)))
    )
    run.elapsed = time.perf_counter() - started
    return run


def crash_after(
    api: IdempotentAPI,
    operation: Callable[[], Any],
    seq: int,
    *,
    run_timeout: float = 10.0,
    patch_sleep: bool = True,
) -> Any:
    """Run ``operation``; once request ``seq`` is committed and before its answer reaches the
    client, crash it (as a dying worker); then run it again from the start. Returns what the
    second invocation returns, or raises what it raised (a reproducer of a crash schedule)."""
    settings = Settings(run_timeout=run_timeout, patch_sleep=patch_sleep)
    fault = api.faults.add("late", seq=seq, seconds=settings.hold)
    deadline = time.monotonic() + run_timeout
    try:
        outcomes, hung, _ = _invoke(api, operation, settings, deadline, (seq, fault))
    finally:
        _settle(api, settings.grace)
    if hung:
        raise TimeoutError(f"the operation did not finish within {run_timeout} s")
    final = outcomes[-1]
    if final.error is not None:
        raise final.error
    return final.value
