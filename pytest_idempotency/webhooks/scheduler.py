"""Delivery on the fake clock: jobs fall due, are attempted, retried on the schedule.

Nothing here sleeps or runs in the background: :meth:`Scheduler.run_due` makes every attempt
that is due on the fake clock, in the calling thread (``clock.advance()`` calls it).
"""

from __future__ import annotations

import fnmatch
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .destinations import Answer, Destination, WebhookRequest
from .events import Event
from .faults import DeliveryFault
from .journal import MAX_ATTEMPTS, Attempt, DeliveryJournal
from .signing import sign
from .spec import EventSpec

__all__ = ["Endpoint", "Job", "Scheduler"]

JobState = Literal["pending", "held", "delivered", "failed", "drained"]


@dataclass
class Endpoint:
    """A registered receiver: where, which events, which signing secret."""

    id: str
    destination: Destination
    url: str
    secret: str | None
    events: tuple[str, ...] | None = None
    route: bool = False

    def wants(self, event_type: str) -> bool:
        return self.events is None or any(fnmatch.fnmatchcase(event_type, p) for p in self.events)

    def describe(self) -> str:
        return self.destination.describe()


@dataclass
class Job:
    """One event bound for one endpoint, until it is acknowledged or gives up."""

    seq: int
    event: Event
    endpoint: Endpoint
    due: float
    fault: DeliveryFault | None = None
    attempts: int = 0
    state: JobState = "pending"
    history: list[Attempt] = field(default_factory=list)


