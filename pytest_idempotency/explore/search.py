"""The search over fault schedules: breadth first by number of faults, with dynamic reduction.

The operation runs once without faults; every request it reached, with every fault that
applies there, is a child schedule. A child extends its parent only at requests after the
parent's last fault, so each set of faults is generated once, and only at requests the parent
run really reached (retries that appear under a fault become new points). A schedule whose
fault never fired, or that hung, is not extended: its children equal a smaller schedule's.
"""

from __future__ import annotations

import contextlib
import inspect
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..faults import MAX_FAULT_WAIT
from ..providers import UnknownVariant, get_variant
from ..timeline import render_timeline
from .menu import CRASH, HAZARDS, MENU_BY_NAME, PlannedFault, applicable
from .report import ExplorationReport, Schedule
from .reproducer import ReplayContext, operation_name, policy_overrides
from .runner import Run, Settings, run_schedule
from .verdicts import Reference, attribute, judge

if TYPE_CHECKING:
    from ..api import IdempotentAPI

__all__ = ["ExplorationError", "explore"]

Faults = tuple[PlannedFault, ...]


class ExplorationError(ValueError):
    """An exploration that cannot run as asked; the message names the fix."""


class ExplorationTypeError(ExplorationError, TypeError):
    """An ``explore()`` argument of the wrong type (a ``TypeError`` too), naming the type."""


def _names(what: str, given: Any, example: str) -> tuple[str, ...]:
    """``given`` (one str or an iterable of str) as a tuple of names, else a type error."""
    if isinstance(given, str):
        return (given,)
    if isinstance(given, Iterable):
        names = tuple(given)
        if all(isinstance(n, str) for n in names):
            return names
    raise ExplorationTypeError(f"{what} takes {example} (got {given!r:.60})")


def _hazards(hazards: bool | Iterable[str]) -> tuple[str, ...]:
    if hazards is True:
        return HAZARDS
    if hazards is False:
        return ()
    names = _names("hazards=", hazards, f"True, False or names from {HAZARDS}")
    bad = [h for h in names if h not in HAZARDS]
    if bad:
        raise ExplorationError(
            f"unknown hazard(s) {', '.join(map(repr, bad))}; use True or any of {HAZARDS}"
        )
    return names


def _menu(faults: Iterable[str] | None) -> frozenset[str] | None:
    if faults is None:
        return None
    names = frozenset(_names("faults=", faults, "a list of fault names such as ['drop']"))
    bad = sorted(n for n in names if n not in MENU_BY_NAME)
    if bad or not names:
        raise ExplorationError(
            f"unknown fault(s) {', '.join(map(repr, bad)) or '(none given)'} in faults=; "
            f"choose among {', '.join(MENU_BY_NAME)}"
        )
    return names


#: Longest ``run_timeout``: each run's faults hold for up to 3 x ``run_timeout``, and a fault
#: waits at most ``MAX_FAULT_WAIT``.
MAX_RUN_TIMEOUT = MAX_FAULT_WAIT / 3


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(operation: Any, max_faults: Any, run_timeout: Any, budget: Any, **flags: Any) -> None:
    """Each argument of ``explore()`` has its type (else :class:`ExplorationTypeError`) and a
    usable value (else :class:`ExplorationError`); a bool is not a number, nor a number a bool."""
    if not callable(operation):
        raise ExplorationTypeError(
            f"explore() takes a zero-argument callable or async function, not {operation!r:.60}"
        )
    if not _whole(max_faults):
        raise ExplorationTypeError(
            f"max_faults must be a whole number (an int) >= 0 (got {max_faults!r:.60})"
        )
    if max_faults < 0:
        raise ExplorationError(f"max_faults must be a whole number >= 0 (got {max_faults!r})")
    if isinstance(run_timeout, bool) or not isinstance(run_timeout, (int, float)):
        raise ExplorationTypeError(
            f"run_timeout must be a number of seconds > 0 and at most {MAX_RUN_TIMEOUT:g} "
            f"(got {run_timeout!r:.60})"
        )
    if not 0 < run_timeout <= MAX_RUN_TIMEOUT:
        raise ExplorationError(
            f"run_timeout must be seconds > 0 and at most {MAX_RUN_TIMEOUT:g} (got {run_timeout!r})"
        )
    if budget is not None and not _whole(budget):
        raise ExplorationTypeError(
            f"budget must be a whole number (an int) >= 1 or None (got {budget!r:.60})"
        )
    if budget is not None and budget < 1:
        raise ExplorationError(f"budget must be a whole number >= 1 or None (got {budget!r})")
    seed = flags.pop("seed")
    if seed is not None and not _whole(seed):
        raise ExplorationTypeError(
            f"seed must be an int (the session's --idempotency-seed when None), not {seed!r:.60}"
        )
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ExplorationTypeError(f"{name} must be True or False (got {value!r:.60})")


