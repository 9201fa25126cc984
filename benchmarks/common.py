"""Shared helpers for the benchmarks: statistics, machine facts, quiet servers."""

from __future__ import annotations

import logging
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version


def quiet() -> None:
    """No access log from werkzeug: the bare pytest-httpserver would otherwise print a line per
    request (the fake is quiet by design), and terminal output is not what is measured."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Spread:
    """Median and spread of several rounds of one measurement."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        """``1.23 (1.10-1.31)``: median, then the lowest and highest round."""
        return (
            f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}-{self.high:.{digits}f}{unit})"
        )


def spread(values: Sequence[float]) -> Spread:
    return Spread(tuple(values))


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(share / 100 * len(ordered)) - 1))
    return ordered[rank]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    """CPU, core count, OS, and the versions of Python and of the libraries measured."""
    return {
        "CPU": cpu_model(),
        "nproc": str(os.cpu_count()),
        "Python": sys.version.split()[0],
        "OS": platform.platform(),
        **{name: version(name) for name in ("werkzeug", "pytest-httpserver", "requests", "httpx")},
    }
