"""When the idempotency layer asks a route's handler about a key's existing record.

Some providers answer a repeated key with more than a stored response: Whet answers a
duplicate of a still-running request with the ids the original reserved, and checks the
endpoint's invariants for a new body before it replays. The engine does not know those rules;
for the routes a policy lists in ``consulted_routes`` it runs the handler once more with a
:class:`Consultation` visible through :func:`consultation`, and the handler answers without
performing a side effect:

- ``provisional`` (the record is still in flight): the handler returns the answer the duplicate
  gets now, or calls :meth:`Consultation.decline` (the duplicate then waits for the original);
- ``revalidate`` (the record is completed): the handler returns a status below 400 when the
  new body passes the endpoint's invariants (the stored response is replayed), or its error.

A 5xx answer (an injected ``error_after`` fault on the asking request) counts as no answer:
nothing was committed for the fault to follow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from .store import Record

__all__ = ["Consultation", "ConsultMode", "consultation", "consulting"]

ConsultMode = Literal["provisional", "revalidate"]


@dataclass
class Consultation:
    """The question the engine asks a handler about ``record`` (another request's)."""

    mode: ConsultMode
    record: Record
    declined: bool = False

    def decline(self) -> None:
        """This handler has no answer for this question: fall back to the policy's default."""
        self.declined = True


_CURRENT: ContextVar[Consultation | None] = ContextVar("consultation", default=None)


def consultation() -> Consultation | None:
    """The question being asked of the running handler, or ``None`` on an ordinary run."""
    return _CURRENT.get()


@contextlib.contextmanager
def consulting(question: Consultation) -> Iterator[Consultation]:
    """Make ``question`` visible to the handler run inside the block."""
    token = _CURRENT.set(question)
    try:
        yield question
    finally:
        _CURRENT.reset(token)
