"""Regular expressions written by users (a schema's ``pattern``, a policy's ``key_pattern``),
matched against what clients send with a time bound.

Python's ``re`` can take exponential time on some patterns (``^(a+)+$`` against ``aaaa...b``)
and holds the interpreter while it does: one request would stall the whole server. The
``regex`` library matches with a timeout and lets other threads run meanwhile.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import regex

__all__ = [
    "MAX_PATTERN_PIECES",
    "PATTERN_TIMEOUT",
    "PRINTABLE_ASCII",
    "PatternTimeout",
    "PatternTooLarge",
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


#: Most pieces a pattern may compile to. The ``regex`` library writes out the required part of
#: a counted repeat (``a{1000}`` is a thousand pieces, about 270 bytes each; ``a{0,1000}`` is
#: one), so ``(?:(?:a{1000}){1000}){1000}`` would take a billion pieces and all the memory
#: there is (chosen: 20,000 pieces, about 5 MB, is far past what a real pattern needs:
#: ``[0-9a-f]{64}`` is 64).
MAX_PATTERN_PIECES = 20_000


class PatternTooLarge(regex.error):
    """A pattern that would compile to more than :data:`MAX_PATTERN_PIECES` pieces (a
    ``regex.error``, so every place that refuses a bad pattern refuses it, naming the fix)."""

    def __init__(self, pattern: str) -> None:
        super().__init__(
            f"it repeats fixed counts inside fixed counts past {MAX_PATTERN_PIECES:,} pieces "
            "(such as '(?:a{1000}){1000}'); write a range ('a{0,1000}') or fewer nested repeats"
        )


_COUNT = re.compile(r"\{(\d*)(?:,(\d*))?\}")
#: Escapes whose own ``{...}`` is part of them, not a repeat (``\p{L}``, ``\x{263a}``).
_BRACED_ESCAPES = frozenset("pPxNuUg")


def pieces(pattern: str) -> int:
    """About how many pieces ``pattern`` compiles to: one per atom, a group the sum of its
    contents, a counted repeat its required count times what it repeats (at least
    :data:`MAX_PATTERN_PIECES` + 1 once past the bound, so a huge count costs nothing)."""
    stack = [[0, 0]]  # per open group: [pieces so far, pieces of the last atom]
    index, end = 0, len(pattern)
    while index < end:
        char, top = pattern[index], stack[-1]
        if char == "(":
            stack.append([0, 0])
            index += 1
            continue
        if char == ")" and len(stack) > 1:
            inner = stack.pop()[0]
            stack[-1][0] += inner
            stack[-1][1] = inner
            index += 1
            continue
        count = _COUNT.match(pattern, index) if char == "{" else None
        if count is not None and (count.group(1) or count.group(2)):
            times = max(int(count.group(1) or 0), 1) if len(count.group(1)) < 9 else 10**9
            top[0] += top[1] * (times - 1)
            top[1] *= times
            index = count.end()
        else:
            index = _atom_end(pattern, index)
            top[0] += 1
            top[1] = 1
        if top[0] > MAX_PATTERN_PIECES:
            return MAX_PATTERN_PIECES + 1
    return stack[0][0]


def _atom_end(pattern: str, index: int) -> int:
    """Where the atom at ``index`` ends: an escape (with its braces), a class, or one char."""
    char = pattern[index]
    if char == "\\":
        after = index + 2
        if pattern[index + 1 : index + 2] in _BRACED_ESCAPES and pattern[after : after + 1] == "{":
            close = pattern.find("}", after)
            return close + 1 if close >= 0 else len(pattern)
        return after
    if char == "[":
        cursor = index + 1
        if pattern[cursor : cursor + 1] == "^":
            cursor += 1
        if pattern[cursor : cursor + 1] == "]":
            cursor += 1
        while cursor < len(pattern) and pattern[cursor] != "]":
            cursor += 2 if pattern[cursor] == "\\" else 1
        return cursor + 1
    return index + 1


@functools.lru_cache(maxsize=256)
def _small(pattern: str) -> Any:
    return regex.compile(pattern)


@functools.lru_cache(maxsize=8)
def _large(pattern: str) -> Any:
    return regex.compile(pattern)


def compiled(pattern: str) -> Any:
    """``pattern`` compiled, remembered (256 small ones, 8 of over 1,000 pieces: the cache
    stays within tens of MB), or :class:`PatternTooLarge` before it is compiled."""
    if type(pattern) is not str:
        return regex.compile(pattern)  # regex's own TypeError
    size = pieces(pattern)
    if size > MAX_PATTERN_PIECES:
        raise PatternTooLarge(pattern)
    return _small(pattern) if size <= 1_000 else _large(pattern)


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
