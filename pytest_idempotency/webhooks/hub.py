"""``idempotent_api.webhooks``: endpoints, events, delivery on the fake clock, faults, checks."""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..clock import check_timeout
from . import scheduler as _scheduler
from .destinations import DestinationError, as_destination, is_loopback_url, url_problem
from .endpoints import EndpointBook
from .events import Event, EventFactory, event_size, spec_for
from .faults import MAX_COPIES, DeliveryFaultPlan
from .journal import MAX_ATTEMPTS, Attempt, DeliveryJournal, Kept
from .later import LaterEvents, Scheduled
from .scheduler import Endpoint, Job, Scheduler
from .spec import DEFAULT_SECRET, EventSpec

if TYPE_CHECKING:
    from ..clock import Clock
    from ..variant import Resources, Variant

__all__ = ["Webhooks"]

_UNSET: Any = object()
#: Most waits in a retry schedule (chosen: Stripe's live mode has 9; each wait is one more
#: attempt per event, so the bound caps the attempts of one event).
MAX_SCHEDULE = 100
#: Longest event id prefix (each event id, in every attempt, carries it).
MAX_ID_PREFIX = 64
#: What a call on a replaced hub says (after ``idempotent_api.webhooks.<call>: ``).
REPLACED = (
    "this webhooks hub was replaced when the fake server was reset (idempotent_api.reset(), "
    "or explore(), which resets before each run), which cleared its endpoints, "
    "configuration, faults and deliveries, so nothing done through it has any effect; take "
    "idempotent_api.webhooks again after reset() or explore() (inside the explored operation "
    "if the operation needs receivers)"
)


