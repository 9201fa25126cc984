"""Bounds on what the fake reads and builds, and the check of a parsed file against them.

A JSON or YAML reader builds more than a JSON document can say: YAML aliases share one node
in many places (an alias "bomb" is a kilobyte that expands to billions of nodes) or make a
node contain itself, and YAML writes values JSON has no form for (``.nan``, ``.inf``,
``!!binary``). :func:`check_tree` refuses all of those, and nesting deeper than
:data:`MAX_DEPTH`, walking each node once, without recursion, before anything else walks it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from .errors import DescriptionError, pointer

__all__ = ["MAX_CHARS", "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_ITEMS", "MAX_NODES", "check_tree"]

#: The largest file read (the document, an overlay or a referenced file).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: The deepest nesting of objects and arrays in a file.
MAX_DEPTH = 256
#: The most ``$ref`` hops from a reference to the definition it names (chosen: generated
#: documents alias a schema a few times; a longer chain is a mistake or an attack).
MAX_REF_HOPS = 64
#: The most nodes a file may expand to once its YAML aliases are followed.
MAX_NODES = 5_000_000
#: The longest string a generated answer may hold (``minLength``, a patterned id's width).
MAX_CHARS = 1_000_000
#: The most items (or properties) a generated answer's array (or object) may need.
MAX_ITEMS = 10_000

_SCALARS = (str, int, float, bool, type(None))


def check_tree(data: Any, source: str) -> None:
    """Raise :class:`DescriptionError` if ``data`` (a parsed file) nests deeper than
    :data:`MAX_DEPTH`, contains itself, expands past :data:`MAX_NODES` or holds a value JSON
    cannot (not a number, infinity, bytes, a set, a date)."""
    heights: dict[int, int] = {}
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, tuple[str, ...], bool]] = [(data, (), False)]
    while stack:
        node, path, done = stack.pop()
        key = id(node)
        if done:
            _close(node, key, path, heights, sizes, source)
            open_.discard(key)
            continue
        if key in heights:
            if len(path) + heights[key] > MAX_DEPTH:
                raise _too_deep(source, path)
            continue
        if key in open_:
            raise _error(source, path, "a YAML alias makes this node contain itself", _ALIAS_FIX)
        if len(path) >= MAX_DEPTH:
            raise _too_deep(source, path)
        open_.add(key)
        stack.append((node, path, True))
        for name, child in _children(node):
            if isinstance(child, (dict, list)):
                stack.append((child, (*path, name), False))
            else:
                _scalar(child, (*path, name), source)


def _close(
    node: Any,
    key: int,
    path: tuple[str, ...],
    heights: dict[int, int],
    sizes: dict[int, int],
    source: str,
) -> None:
    kids = [id(child) for _, child in _children(node) if isinstance(child, (dict, list))]
    heights[key] = 1 + max((heights[k] for k in kids), default=0)
    sizes[key] = 1 + len(node) + sum(sizes[k] for k in kids)
    if sizes[key] > MAX_NODES:
        raise _error(
            source,
            path,
            f"this node expands to more than {MAX_NODES:,} values once its YAML aliases are "
            "followed",
            _ALIAS_FIX,
        )


def _children(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        return ((str(name), value) for name, value in node.items())
    return ((str(index), value) for index, value in enumerate(node))


def _scalar(value: Any, path: tuple[str, ...], source: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _error(
            source,
            path,
            f"{value!r} is not a JSON number",
            "write a finite number (JSON has no NaN or Infinity; YAML's .nan and .inf are neither)",
        )
    if not isinstance(value, _SCALARS):
        raise _error(
            source,
            path,
            f"a {type(value).__name__} value is not JSON",
            "write a JSON value: a string (e.g. base64 text for bytes), number, boolean, null, "
            "array or object",
        )


_ALIAS_FIX = "write the value out, or use fewer nested YAML aliases"


def _too_deep(source: str, path: tuple[str, ...]) -> DescriptionError:
    return _error(
        source,
        path[:8],
        f"below here, objects and arrays are nested more than {MAX_DEPTH} levels deep",
        f"nest at most {MAX_DEPTH} levels (move deep schemas into components and $ref them)",
    )


def _error(source: str, path: tuple[str, ...], problem: str, fix: str) -> DescriptionError:
    return DescriptionError(source, pointer(*path), problem, fix)