class _Search:
    def __init__(
        self,
        api: IdempotentAPI,
        operation: Callable[[], Any],
        settings: Settings,
        hazards: tuple[str, ...],
        restarts: bool,
        menu: frozenset[str] | None,
    ) -> None:
        self.menu = menu
        self.api = api
        self.operation = operation
        self.settings = settings
        self.hazards = hazards
        self.restarts = restarts
        self.policy = api.policy
        self.schedules: list[Schedule] = []
        self.problems: dict[tuple[str, str], None] = {}
        self.expected = Reference.of((), ())
        self.context = self._context(0)

    def _context(self, expected: int) -> ReplayContext:
        try:
            registered = get_variant(self.api.name).policy
        except UnknownVariant:
            registered = None
        return ReplayContext(
            variant=self.api.name,
            overrides=policy_overrides(self.policy, registered),
            operation=operation_name(self.operation),
            hold=self.settings.hold,
            expected_effects=expected,
            patch_sleep=self.settings.patch_sleep,
            is_async=inspect.iscoroutinefunction(self.operation),
        )

    def run(self, faults: Faults) -> Run:
        run = run_schedule(self.api, self.operation, faults, self.settings)
        for category, text in run.journal.problems:
            self.problems.setdefault((category, text.split(": ", 1)[-1]), None)
        if not faults:
            self.expected = Reference.of(run.side_effects, run.exchanges)
            self.context = self._context(len(run.side_effects))
        self.schedules.append(self._schedule(run))
        return run

    def _schedule(self, run: Run) -> Schedule:
        final = run.final
        how = "hung" if run.hung else ("returned" if final.how == "returned" else "raised")
        effects = run.side_effects
        verdict, groups = judge(how, effects, run.exchanges, self.expected)
        who = attribute(
            verdict,
            groups,
            effects,
            run.exchanges,
            run.faults,
            self.policy,
            self.api.name,
            self.settings.run_timeout,
        )
        return Schedule(
            index=len(self.schedules),
            faults=run.faults,
            verdict=verdict,
            side_effects=effects,
            raised=final.error if how == "raised" else None,
            attribution=who,
            unfired=run.unfired,
            elapsed=run.elapsed,
            operation_seconds=run.operation_seconds,
            slept=run.slept,
            journal=run.journal,
            _context=self.context,
            _policy=self.policy,
        )

    def children(self, run: Run) -> list[Faults]:
        """Schedules that add one fault to ``run``'s at a request it reached after its last."""
        last = max((f.seq for f in run.faults), default=0)
        crashed = any(f.name == CRASH for f in run.faults)
        out: list[Faults] = []
        for exchange in run.exchanges:
            if exchange.seq <= last:
                continue
            for name in applicable(exchange, self.policy, self.hazards, self.restarts):
                if (name == CRASH and crashed) or not self._in_menu(name):
                    continue
                fault = PlannedFault(
                    exchange.seq,
                    name,
                    exchange.attempt,
                    exchange.method,
                    exchange.path,
                    exchange.key,
                )
                out.append((*run.faults, fault))
        return out

    def walk(self, max_faults: int, budget: int | None, rng: random.Random) -> int:
        """Breadth first by number of faults; returns how many schedules were generated."""
        level: list[Faults] = [()]
        generated = 1
        for _ in range(max_faults + 1):
            room = len(level) if budget is None else budget - len(self.schedules)
            following: list[Faults] = []
            for schedule in _sample(level, max(0, room), rng):
                run = self.run(schedule)
                if not schedule:
                    _check_baseline(run, self.settings.run_timeout)
                if len(schedule) < max_faults:
                    children = self.children(run)
                    generated += len(children)
                    if not (run.hung or run.unfired):  # else they repeat a smaller schedule's
                        following.extend(children)
            level = following
        return generated

    def _in_menu(self, name: str) -> bool:
        return self.menu is None or name == CRASH or name in self.menu


