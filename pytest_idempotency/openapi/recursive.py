"""JSON Schema 2019-09's ``$recursiveRef``/``$recursiveAnchor`` (OpenAI's ``CompoundFilter``)
read as the ``$ref`` they stand for. A ``$recursiveRef: '#'`` names the nearest schema
around it that says ``$recursiveAnchor: true`` (in a document without one, the component
schema it is in), so it becomes ``$ref`` to that schema's pointer and ``$recursiveAnchor`` is
dropped; the 2020-12 validator the fake uses knows neither keyword (its metaschema refuses
``$recursiveAnchor: true``). Chosen: the reference is resolved where it is written, not
through the dynamic scope, so a ``$recursiveAnchor`` schema that extends another one
through ``$ref`` is validated as the one that holds the ``$recursiveRef``."""

from __future__ import annotations

from typing import Any

from .errors import DescriptionError, pointer
from .extensions import is_extension

__all__ = ["resolve_recursive"]

_FIX = (
    "write $recursiveRef: '#' inside a schema that says $recursiveAnchor: true (or inside a "
    "component schema), or write $ref: '#/components/schemas/Name' to the schema meant"
)


def resolve_recursive(data: Any, place: str, source: str) -> Any:
    """``data`` (a document, or a file at ``place`` relative to it: ``''`` for the document)
    with each ``$recursiveRef`` a ``$ref`` and no ``$recursiveAnchor``; unchanged (the same
    object) when it has neither."""
    if not _has_recursive(data):
        return data
    return _Resolver(place, source).node(data, (), None)


def _has_recursive(data: Any) -> bool:
    stack, seen = [data], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            if "$recursiveRef" in node or "$recursiveAnchor" in node:
                return True
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return False


class _Resolver:
    def __init__(self, place: str, source: str) -> None:
        self.place, self.source = place, source

    def node(self, node: Any, path: tuple[str, ...], anchor: tuple[str, ...] | None) -> Any:
        if isinstance(node, list):
            return [self.node(v, (*path, str(i)), anchor) for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        if node.get("$recursiveAnchor") is True:
            anchor = path
        out: dict[str, Any] = {}
        for name, value in node.items():
            if name == "$recursiveAnchor":
                continue
            if is_extension(name, path[-1:]):
                out[name] = value
            elif name != "$recursiveRef":
                out[name] = self.node(value, (*path, str(name)), anchor)
        if "$recursiveRef" in node:
            target = {"$ref": self.target(node["$recursiveRef"], path, anchor)}
            if "$ref" in out:
                out["allOf"] = [*out.get("allOf", []), target]
            else:
                out.update(target)
        return out

    def target(self, ref: Any, path: tuple[str, ...], anchor: tuple[str, ...] | None) -> str:
        if anchor is None and not self.place and path[:2] == ("components", "schemas"):
            anchor = path[:3]
        if ref != "#" or anchor is None:
            problem = (
                f"$recursiveRef {ref!r} is not '#'"
                if ref != "#"
                else "this $recursiveRef has no schema with $recursiveAnchor: true around it"
            )
            where = pointer(*path, "$recursiveRef")
            raise DescriptionError(
                self.source, f"{self.place}#{where}" if self.place else where, problem, _FIX
            )
        return "#" + pointer(*anchor)