class Scheduler:
    def __init__(
        self,
        now: Callable[[], float],
        spec: Callable[[], EventSpec],
        journal: DeliveryJournal,
    ) -> None:
        self._now, self._spec, self.journal = now, spec, journal
        self.lock = threading.RLock()
        #: Every job, newest last; past :data:`~.journal.MAX_ATTEMPTS` the oldest are dropped
        #: (and counted in :attr:`dropped_jobs`); pending and held ones stay in ``_active``.
        self.jobs: deque[Job] = deque(maxlen=MAX_ATTEMPTS)
        self.dropped_jobs = 0
        #: Jobs still pending or held (what ``next_due`` and releases scan).
        self._active: list[Job] = []
        self._seq = 0
        self._running = threading.Lock()
        #: Set while concurrent copies are in flight (see ``Webhooks.checkpoint``).
        self.race: threading.Barrier | None = None

    # -- queueing ----------------------------------------------------------------------------

    def add(self, event: Event, endpoint: Endpoint, fault: DeliveryFault | None, due: float) -> Job:
        with self.lock:
            self._seq += 1
            job = Job(self._seq, event, endpoint, due, fault)
            if fault is not None and fault.kind == "delay":
                job.due += fault.seconds
            if fault is not None and fault.kind == "out_of_order":
                job.state = "held"
            if len(self.jobs) == MAX_ATTEMPTS:
                self.dropped_jobs += 1  # the append below pushes out the oldest
            self.jobs.append(job)
            self._active.append(job)
            return job

    def active_jobs(self) -> list[Job]:
        """The jobs still pending or held (never dropped, however many jobs there were)."""
        with self.lock:
            return [j for j in self._active if j.state in ("pending", "held")]

    def next_due(self, now: float) -> Job | None:
        """The pending job due earliest, if it is due by ``now``."""
        with self.lock:
            due = [j for j in self._active if j.state == "pending" and j.due <= now]
        return min(due, key=lambda j: (j.due, j.seq)) if due else None

    # -- running -----------------------------------------------------------------------------

    def run_due(
        self,
        scheduled_at: Callable[[float], float | None] = lambda now: None,
        fire_next: Callable[[float], object] = lambda now: None,
    ) -> int:
        """Make every attempt due by now, in the order of their times on the fake clock, each
        at its own time: one jump of a day replays a day of retries. Later events
        (``scheduled_at``/``fire_next``) happen in that order too. Returns how many attempts.
        A call made while another runs (a receiver moving the clock) returns 0 at once: the
        running one picks up what fell due."""
        if not self._running.acquire(blocking=False):
            return 0
        made = 0
        try:
            while True:
                now = self._now()
                job = self.next_due(now)
                fires = scheduled_at(now)
                if fires is not None and (job is None or fires <= job.due):
                    fire_next(now)
                    continue
                if job is None:
                    return made
                self._attempt(job)
                made += 1
        finally:
            self._running.release()

    def _attempt(self, job: Job) -> None:
        spec = self._spec()
        at = job.due
        job.attempts += 1
        fault = job.fault if job.attempts == 1 else None
        kind = fault.kind if fault is not None else None
        label = (f"chaos:{kind}" if fault.chaos else kind) if fault is not None else None
        if kind == "concurrent" and fault is not None:
            answer = self.send_together(job, fault.copies + 1, label, at)[0]
        else:
            answer = self.send(job, copy=0, fault=label, at=at, lost=kind == "lost_ack")
            if kind in ("duplicate", "burst") and fault is not None:
                for copy in range(1, fault.copies + 1):
                    self.send(job, copy=copy, fault=label, at=at)
        with self.lock:
            if answer.ok and kind != "lost_ack":
                job.state = "delivered"
            elif job.attempts <= len(spec.schedule):
                job.due = at + spec.schedule[job.attempts - 1]
            else:
                job.state = "failed"
            self._release_held(job, at)
            self.settle()

    def _release_held(self, after: Job, at: float) -> None:
        for held in self._active:
            if held.state == "held" and held.endpoint is after.endpoint and held.seq < after.seq:
                held.state, held.due = "pending", at

    def settle(self) -> None:
        """Forget finished jobs from the active list (they stay in :attr:`jobs`)."""
        with self.lock:
            if any(j.state not in ("pending", "held") for j in self._active):
                self._active = [j for j in self._active if j.state in ("pending", "held")]

    # -- the wire ----------------------------------------------------------------------------

    def request_for(self, job: Job, at: float) -> WebhookRequest:
        spec = self._spec()
        headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("User-Agent", spec.user_agent),
            *spec.extra_headers,
        ]
        secret = job.endpoint.secret
        if spec.signature_header and secret:
            headers.append((spec.signature_header, sign(job.event.body, secret, int(at))))
        return WebhookRequest(job.endpoint.url, tuple(headers), job.event.body)

    def send(
        self, job: Job, *, copy: int, fault: str | None, at: float, lost: bool = False
    ) -> Answer:
        request = self.request_for(job, at)
        answer = job.endpoint.destination.send(request, self._spec().timeout)
        self._record(job, answer, copy, fault, at, lost)
        return answer

    def send_together(self, job: Job, copies: int, fault: str | None, at: float) -> list[Answer]:
        """``copies`` identical deliveries released at once by a barrier, all awaited."""
        start = threading.Barrier(copies)
        answers: list[Answer | None] = [None] * copies
        request = self.request_for(job, at)
        timeout = self._spec().timeout

        def one(i: int) -> None:
            try:
                start.wait()
                answers[i] = job.endpoint.destination.send(request, timeout)
            except Exception as exc:  # never a traceback on stderr from a delivery thread
                answers[i] = Answer("error", None, f"delivery failed: {type(exc).__name__}: {exc}")

        self.race = threading.Barrier(copies)
        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(copies)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            self.race = None
        out = [a or Answer("error", None, "the delivery thread died") for a in answers]
        for i, answer in enumerate(out):
            self._record(job, answer, i, fault, at)
        return out

    def _record(
        self,
        job: Job,
        answer: Answer,
        copy: int,
        fault: str | None,
        at: float,
        lost: bool = False,
    ) -> None:
        attempt = self.journal.record(
            event_id=job.event.id,
            event_type=job.event.type,
            endpoint=job.endpoint.describe(),
            attempt=job.attempts,
            at=at,
            outcome="lost_ack" if answer.ok and lost else answer.outcome,
            status=answer.status,
            answer=answer.body,
            fault=fault,
            copy=copy,
        )
        with self.lock:
            job.history.append(attempt)
