"""Regular expressions written by users (a schema's ``pattern``, a policy's ``key_pattern``),
matched against what clients send with a time bound.

Python's ``re`` can take exponential time on some patterns (``^(a+)+$`` against ``aaaa...b``)
and holds the interpreter while it does: one request would stall the whole server. The
``regex`` library matches with a timeout and lets other threads run meanwhile.
"""

from __future__ import annotations

import functools
from typing import Any

import regex

__all__ = [
    "PATTERN_TIMEOUT",
    "PRINTABLE_ASCII",
    "PatternTimeout",
    "bounded_fullmatch",
    "bounded_search",
    "compiled",
]

#: Longest one regular expression may take to match one value, seconds (chosen: a real
#: pattern matches a 1 MiB body in milliseconds; a second means it backtracks without end).
PATTERN_TIMEOUT = 1.0


class PatternTimeout(Exception):
    """A pattern took longer than :data:`PATTERN_TIMEOUT` to match a value."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        super().__init__(
            f"the pattern {pattern[:80]!r} took more than {PATTERN_TIMEOUT:g} s to match; it "
            "backtracks without end on this value: rewrite it without nested repetition "
            "(such as '(a+)+')"
        )


#: Printable ASCII, space included (the default ``key_pattern``).
PRINTABLE_ASCII = r"[\x20-\x7e]+"

#: Patterns whose whole-text match a string method answers, with no regex machinery (the
#: timeout alone costs two clock system calls a match).
_WHOLE_MATCHES = {
    PRINTABLE_ASCII: lambda text: bool(text) and text.isascii() and text.isprintable()
}


@functools.lru_cache(maxsize=1024)
def compiled(pattern: str) -> Any:
    return regex.compile(pattern)


def bounded_search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` is found in ``text`` (``re.search``), or :class:`PatternTimeout`.
    The match lets other threads run while it goes on."""
    try:
        return compiled(pattern).search(text, timeout=PATTERN_TIMEOUT, concurrent=True) is not None
    except TimeoutError:
        raise PatternTimeout(pattern) from None


def bounded_fullmatch(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches the whole of ``text`` (``re.fullmatch``), or
    :class:`PatternTimeout`."""
    answer = _WHOLE_MATCHES.get(pattern)
    if answer is not None:
        return answer(text)
    try:
        found = compiled(pattern).fullmatch(text, timeout=PATTERN_TIMEOUT, concurrent=True)
    except TimeoutError:
        raise PatternTimeout(pattern) from None
    return found is not None
