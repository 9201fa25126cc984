"""A short deterministic string a schema's ``pattern`` matches, for the generated answers
(the first alternative, the fewest repetitions, the first character of each class), checked
against the pattern before it is used (``None``: no such string was found)."""

from __future__ import annotations

import sys
from typing import Any

from ..patterns import PatternTimeout, bounded_search

if sys.version_info >= (3, 11):
    from re import _parser as sre_parse
else:  # pragma: no cover - exercised on 3.10 only
    import sre_parse

__all__ = ["pattern_example"]

_CATEGORY = {"CATEGORY_DIGIT": "0", "CATEGORY_WORD": "a", "CATEGORY_SPACE": " "}
_CANDIDATES = "a0A_-. x"
#: The most characters one generated value may hold.
_LONGEST = 1000


def pattern_example(pattern: str, low: int = 0, high: int | None = None) -> str | None:
    """A string of ``low`` to ``high`` characters that ``pattern`` is found in, or ``None``."""
    try:
        parsed = sre_parse.parse(pattern)
    except Exception:
        return None
    for stretch in (0, max(low, 1)):
        try:
            text = _emit(parsed, stretch, {})
        except _NoExample:
            return None
        if _fits(pattern, text, low, high):
            return text
    return None


class _NoExample(Exception):
    """The pattern uses what this generator does not build (lookarounds)."""


def _fits(pattern: str, text: str, low: int, high: int | None) -> bool:
    if len(text) < low or (high is not None and len(text) > high) or len(text) > _LONGEST:
        return False
    try:
        return bounded_search(pattern, text)
    except PatternTimeout:
        return False


def _emit(items: Any, stretch: int, groups: dict[int, str]) -> str:
    return "".join(_one(str(op), arg, stretch, groups) for op, arg in items)


def _one(op: str, arg: Any, stretch: int, groups: dict[int, str]) -> str:
    if op == "LITERAL":
        return chr(arg)
    if op == "NOT_LITERAL":
        return next(c for c in _CANDIDATES if ord(c) != arg)
    if op == "ANY":
        return "a"
    if op == "IN":
        return _in_class(arg)
    if op == "AT":
        return ""
    if op == "BRANCH":
        return _emit(arg[1][0], stretch, groups)
    if op == "SUBPATTERN":
        text = _emit(arg[-1], stretch, groups)
        if arg[0] is not None:
            groups[arg[0]] = text
        return text
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        least, most, inner = arg
        if least > _LONGEST:  # no value that long is built (nor the pattern compiled)
            raise _NoExample(op)
        count: int = least if not stretch else min(most, max(least, stretch), _LONGEST)
        one = _emit(inner, 0, groups) if count else ""
        if len(one) * count > _LONGEST:
            raise _NoExample(op)
        return one * count
    if op == "GROUPREF":
        return groups.get(arg, "")
    if op == "ATOMIC_GROUP":
        return _emit(arg, stretch, groups)
    raise _NoExample(op)


def _in_class(items: Any) -> str:
    if items and str(items[0][0]) == "NEGATE":
        return next((c for c in _CANDIDATES if _in(c, items[1:]) is False), "a")
    for op, arg in items:
        kind = str(op)
        if kind == "LITERAL":
            return chr(arg)
        if kind == "RANGE":
            return chr(arg[0])
        if kind == "CATEGORY" and str(arg) in _CATEGORY:
            return _CATEGORY[str(arg)]
    return next((c for c in _CANDIDATES if _in(c, items)), "a")


def _in(char: str, items: Any) -> bool:
    for op, arg in items:
        kind = str(op)
        if kind == "LITERAL" and ord(char) == arg:
            return True
        if kind == "RANGE" and arg[0] <= ord(char) <= arg[1]:
            return True
        if kind == "CATEGORY" and _CATEGORY.get(str(arg)) == char:
            return True
    return False
