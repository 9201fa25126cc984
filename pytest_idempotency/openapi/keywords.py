"""The JSON Schema 2020-12 metaschema's rules for the keywords :mod:`.checks` does not word
itself: references and anchors, ``$vocabulary``, ``dependentRequired``, ``dependencies``,
``uniqueItems``, ``multipleOf``, ``minContains``/``maxContains``, ``type`` lists, the string
annotations the validator keeps (``format``, ``contentMediaType``). A schema the fake's
validator would refuse when it takes the variant is refused at load time, at its place."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["keyword_problem"]

_ANCHOR = re.compile(r"[A-Za-z_][-A-Za-z0-9._]*")
_STRINGS = (
    "$schema",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "$comment",
    "format",
    "contentEncoding",
    "contentMediaType",
)
_ANCHORS = ("$anchor", "$dynamicAnchor", "$recursiveAnchor")
_COUNTS = ("minContains", "maxContains")
_KINDS = frozenset(("array", "boolean", "integer", "null", "number", "object", "string"))
_FIX = "correct the schema (see https://json-schema.org/draft/2020-12)"


def keyword_problem(key: str, value: Any) -> tuple[str, str] | None:
    """``(problem, fix)`` when the metaschema refuses ``value`` for ``key``, else ``None``."""
    if key in _STRINGS and not isinstance(value, str):
        return f"{key} must be a string (got {value!r:.60})", _FIX
    if key in _ANCHORS and not (isinstance(value, str) and _ANCHOR.fullmatch(value)):
        return (
            f"{key} must be a plain name (got {value!r:.60})",
            f"write {key}: name (letters, digits, '-', '.', '_'), or remove it",
        )
    if key == "$id" and not (isinstance(value, str) and "#" not in value.rstrip("#")):
        return f"$id must be a URI without a fragment (got {value!r:.60})", _FIX
    if key in _COUNTS and not _count(value):
        return f"{key} must be a non-negative integer (got {value!r:.60})", _FIX
    if key == "uniqueItems" and not isinstance(value, bool):
        return f"uniqueItems must be true or false (got {value!r:.60})", _FIX
    if key == "multipleOf" and _number(value) and value <= 0:
        return f"multipleOf must be greater than 0 (got {value!r})", "use a positive number"
    if key == "type" and isinstance(value, list) and len(set(map(str, value))) != len(value):
        return f"the type {value!r} lists a type twice", "list each type once"
    return _maps(key, value)


def _maps(key: str, value: Any) -> tuple[str, str] | None:
    if key == "$vocabulary" and not (
        isinstance(value, dict) and all(isinstance(v, bool) for v in value.values())
    ):
        return "$vocabulary must map URIs to true or false", _FIX
    if key == "dependentRequired" and not (
        isinstance(value, dict) and all(_names(v) for v in value.values())
    ):
        return (
            "dependentRequired must map each property to the names it requires, once each",
            "write dependentRequired: {card: [billing_address]}",
        )
    if key == "dependencies" and not (
        isinstance(value, dict)
        and all(_names(v) or isinstance(v, (dict, bool)) for v in value.values())
    ):
        return (
            "dependencies must map each property to a schema or to the names it requires",
            "write dependentRequired: {card: [billing_address]} (or dependentSchemas)",
        )
    return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _names(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(n, str) for n in value)
        and len(set(value)) == len(value)
    )
