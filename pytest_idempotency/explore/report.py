"""What an exploration found: every schedule with its verdict, a table, and ``assert_safe``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..journal import Journal, SideEffect
from ..policy import Policy
from ..timeline import render_timeline
from .menu import PlannedFault
from .reproducer import ReplayContext, render_reproducer
from .verdicts import VERDICTS, Attribution

__all__ = ["ExplorationReport", "Schedule"]


@dataclass(eq=False)
class Schedule:
    """One executed schedule: its faults (by request position and attempt), the verdict, the
    side effects, what the operation raised, who the verdict is on, and a reproducer."""

    index: int
    faults: tuple[PlannedFault, ...]
    verdict: str
    side_effects: list[SideEffect]
    raised: BaseException | None
    attribution: Attribution | None
    #: Faults of the schedule that never fired (the run equals a smaller schedule's).
    unfired: tuple[PlannedFault, ...]
    #: Real seconds: the whole run, and inside the operation's invocations.
    elapsed: float
    operation_seconds: float
    #: Seconds the operation slept on the fake clock (its backoff).
    slept: float
    journal: Journal = field(repr=False)
    _context: ReplayContext = field(repr=False)
    _policy: Policy = field(repr=False)

    @property
    def safe(self) -> bool:
        return self.verdict == "safe"

    @property
    def timeline(self) -> str:
        """The run's journal as a table."""
        return render_timeline(self.journal)

    @property
    def reproducer(self) -> str:
        """The text of a pytest test that replays this schedule with the scripted fault API."""
        return render_reproducer(self.index, self.faults, self._context, self._policy)

    def describe_faults(self) -> str:
        return "; ".join(f.describe() for f in self.faults) or "no fault"

    def row(self) -> str:
        raised = "-" if self.raised is None else type(self.raised).__name__
        who = "" if self.attribution is None else f"  [{self.attribution}]"
        return (
            f"{self.index:>4}  {self.verdict:<9}  {len(self.side_effects):>2}  {raised:<22}  "
            f"{self.describe_faults()}{who}"
        )


def _allowed(schedule: Schedule, allow: Iterable[str]) -> bool:
    allowed = set(allow)
    if schedule.verdict in allowed:
        return True
    party = schedule.attribution.party if schedule.attribution else None
    return party is not None and party in allowed


@dataclass(eq=False)
class ExplorationReport:
    """Every executed schedule in a deterministic order (fewest faults first)."""

    variant: str
    schedules: list[Schedule]
    #: Schedules the search generated, and how many it ran (the rest were pruned).
    generated: int
    executed: int
    seed: int | None = None
    budget: int | None = None

    @property
    def pruned(self) -> int:
        return self.generated - self.executed

    @property
    def unsafe(self) -> list[Schedule]:
        """Schedules whose verdict is not ``safe``, fewest faults first."""
        return sorted(
            (s for s in self.schedules if not s.safe), key=lambda s: (len(s.faults), s.index)
        )

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for schedule in self.schedules:
            out[schedule.verdict] += 1
        return out

    def summary(self) -> str:
        counts = ", ".join(f"{n} {v}" for v, n in self.counts().items() if n)
        sampled = f", sampled with seed {self.seed}" if self.budget is not None else ""
        return (
            f"explored {self.executed} of {self.generated} generated schedule(s) against "
            f"{self.variant!r} ({self.pruned} pruned{sampled}): {counts}"
        )

    def table(self, schedules: Iterable[Schedule] | None = None) -> str:
        """The schedules as a table: index, verdict, side effects, raised, faults, who."""
        rows = list(self.schedules if schedules is None else schedules)
        head = f"{'#':>4}  {'verdict':<9}  {'fx':>2}  {'raised':<22}  faults"
        return "\n".join([self.summary(), head, *(s.row() for s in rows)])

    def assert_safe(self, allow: Iterable[str] = ()) -> None:
        """Raise ``AssertionError`` listing the unsafe schedules (fewest faults first) with the
        timeline and reproducer of the first. ``allow`` names verdicts that pass (e.g.
        ``"ambiguous"``) or parties (``"provider"``, ``"hazard"``) whose verdicts pass."""
        __tracebackhide__ = True
        allowed = tuple(allow)
        bad = [s for s in self.unsafe if not _allowed(s, allowed)]
        if not bad:
            return
        first = bad[0]
        names = ", ".join(sorted({s.verdict for s in bad}))
        raise AssertionError(
            f"pytest-idempotency: {len(bad)} unsafe schedule(s) ({names}); "
            f"{self.table(bad)}\n\n"
            f"First: schedule {first.index}: {first.describe_faults()} -> {first.verdict}"
            + (f" ({first.attribution})" if first.attribution else "")
            + f"\n{first.timeline}\n\nReproducer:\n{first.reproducer}"
            + "\nIf a verdict is expected here, pass it in assert_safe(allow=(...))."
        )

    def __str__(self) -> str:
        return self.table()
