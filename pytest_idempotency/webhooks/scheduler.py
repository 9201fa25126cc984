"""Delivery on the fake clock: jobs fall due, are attempted, retried on the schedule.

Nothing here sleeps or runs in the background: :meth:`Scheduler.run_due` makes the attempts
that are due on the fake clock, in the calling thread (``clock.advance()`` calls it). With a
``budget`` it starts no attempt once it has spent that many real seconds delivering: what is
left stays due (pending) for the next call, so one clock move against a stuck receiver returns
within the budget plus one attempt's timeout.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .destinations import Answer, Destination, WebhookRequest
from .events import Event, event_size
from .faults import DeliveryFault
from .journal import MAX_ATTEMPTS, Attempt, DeliveryJournal, Kept
from .queue import MAX_QUEUED, DeliveryQueue
from .signing import sign
from .spec import EventSpec

__all__ = ["BARRIER_SECONDS", "CLOCK_BUDGET", "MAX_JOB_HISTORY", "Endpoint", "Job", "Scheduler"]

JobState = Literal["pending", "held", "delivered", "failed", "drained", "dropped"]

#: Real seconds concurrent copies wait at their barrier for each other to start (they start
#: at once; past it the barrier is broken and the copies count as failed attempts).
BARRIER_SECONDS = 10.0
#: Real seconds one clock move (or one ``POST /__admin/webhooks/deliver``) spends starting
#: delivery attempts; an attempt started before it runs out still ends at its own deadline
#: (chosen: a clock move answers within this plus one delivery timeout plus the 1 s a cut
#: attempt's thread gets to end, 16 s with the default 10 s timeout, under the 30 s many HTTP
#: clients wait by default; a responsive receiver takes milliseconds an attempt, so only a
#: slow or stuck one is ever left due).
CLOCK_BUDGET = 5.0
#: Attempts a job remembers in :attr:`Job.history` (the journal keeps them all, bounded).
MAX_JOB_HISTORY = 1_000


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
    history: deque[Attempt] = field(default_factory=lambda: deque(maxlen=MAX_JOB_HISTORY))
    #: Which heap entry of the queue is this job's live one.
    token: int = field(default=0, repr=False)


def event_size_of_job(job: Job) -> int:
    return 256 + event_size(job.event)


class Scheduler:
    def __init__(
        self,
        now: Callable[[], float],
        spec: Callable[[], EventSpec],
        journal: DeliveryJournal,
    ) -> None:
        self._now, self._spec, self.journal = now, spec, journal
        self.lock = threading.RLock()
        #: Every job, newest last; past :data:`~.journal.MAX_ATTEMPTS` (or 64 MiB of event
        #: bodies) the oldest are dropped from this list and counted in :attr:`dropped_jobs`;
        #: pending and held ones stay in the queue until made (or the queue is full).
        self.jobs: Kept[Job] = Kept(MAX_ATTEMPTS, event_size_of_job)
        #: Jobs still pending or held.
        self.queue = DeliveryQueue(MAX_QUEUED)
        self._seq = 0
        self._running = threading.Lock()
        #: Deliveries left due when the last budgeted run spent its budget (0: none).
        self.left_due = 0
        #: Set while concurrent copies are in flight (see ``Webhooks.checkpoint``).
        self.race: threading.Barrier | None = None
        #: Starts one delivery thread of concurrent copies (a seam: a test can make it fail).
        self.start_thread: Callable[[threading.Thread], None] = threading.Thread.start

    @property
    def dropped_jobs(self) -> int:
        """Jobs no longer listed in :attr:`jobs` (they were delivered all the same)."""
        return self.jobs.dropped

    @property
    def dropped_queued(self) -> int:
        """Deliveries given up unmade because more were queued at once than the bound."""
        return self.queue.dropped

    # -- queueing ----------------------------------------------------------------------------

    def add(self, event: Event, endpoint: Endpoint, fault: DeliveryFault | None, due: float) -> Job:
        with self.lock:
            self._seq += 1
            job = Job(self._seq, event, endpoint, due, fault)
            if fault is not None and fault.kind == "delay":
                job.due += fault.seconds
            if fault is not None and fault.kind == "out_of_order":
                job.state = "held"
            self.jobs.append(job)
            self.queue.add(job)
            return job

    def active_jobs(self) -> list[Job]:
        """The jobs still pending or held (kept however many jobs were listed since)."""
        with self.lock:
            return self.queue.jobs()

    def next_due(self, now: float) -> Job | None:
        """The pending job due earliest, if it is due by ``now``."""
        with self.lock:
            return self.queue.first_due(now)

    # -- running -----------------------------------------------------------------------------

    def run_due(
        self,
        scheduled_at: Callable[[float], float | None] = lambda now: None,
        fire_next: Callable[[float], object] = lambda now: None,
        budget: float | None = None,
    ) -> int:
        """Make every attempt due by now, in the order of their times on the fake clock, each
        at its own time: one jump of a day replays a day of retries. Later events
        (``scheduled_at``/``fire_next``) happen in that order too. Returns how many attempts.
        A call made while another runs (a receiver moving the clock) returns 0 at once: the
        running one picks up what fell due.

        With ``budget`` (real seconds), no attempt starts once that much time went on
        delivering (the first always starts, so each call makes progress): the rest stay
        pending and due, in order, for the next call (:attr:`left_due` counts them). Later
        events due by now still happen, so resources show the clock's time."""
        if not self._running.acquire(blocking=False):
            return 0
        made = 0
        started = time.monotonic()
        spent = False
        try:
            while True:
                now = self._now()
                if budget is not None and made and time.monotonic() - started >= budget:
                    spent = True
                job = None if spent else self.next_due(now)
                fires = scheduled_at(now)
                if fires is not None and (job is None or fires <= job.due):
                    fire_next(now)
                    continue
                if job is None:
                    self.left_due = self.due_count(now) if spent else 0
                    return made
                self._attempt(job)
                made += 1
        finally:
            self._running.release()

    def due_count(self, now: float) -> int:
        """Deliveries pending and due by ``now``: not made yet (a clock move that spent its
        budget leaves them for the next)."""
        with self.lock:
            return sum(1 for job in self.queue.jobs() if job.state == "pending" and job.due <= now)

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
            if job.state != "pending":
                pass  # drained (or dropped) while it was being made
            elif answer.ok and kind != "lost_ack":
                job.state = "delivered"
            elif job.attempts <= len(spec.schedule):
                job.due = at + spec.schedule[job.attempts - 1]
                self.queue.push(job)
            else:
                job.state = "failed"
            if job.state != "pending":
                self.queue.discard(job)
            self.queue.release_held(job, at)

    def settle(self) -> None:
        """Forget finished jobs from the queue (they stay in :attr:`jobs`)."""
        with self.lock:
            self.queue.settle()

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
        """``copies`` identical deliveries released at once by a barrier, all awaited. If a
        delivery thread cannot start (or the barrier times out) none is sent: each copy is
        recorded as a failed attempt, and the job is retried on the schedule."""
        timeout = self._spec().timeout
        together = _Together(job, self.request_for(job, at), copies, timeout)
        self.race = threading.Barrier(copies, timeout=BARRIER_SECONDS)
        try:
            together.run(self.start_thread, self.race)
        finally:
            self.race = None
        out = together.answers()
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
            reached=answer.reached,
        )
        with self.lock:
            job.history.append(attempt)