def _sample(level: Sequence[Faults], room: int, rng: random.Random) -> list[Faults]:
    if len(level) <= room:
        return list(level)
    return [level[i] for i in sorted(rng.sample(range(len(level)), room))]


def explore(
    api: IdempotentAPI,
    operation: Callable[[], Any],
    *,
    max_faults: int = 2,
    restarts: bool = False,
    hazards: bool | Iterable[str] = False,
    run_timeout: float = 5.0,
    patch_sleep: bool = True,
    budget: int | None = None,
    seed: int | None = None,
    faults: Iterable[str] | None = None,
) -> ExplorationReport:
    """Run ``operation`` under every fault schedule up to ``max_faults`` faults (see
    :meth:`pytest_idempotency.api.IdempotentAPI.explore`)."""
    _check(
        operation,
        max_faults,
        run_timeout,
        budget,
        seed=seed,
        restarts=restarts,
        patch_sleep=patch_sleep,
    )
    settings = Settings(
        run_timeout=float(run_timeout), patch_sleep=patch_sleep, hold=max(30.0, 3 * run_timeout)
    )
    search = _Search(api, operation, settings, _hazards(hazards), restarts, _menu(faults))
    used_seed = api.app.seed if seed is None else seed
    generated = search.walk(max_faults, budget, random.Random(used_seed))
    api.reset()
    for category, text in list(search.problems)[:20]:
        api.journal.problem(category, f"during exploration: {text}")
    return ExplorationReport(
        variant=api.name,
        schedules=search.schedules,
        generated=generated,
        executed=len(search.schedules),
        seed=used_seed,
        budget=budget,
    )


#: How long the explorer watches for requests after the no-fault run has returned.
LATE_REQUEST_WINDOW = 0.2
#: How long it waits for a first request when the no-fault run sent none by its return.
FIRST_REQUEST_WINDOW = 1.0


def _check_baseline(run: Run, run_timeout: float) -> None:
    """The no-fault run is the reference every verdict is measured against: it must finish,
    send its requests before it returns, and do something (a run that raised after its side
    effect is judged ``ambiguous`` like any other)."""
    if run.hung:
        raise ExplorationError(
            f"the operation did not finish within run_timeout={run_timeout} s even without a "
            "fault; give its client a timeout, or raise run_timeout"
        )
    error = next((o.error for o in run.outcomes if o.error is not None), None)
    if not run.exchanges and error is not None:  # crashed before its first request, chained
        raise ExplorationError(
            f"the operation raised {type(error).__name__}: {str(error)[:300]} before it sent "
            "a request, without any fault; fix the operation (the error is chained below)"
        ) from error
    _check_late_requests(run)
    if error is not None and not run.side_effects:  # a failure that would pass as "safe"
        raise ExplorationError(
            f"the operation raised {type(error).__name__}: {str(error)[:300]} without any "
            f"fault and did nothing, after {_requests(run)}; against that reference every "
            "schedule would be judged safe. Fix the operation or its requests first (the "
            f"error is chained below); the no-fault run:\n{render_timeline(run.journal)}"
        ) from error


def _check_late_requests(run: Run) -> None:
    sent = run.sent_by_return
    window = LATE_REQUEST_WINDOW if sent else FIRST_REQUEST_WINDOW
    journal = run.journal
    with contextlib.suppress(TimeoutError):
        journal.wait_for(lambda j: len(j) > sent, timeout=window, what="a late request")
    late = len(journal) - sent
    if late > 0:
        raise ExplorationError(
            f"{late} request(s) reached the fake after the operation had returned (sent from "
            "a thread or task it started?); the explorer judges a run when the operation "
            "returns, so wait for that work (join the thread, await the task) before returning"
        )
    if not sent:
        raise ExplorationError(
            "the operation sent no request to the fake; point its client at idempotent_api.url"
        )


def _requests(run: Run) -> str:
    last = run.exchanges[-1]
    answer = f"answered {last.status}" if last.status is not None else f"wire: {last.wire}"
    return f"{len(run.exchanges)} request(s) (the last, {last.method} {last.path}, {answer})"
