"""The fault-schedule explorer: run one client operation under every fault schedule and
report what duplicated or lost work. Imports without pytest."""

from __future__ import annotations

from .inflight import InFlight, in_flight
from .invocation import ClientCrash
from .menu import HAZARDS, MENU, MenuEntry, PlannedFault
from .report import ExplorationReport, Schedule
from .runner import crash_after
from .search import ExplorationError, ExplorationTypeError, explore
from .sleep import fake_sleep
from .verdicts import QUOTES, VERDICTS, Attribution

__all__ = [
    "HAZARDS",
    "MENU",
    "QUOTES",
    "VERDICTS",
    "Attribution",
    "ClientCrash",
    "ExplorationError",
    "ExplorationTypeError",
    "ExplorationReport",
    "InFlight",
    "MenuEntry",
    "PlannedFault",
    "Schedule",
    "crash_after",
    "explore",
    "fake_sleep",
    "in_flight",
]