class _Together:
    """Concurrent copies of one delivery: threads that start, meet at a barrier, then send."""

    def __init__(self, job: Job, request: WebhookRequest, copies: int, timeout: float) -> None:
        self.job, self.request, self.timeout = job, request, timeout
        self.barrier = threading.Barrier(copies, timeout=BARRIER_SECONDS)
        self.results: list[Answer | None] = [None] * copies
        self.threads = [
            threading.Thread(target=self.one, args=(i,), name="webhook-copy", daemon=True)
            for i in range(copies)
        ]
        self.unsent = "the delivery thread did not finish"

    def one(self, i: int) -> None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.results[i] = Answer("error", None, f"not sent: {self.unsent}", sent=False)
            return
        try:
            self.results[i] = self.job.endpoint.destination.send(self.request, self.timeout)
        except Exception as exc:  # never a traceback on stderr from a delivery thread
            # The destination itself failed (its own code, not the receiver's): nothing says
            # the request got anywhere.
            text = f"delivery failed: {type(exc).__name__}: {exc}"
            self.results[i] = Answer("error", None, text, sent=False)

    def run(self, start: Callable[[threading.Thread], None], race: threading.Barrier) -> None:
        started: list[threading.Thread] = []
        for thread in self.threads:
            try:
                start(thread)
            except Exception as exc:  # no thread left (RuntimeError): abort, never hang
                self.unsent = f"a delivery thread could not start ({type(exc).__name__}: {exc})"
                self.barrier.abort()
                race.abort()
                break
            started.append(thread)
        for i, thread in enumerate(started):
            thread.join(BARRIER_SECONDS + self.timeout)
            if thread.is_alive() and self.results[i] is None:
                # Past its barrier and still sending: the receiver may have acted on it.
                text = f"no answer within {self.timeout:g} s"
                self.results[i] = Answer("timeout", None, text, sent=True)

    def answers(self) -> list[Answer]:
        unsent = Answer("error", None, f"not sent: {self.unsent}", sent=False)
        return [a or unsent for a in self.results]
