"""The deliveries not yet made: pending jobs by due time (a heap), held ones by endpoint.

However long a receiver is down and however long nobody moves the fake clock, the queue stays
bounded: past :data:`MAX_QUEUED` jobs (or :data:`~.journal.MAX_KEPT_BYTES` of their event
bodies) the oldest is given up (state ``dropped``) and counted in :attr:`DeliveryQueue.dropped`.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING

from .events import event_size
from .journal import MAX_ATTEMPTS, MAX_KEPT_BYTES

if TYPE_CHECKING:
    from .scheduler import Job

__all__ = ["MAX_QUEUED", "DeliveryQueue"]

#: Most deliveries queued (pending or held) at once (chosen: the same as the events, jobs and
#: attempts kept; a real provider gives up on what it cannot deliver rather than grow).
MAX_QUEUED = MAX_ATTEMPTS


def _size(job: Job) -> int:
    return 256 + event_size(job.event)


class DeliveryQueue:
    """Jobs still pending or held, oldest first. The caller holds the scheduler's lock."""

    def __init__(self, limit: int = MAX_QUEUED, max_bytes: int = MAX_KEPT_BYTES) -> None:
        self._jobs: dict[int, tuple[Job, int]] = {}
        self._heap: list[tuple[float, int, int, Job]] = []
        self._held: dict[int, dict[int, Job]] = {}
        self._tokens = itertools.count(1)
        self._limit, self._max_bytes = limit, max_bytes
        self.bytes = 0
        #: Jobs given up because the queue was full (never delivered).
        self.dropped = 0

    def add(self, job: Job) -> None:
        size = _size(job)
        self._jobs[job.seq] = (job, size)
        self.bytes += size
        if job.state == "held":
            self._held.setdefault(id(job.endpoint), {})[job.seq] = job
        else:
            self.push(job)
        jobs = self._jobs
        while len(jobs) > self._limit or (self.bytes > self._max_bytes and len(jobs) > 1):
            oldest = next(iter(self._jobs.values()))[0]
            oldest.state = "dropped"
            self.discard(oldest)
            self.dropped += 1

    def push(self, job: Job) -> None:
        """``job`` is pending at its (new) ``due`` time."""
        job.token = next(self._tokens)
        heapq.heappush(self._heap, (job.due, job.seq, job.token, job))

    def first_due(self, now: float) -> Job | None:
        """The pending job due earliest, if it is due by ``now``."""
        heap = self._heap
        while heap:
            due, seq, token, job = heap[0]
            if job.state == "pending" and job.token == token and seq in self._jobs:
                return job if due <= now else None
            heapq.heappop(heap)  # a job since made, moved, drained or dropped
        return None

    def discard(self, job: Job) -> None:
        """Forget ``job`` (made, failed, drained or dropped)."""
        kept = self._jobs.pop(job.seq, None)
        if kept is not None:
            self.bytes -= kept[1]
        held = self._held.get(id(job.endpoint))
        if held is not None:
            held.pop(job.seq, None)
            if not held:
                del self._held[id(job.endpoint)]

    def release_held(self, after: Job, at: float) -> None:
        """Held jobs of ``after``'s endpoint queued before it become due at ``at``."""
        held = self._held.get(id(after.endpoint), {})
        for job in [j for seq, j in held.items() if seq < after.seq and j.state == "held"]:
            held.pop(job.seq)
            job.state, job.due = "pending", at
            self.push(job)
        if not held:
            self._held.pop(id(after.endpoint), None)

    def settle(self) -> None:
        """Forget every job no longer pending or held."""
        for job, _ in list(self._jobs.values()):
            if job.state not in ("pending", "held"):
                self.discard(job)

    def jobs(self) -> list[Job]:
        return [job for job, _ in self._jobs.values() if job.state in ("pending", "held")]

    @property
    def limit(self) -> int:
        return self._limit

    def __len__(self) -> int:
        return len(self._jobs)