class Webhooks:
    """The webhooks of one test: who receives what, what was delivered, what is still due."""

    def __init__(self, resources: Resources, clock: Clock, variant: Variant) -> None:
        self._resources, self.clock, self.variant = resources, clock, variant
        self.spec: EventSpec = spec_for(variant)
        self.secret: str | None = DEFAULT_SECRET
        self.journal = DeliveryJournal()
        self.faults = DeliveryFaultPlan()
        self.scheduler = Scheduler(clock.now, lambda: self.spec, self.journal)
        self._factory = EventFactory()
        self._book = EndpointBook()
        #: Every event, newest last; past :data:`MAX_ATTEMPTS` (or 64 MiB) the oldest are
        #: dropped and counted (a long-running standalone server stays bounded).
        self._events: Kept[Event] = Kept(MAX_ATTEMPTS, event_size)
        #: Events still to happen on the fake clock (fired ones are forgotten).
        self.later = LaterEvents(MAX_ATTEMPTS)
        #: ``(event id, url)`` of events for a destination that is not called.
        self._skipped: Kept[tuple[str, str]] = Kept(MAX_ATTEMPTS, lambda s: 64 + len(s[1]))
        self._lock = threading.RLock()
        self._closed = False
        self._remove_listener = clock.on_advance(self._on_clock)

    def _live(self, what: str) -> None:
        """Refuse ``what`` once the hub was replaced (:meth:`close`), saying what to use."""
        if self._closed:
            raise RuntimeError(f"idempotent_api.webhooks.{what}: {REPLACED}")

    # -- configuration -----------------------------------------------------------------------

    def configure(self, **changes: Any) -> EventSpec:
        """Override the variant's event spec for this test, e.g. ``configure(schedule=(1, 5),
        timeout=0.5, id_prefix="evt_", signature_header=None)``; ``secret=`` sets the
        default signing secret of endpoints registered afterwards."""
        self._live("configure()")
        if "secret" in changes:
            self.secret = changes.pop("secret")
        fields = {f.name for f in dataclasses.fields(EventSpec)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise TypeError(
                f"webhooks.configure() got unknown option(s) {', '.join(unknown)}; "
                f"the options are {', '.join(sorted(fields | {'secret'}))}"
            )
        _check_spec(changes)
        if "schedule" in changes:
            changes["schedule"] = tuple(float(wait) for wait in changes["schedule"])
        self.spec = dataclasses.replace(self.spec, **changes)
        return self.spec

    def register(
        self,
        target: Any,
        *,
        kind: str | None = None,
        events: Iterable[str] | None = None,
        secret: str | None = _UNSET,
        url: str | None = None,
    ) -> Endpoint:
        """Receive this variant's events at ``target``: a loopback URL, a WSGI app, an ASGI
        app or a callable ``receiver(request) -> status``. ``events`` filters by type (globs
        such as ``"task.*"``); ``secret`` signs deliveries (``None``: unsigned)."""
        self._live("register()")
        return self._add(target, kind, events, secret, url, route=False)

    def route(self, url: str, target: Any, **options: Any) -> Endpoint:
        """Deliver events whose resource names ``url`` (Moda's ``callback_url``) to
        ``target`` instead, e.g. the seed's ``https://myapp.com/webhooks/moda``."""
        self._live("route()")
        if not isinstance(url, str) or not url:
            raise DestinationError(f"webhooks.route() needs the callback URL first (got {url!r})")
        problem = url_problem(url)
        if problem is not None:  # no resource could name it in a request the fake takes
            raise DestinationError(f"callback URL {url!r} {problem}")
        unknown = sorted(set(options) - {"kind", "events", "secret"})
        if unknown:
            raise TypeError(
                f"webhooks.route() got unknown option(s) {', '.join(unknown)}; "
                "it takes kind=, events= and secret="
            )
        return self._add(
            target,
            options.pop("kind", None),
            options.pop("events", None),
            options.pop("secret", _UNSET),
            url,
            route=True,
        )

    def _add(
        self,
        target: Any,
        kind: str | None,
        events: Iterable[str] | None,
        secret: Any,
        url: str | None,
        *,
        route: bool,
    ) -> Endpoint:
        destination = as_destination(target, kind)
        if isinstance(events, str):
            events = [events]
        if events is not None and not all(isinstance(e, str) and e for e in events):
            raise TypeError(f"events= takes event types such as ['task.*'] (got {events!r})")
        if secret is not _UNSET and secret is not None and not isinstance(secret, str):
            raise TypeError(f"secret= takes a string such as 'whsec_…' or None (got {secret!r})")
        where = target if isinstance(target, str) else url or "http://receiver.test/webhooks"
        chosen = self.secret if secret is _UNSET else secret
        patterns = None if events is None else tuple(events)
        with self._lock:
            endpoint = Endpoint(self._book.next_id(), destination, where, chosen, patterns, route)
            self._book.add(endpoint, url if route else None)
        return endpoint

    @property
    def endpoints(self) -> list[Endpoint]:
        """The registered and routed endpoints, then the implicit ones (callback URLs)."""
        self._live("endpoints")
        with self._lock:
            return self._book.all()

    @property
    def dropped_endpoints(self) -> int:
        """Implicit endpoints (one per callback URL) forgotten past their bound."""
        self._live("dropped_endpoints")
        return self._book.dropped_implicit

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(event id, url)`` of events for a callback URL that is never called (off
        loopback, or no URL a receiver could listen on); the newest 10,000."""
        self._live("skipped")
        with self._lock:
            return list(self._skipped)

    @property
    def dropped_skipped(self) -> int:
        self._live("dropped_skipped")
        return self._skipped.dropped

    @property
    def dropped_events(self) -> int:
        self._live("dropped_events")
        return self._events.dropped

    @property
    def dropped_scheduled(self) -> int:
        """Later events forgotten unfired because too many waited at once."""
        self._live("dropped_scheduled")
        return self.later.dropped

    # -- events ------------------------------------------------------------------------------

    def emit(
        self,
        event_type: str,
        obj: Mapping[str, Any],
        *,
        after: float | None = None,
        changes: Mapping[str, Any] | None = None,
        to: str | None = None,
        **context: Any,
    ) -> Event | None:
        """An event about ``obj`` now, or ``after`` seconds on the fake clock (then
        ``changes`` are applied to ``obj`` first, e.g. ``{"status": "completed"}``).
        Returns the event, or ``None`` when it is scheduled for later."""
        self._live("emit()")
        if not isinstance(event_type, str) or not event_type:
            raise TypeError(
                f"emit() takes an event type such as 'task.created' (got {event_type!r})"
            )
        if not isinstance(obj, Mapping):
            raise TypeError(f"emit() takes the object as a dict (got {type(obj).__name__})")
        delay = self.spec.after.get(event_type, after)
        if delay:
            scheduled = Scheduled(
                self.clock.now() + float(delay),
                event_type,
                obj,  # type: ignore[arg-type]
                changes,
                {"to": to, **context},
            )
            with self._lock:
                self.later.add(scheduled)
            return None
        if changes:
            with self._resources.lock:
                obj.update(changes)  # type: ignore[attr-defined]
        return self._make(event_type, obj, to=to, **context)

    def _make(
        self,
        event_type: str,
        obj: Mapping[str, Any],
        *,
        to: str | None = None,
        request_id: str | None = None,
        key: str | None = None,
        tenant: str | None = None,
        when: float | None = None,
    ) -> Event:
        at = self.clock.now() if when is None else when
        with self._resources.lock:
            event = self._factory.make(
                self.spec,
                event_type,
                obj,
                at,
                request_id=request_id,
                key=key,
                tenant=tenant,
            )
        if to is not None:
            event.destination = to
        with self._lock:
            self._events.append(event)
        for endpoint in self._endpoints_for(event):
            self.scheduler.add(event, endpoint, self.faults.match(event.type, event.id), at)
        return event

    def _endpoints_for(self, event: Event) -> list[Endpoint]:
        url = event.destination
        with self._lock:
            if url is None:
                return self._book.broadcast(event.type)
            routed = self._book.routed(url)
            if routed is not None:
                return [routed] if routed.wants(event.type) else []
            try:
                if not is_loopback_url(url):
                    raise DestinationError(url)
                return [self._book.implicit(url, lambda eid: self._implicit(eid, url))]
            except DestinationError:  # off loopback, or no URL a receiver listens on
                self._skipped.append((event.id, url))
                return []

    def _implicit(self, endpoint_id: str, url: str) -> Endpoint:
        destination = as_destination(url, "url")
        return Endpoint(endpoint_id, destination, url, self.secret, None, route=True)

    def _scheduled_at(self, now: float) -> float | None:
        """When the earliest later event due by ``now`` happens (``None``: none is due)."""
        with self._lock:
            first = self.later.first_due(now)
        return None if first is None else first.fire_at

    def _fire_next(self, now: float) -> None:
        with self._lock:
            first = self.later.first_due(now)
            if first is None:
                return
            self.later.take(first)
        self._fire(first, first.fire_at)

    def _fire(self, scheduled: Scheduled, when: float) -> Event:
        if scheduled.changes:
            with self._resources.lock:
                scheduled.obj.update(scheduled.changes)
        return self._make(scheduled.event_type, scheduled.obj, when=when, **scheduled.context)

    def trigger(self, resource_id: str | None = None, event_type: str | None = None) -> list[Event]:
        """Make scheduled events happen now (Moda's ``task.completed`` on demand); returns
        them. Filters: the resource's id and the event type."""
        self._live("trigger()")
        with self._lock:
            chosen = [
                s
                for s in self.later.waiting()
                if (resource_id is None or str(s.obj.get("id")) == resource_id)
                and (event_type is None or s.event_type == event_type)
            ]
            for s in chosen:
                self.later.take(s)
        now = self.clock.now()
        return [self._fire(s, now) for s in sorted(chosen, key=lambda s: s.fire_at)]

    @property
    def events(self) -> list[Event]:
        """Every event emitted in this test, in order."""
        self._live("events")
        with self._lock:
            return list(self._events)

    def event(self, event_id: str) -> Event:
        self._live("event()")
        events = self.events
        for event in events:
            if event.id == event_id:
                return event
        known = ", ".join(e.id for e in events) or "none yet"
        raise KeyError(f"no event {event_id!r}; the events of this test are: {known}")

    # -- delivery ----------------------------------------------------------------------------

    def _on_clock(self, now: float) -> None:
        if not self._closed:  # a replaced hub delivers nothing (and never fails a clock move)
            self.scheduler.run_due(self._scheduled_at, self._fire_next, _scheduler.CLOCK_BUDGET)

    def deliver_due(self, budget: float | None = None) -> int:
        """Make every delivery due on the fake clock now, waiting for each answer; return how
        many attempts. With ``budget`` (real seconds; a clock move uses 5) it starts no
        attempt after that long and leaves the rest due (:meth:`due_now`) for the next call:
        call it without one to wait for every outcome."""
        self._live("deliver_due()")
        return self.scheduler.run_due(self._scheduled_at, self._fire_next, budget)

    def due_now(self) -> int:
        """Deliveries due on the fake clock but not made yet (a clock move spent its budget
        on a slow receiver): ``deliver_due()`` makes them."""
        self._live("due_now()")
        return self.scheduler.due_count(self.clock.now())

    def deliver_again(self, event_id: str, times: int = 1, *, concurrently: bool = False) -> int:
        """Deliver ``event_id`` ``times`` more times to each of its endpoints (at once, racing,
        with ``concurrently=True``); return how many deliveries were made."""
        self._live("deliver_again()")
        if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_COPIES:
            raise ValueError(f"times must be a whole number from 1 to {MAX_COPIES} (got {times!r})")
        self.event(event_id)
        jobs = [j for j in self.jobs if j.event.id == event_id]
        if not jobs:
            raise ValueError(
                f"event {event_id} went to no endpoint; register one first with "
                "webhooks.register(receiver) (or route its callback URL)"
            )
        for job in jobs:
            if concurrently:
                self.scheduler.send_together(job, times, "deliver_again", self.clock.now())
            else:
                for i in range(times):
                    self.scheduler.send(job, copy=i + 1, fault="deliver_again", at=self.clock.now())
        return times * len(jobs)

    def drain(self, event_type: str | None = None) -> int:
        """Give up on purpose on every delivery not yet made (of ``event_type``); the teardown
        check then passes. Returns how many."""
        self._live("drain()")
        drained = 0
        with self.scheduler.lock:
            for job in self.scheduler.active_jobs():
                if event_type in (None, job.event.type):
                    job.state = "drained"
                    drained += 1
        self.scheduler.settle()
        return drained

    def checkpoint(self, timeout: float = 5.0) -> None:
        """Call from a receiver's store between its check and its act: while concurrent
        copies are in flight it waits until every copy got here, which makes a check-then-act
        race certain instead of lucky. Elsewhere it returns at once."""
        self._live("checkpoint()")
        timeout = check_timeout(timeout)
        race = self.scheduler.race
        if race is None:
            return
        with contextlib.suppress(threading.BrokenBarrierError):
            race.wait(timeout)

    @property
    def jobs(self) -> list[Job]:
        self._live("jobs")
        with self.scheduler.lock:
            return list(self.scheduler.jobs)

    @property
    def deliveries(self) -> list[Attempt]:
        """Every delivery attempt, in order."""
        self._live("deliveries")
        return self.journal.attempts

    def timeline(self) -> str:
        self._live("timeline()")
        return self.journal.render()

    # -- assertions --------------------------------------------------------------------------

    def _select(self, event_type: str | None, event_id: str | None) -> list[Event]:
        return [e for e in self.events if event_type in (None, e.type) and event_id in (None, e.id)]

    def assert_delivered(
        self,
        event_type: str | None = None,
        *,
        event_id: str | None = None,
        times: int | None = None,
    ) -> None:
        """Each matching event reached a receiver that answered 2xx; with ``times``, the
        matching events reached receivers that many times in all (every attempt whose
        request got there counts, answered or not: :attr:`Attempt.reached`)."""
        __tracebackhide__ = True
        self._live("assert_delivered()")
        events = self._select(event_type, event_id)
        what = f"event_type={event_type!r} event_id={event_id!r}"
        if not events:
            raise AssertionError(
                f"no event matches {what}; emitted: "
                f"{[e.type for e in self.events]}\n{self.timeline()}"
            )
        ids = {e.id for e in events}
        attempts = [a for a in self.deliveries if a.event_id in ids]
        unacked = sorted(ids - {a.event_id for a in attempts if a.acknowledged})
        if unacked:
            raise AssertionError(
                f"never acknowledged with a 2xx: {', '.join(unacked)} ({what}); "
                f"move the clock to retry\n{self.timeline()}"
            )
        reached = sum(1 for a in attempts if a.reached)
        if times is not None and reached != times:
            raise AssertionError(
                f"expected {times} deliveries of {what}, the receiver got "
                f"{reached}\n{self.timeline()}"
            )

    def assert_not_delivered(
        self, event_type: str | None = None, *, event_id: str | None = None
    ) -> None:
        __tracebackhide__ = True
        self._live("assert_not_delivered()")
        ids = {e.id for e in self._select(event_type, event_id)}
        made = [a for a in self.deliveries if a.event_id in ids]
        if made:
            raise AssertionError(
                f"{len(made)} deliveries of event_type={event_type!r} "
                f"event_id={event_id!r} were made\n{self.timeline()}"
            )

    def assert_processed_once(
        self, processed: Iterable[str], event_type: str | None = None
    ) -> None:
        """The receiver's exactly-once, in one line: ``processed`` is the event ids your
        receiver's own state says it acted on (one entry per action). Every event that reached
        it (of ``event_type``, a glob, if given) must appear exactly once, whatever the
        duplicates. An attempt reached the receiver when its whole request got there, even
        if no answer came back (a timeout after sending): :attr:`Attempt.reached`."""
        __tracebackhide__ = True
        self._live("assert_processed_once()")
        wanted = [
            a
            for a in self.deliveries
            if a.reached and (event_type is None or fnmatch.fnmatchcase(a.event_type, event_type))
        ]
        counts = Counter(processed)
        copies = Counter(a.event_id for a in wanted)
        wrong = [
            f"{eid}: processed {counts.get(eid, 0)} times, delivered {copies[eid]} times"
            for eid in sorted(set(copies) | set(counts))
            if counts.get(eid, 0) != 1 or eid not in copies
        ]
        if wrong:
            raise AssertionError(
                "the receiver did not act exactly once per event (dedupe on the event id, "
                "atomically):\n  - " + "\n  - ".join(wrong) + f"\n\nDeliveries:\n{self.timeline()}"
            )

    # -- teardown ----------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """What ``assert_all_deliveries_made`` reports: deliveries due but never made, held
        ones no later event released, delivery faults that never fired."""
        self._live("problems()")
        now = self.clock.now()
        found = []
        for job in self.scheduler.active_jobs():
            where = f"{job.event.id} ({job.event.type}) to {job.endpoint.describe()}"
            if job.state == "pending" and job.due <= now:
                found.append(
                    f"delivery of {where} was due but never made: call "
                    "idempotent_api.webhooks.deliver_due() or move the clock "
                    "(clock.advance(...)), or drain it on purpose with webhooks.drain()"
                    + (
                        f" (a clock move starts no attempt after {_scheduler.CLOCK_BUDGET:g} "
                        "real seconds of delivering, and a slow receiver used them up; "
                        "deliver_due() waits for every outcome)"
                        if self.scheduler.left_due
                        else ""
                    )
                )
            elif job.state == "held":
                found.append(
                    f"delivery of {where} is held out of order and no later event went to that "
                    "endpoint: emit one, or drain it with webhooks.drain()"
                )
        dropped = self.scheduler.dropped_queued
        if dropped:
            found.append(
                f"{dropped} deliveries were given up unmade: more than {self.scheduler.queue.limit}"
                " were queued at once (the oldest go first); move the clock "
                "(clock.advance(...)) or call webhooks.deliver_due() more often"
            )
        found.extend(f"delivery fault never fired: {f.describe()}" for f in self.faults.unfired())
        return found

    @property
    def closed(self) -> bool:
        """Whether the hub was replaced (:meth:`close`)."""
        return self._closed

    def close(self) -> None:
        """The fake server was reset and this hub replaced: stop listening to the clock, and
        from now on refuse every call, saying so (:data:`REPLACED`)."""
        self._closed = True
        self.faults.close(REPLACED)
        self._remove_listener()

    def __repr__(self) -> str:
        if self._closed:
            return f"<Webhooks {self.variant.name}: replaced by reset(); take it again>"
        return (
            f"<Webhooks {self.variant.name}: {len(self.events)} events, "
            f"{len(self.deliveries)} deliveries>"
        )


#: The longest wait a schedule may name and the longest delivery timeout, seconds (as the
#: admin API's ``POST /__admin/webhooks/configure``; NaN and the infinities fail them too).
_TEN_YEARS = 315_360_000
_MAX_TIMEOUT = 3600


def _check_spec(changes: Mapping[str, Any]) -> None:
    """Refuse option values the scheduler could not use, naming the fix."""
    schedule = changes.get("schedule")
    if schedule is not None and (
        isinstance(schedule, (str, bytes))
        or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) and 0 <= s <= _TEN_YEARS
            for s in schedule
        )
    ):
        raise ValueError(
            "schedule= takes waits in seconds from 0 to 315360000 (ten years), e.g. (10, 60) "
            f"(got {schedule!r})"
        )
    timeout = changes.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout <= _MAX_TIMEOUT
    ):
        raise ValueError(f"timeout= takes seconds > 0 and at most 3600, e.g. 5 (got {timeout!r})")
    if "schedule" in changes and schedule is None:
        raise ValueError("schedule= takes waits in seconds, e.g. (10, 60); () means no retries")
    if schedule is not None and len(schedule) > MAX_SCHEDULE:
        raise ValueError(f"schedule= takes at most {MAX_SCHEDULE} waits (got {len(schedule)})")
    prefix = changes.get("id_prefix")
    if prefix is not None and (not isinstance(prefix, str) or len(prefix) > MAX_ID_PREFIX):
        raise ValueError(f"id_prefix= takes a string of at most {MAX_ID_PREFIX} characters")
