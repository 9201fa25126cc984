"""Schemas that reach themselves through ``$ref``, ``allOf``, ``anyOf``, ``oneOf`` or ``not``
alone, without a property or an item in between: no value can ever be checked against them
(the check would loop for ever), so they are refused at load time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .document import Document
from .errors import DescriptionError

__all__ = ["cycle_errors"]

_APPLICATORS = ("allOf", "anyOf", "oneOf")


def cycle_errors(doc: Document, refs: Iterable[str]) -> list[DescriptionError]:
    """One error per loop among the schemas ``refs`` name (named at its first schema)."""
    edges = {ref: _reached(doc.lookup(ref)) for ref in refs}
    state: dict[str, int] = {}  # 1: being walked, 2: done
    errors: list[DescriptionError] = []
    for start in sorted(edges):
        loop = _find_loop(start, edges, state)
        if loop:
            errors.append(
                doc.error(
                    doc.where_of(loop[0]),
                    "this schema contains itself through "
                    + " -> ".join(r if r.startswith("#") else doc.where_of(r) for r in loop)
                    + " with no property or item in between, so no value can be checked "
                    "against it",
                    "put the recursion under properties or items, or remove the $ref",
                )
            )
    return errors


def _find_loop(start: str, edges: dict[str, list[str]], state: dict[str, int]) -> list[str]:
    path: list[str] = []
    stack: list[tuple[str, int]] = [(start, 0)]
    while stack:
        ref, index = stack.pop()
        if index == 0:
            if state.get(ref) == 2:
                continue
            if state.get(ref) == 1:  # on this walk's path: a loop, reported once
                for walked in path:
                    state[walked] = 2
                return [*path[path.index(ref) :], ref]
            state[ref] = 1
            path.append(ref)
        nexts = edges.get(ref, [])
        if index < len(nexts):
            stack.append((ref, index + 1))
            stack.append((nexts[index], 0))
        else:
            state[ref] = 2
            path.pop()
    return []


def _reached(schema: Any) -> list[str]:
    """The references ``schema`` applies in place (not under properties or items)."""
    out: list[str] = []
    pending = [schema]
    while pending:
        node = pending.pop()
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("$ref"), str):
            out.append(node["$ref"])
        for key in _APPLICATORS:
            if isinstance(node.get(key), list):
                pending.extend(node[key])
        pending.append(node.get("not"))
    return out
