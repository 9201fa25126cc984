"""The fault menu: which faults the explorer may place at a request, and where each acts.

A :class:`PlannedFault` names one request of a run by its position (``seq``, the n-th request
the server received since the reset) and one menu entry; it is installed through the scripted
fault API with the ``seq`` matcher, so it fires at exactly that request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..faults import FAULT_KINDS, Fault, FaultPlan
from ..journal import Exchange
from ..policy import Policy

__all__ = ["HAZARDS", "MENU", "MenuEntry", "PlannedFault", "applicable"]

#: Hazards no client can defend against (the provider forgets the key); off by default.
HAZARDS: tuple[str, ...] = ("records_lost", "ttl")
_READS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class MenuEntry:
    """One fault the explorer can place: its name, the fault kind and options, where it acts."""

    name: str
    kind: str
    point: str
    options: tuple[tuple[str, Any], ...] = ()
    hazard: str | None = None
    #: Only for keyed requests whose key was new (the handler ran under a claim).
    needs_claim: bool = False
    #: Also at reads (GET, HEAD).
    reads: bool = False
    #: Only at a later attempt of a key (a TTL that ran out before it).
    needs_retry: bool = False
    #: Only where the parent run's request ran the handler (committed or had a side effect).
    needs_handler: bool = False


MENU: tuple[MenuEntry, ...] = (
    MenuEntry("reset", "reset", "before the idempotency layer: RST, nothing committed", reads=True),
    MenuEntry(
        "drop", "drop", "after commit: the connection closes, the response is lost", reads=True
    ),
    MenuEntry("late", "late", "after commit: the reply is held until the client gives up"),
    MenuEntry(
        "error_before_503",
        "error_before",
        "before the handler: 503, nothing committed",
        (("status", 503),),
        reads=True,
    ),
    MenuEntry(
        "error_before_503_retry_after",
        "error_before",
        "before the handler: 503 with Retry-After: 1, nothing committed",
        (("status", 503), ("retry_after", "1")),
    ),
    MenuEntry(
        "error_after_500",
        "error_after",
        "after the side effect: 500 (stored or not by the variant's rules)",
        (("status", 500),),
        needs_handler=True,
    ),
    MenuEntry("garbage", "garbage", "after commit: a truncated response"),
    MenuEntry(
        "in_flight",
        "in_flight",
        "at the claim: held until the next request with the key is answered",
        needs_claim=True,
    ),
    MenuEntry(
        "restart",
        "restart",
        "before the layer: the server restarts, records kept",
        (("keep_records", True),),
    ),
    MenuEntry(
        "restart_records_lost",
        "restart",
        "before the layer: the server restarts and loses its records (hazard)",
        (("keep_records", False),),
        hazard="records_lost",
    ),
    MenuEntry(
        "ttl_expired",
        "clock_jump",
        "before the layer: the key's TTL ran out before this attempt (hazard)",
        hazard="ttl",
        needs_retry=True,
    ),
)
MENU_BY_NAME = {entry.name: entry for entry in MENU}
#: The client crash (``restarts=True``): not a server fault, carried out by the runner.
CRASH = "crash"


@dataclass(frozen=True, order=True)
class PlannedFault:
    """One fault of a schedule: at request ``seq`` (its ``attempt`` under its key), fault
    ``name`` (a :data:`MENU` entry, or ``crash``)."""

    seq: int
    name: str
    attempt: int | None = field(default=None, compare=False)
    method: str = field(default="", compare=False)
    path: str = field(default="", compare=False)
    key: str | None = field(default=None, compare=False)

    @property
    def kind(self) -> str:
        return "crash" if self.name == CRASH else MENU_BY_NAME[self.name].kind

    def describe(self) -> str:
        attempt = f", attempt {self.attempt}" if self.attempt else ""
        return f"{self.name} at #{self.seq} ({self.method} {self.path}{attempt})"

    def options(self, policy: Policy, hold: float) -> dict[str, Any]:
        """The keyword options of the scripted fault that carries this one out."""
        if self.name == CRASH:
            return {"seconds": hold}
        entry = MENU_BY_NAME[self.name]
        options = dict(entry.options)
        if entry.kind in ("late", "in_flight"):
            options["seconds"] = hold
        if entry.kind == "clock_jump":
            options["seconds"] = (policy.ttl or 0.0) + 1.0
        return options

    def install(self, plan: FaultPlan, policy: Policy, hold: float) -> Fault:
        kind = "late" if self.name == CRASH else self.kind
        return plan.add(kind, seq=self.seq, **self.options(policy, hold))


def applicable(
    exchange: Exchange, policy: Policy, hazards: Iterable[str], crash: bool
) -> list[str]:
    """Names of the menu entries that apply at this request (in menu order)."""
    on = set(hazards)
    read = exchange.method in _READS
    out: list[str] = []
    for entry in MENU:
        if entry.kind not in FAULT_KINDS:
            continue
        if (entry.hazard is not None and entry.hazard not in on) or (read and not entry.reads):
            continue
        if entry.needs_claim and (exchange.key is None or exchange.decision != "new"):
            continue
        if entry.needs_retry and (exchange.key is None or (exchange.attempt or 1) < 2):
            continue
        if entry.needs_retry and policy.ttl is None:
            continue
        if entry.needs_handler and not (exchange.committed or exchange.side_effects):
            continue
        out.append(entry.name)
    if crash and (exchange.committed or exchange.side_effects):
        out.append(CRASH)
    return out
