"""A deterministic minimal instance of a schema: what a generated handler answers when the
document has no example (examples, ``const``, ``default`` and ``enum`` win when present)."""

from __future__ import annotations

from typing import Any

from .document import Document

__all__ = ["example_of", "minimal_instance", "object_properties"]

_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00Z",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "ipv4": "127.0.0.1",
}


def example_of(schema: dict[str, Any]) -> tuple[bool, Any]:
    """``(found, value)``: a value the schema itself names (const, default, example, enum)."""
    for name in ("const", "default", "example"):
        if name in schema:
            return True, schema[name]
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return True, examples[0]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return True, enum[0]
    return False, None


def minimal_instance(doc: Document, schema: Any, depth: int = 0) -> Any:
    """The smallest value ``schema`` accepts, built deterministically (required properties
    only; recursion stops at depth 8)."""
    schema, _ = doc.deref(schema, "")
    if not isinstance(schema, dict) or depth > 8:
        return None
    found, value = example_of(schema)
    if found:
        return value
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            sub = minimal_instance(doc, part, depth + 1)
            if isinstance(sub, dict):
                merged.update(sub)
        return merged
    for combo in ("oneOf", "anyOf"):
        if isinstance(schema.get(combo), list) and schema[combo]:
            return minimal_instance(doc, schema[combo][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else None
    return _of_kind(doc, schema, kind, depth)


def _of_kind(doc: Document, schema: dict[str, Any], kind: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties") or {}
        required = [n for n in schema.get("required") or [] if n in props]
        return {n: minimal_instance(doc, props[n], depth + 1) for n in required}
    if kind == "array":
        count = int(schema.get("minItems") or 0)
        return [minimal_instance(doc, schema.get("items", {}), depth + 1) for _ in range(count)]
    if kind == "string":
        text = _FORMATS.get(str(schema.get("format")), "string")
        return text.ljust(int(schema.get("minLength") or 0), "x")
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        value = low if isinstance(low, (int, float)) and not isinstance(low, bool) else 0
        exclusive = schema.get("exclusiveMinimum")
        if exclusive is not None and exclusive is not False:
            value += 1
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    return None


def object_properties(
    doc: Document, schema: Any, depth: int = 0
) -> tuple[dict[str, Any], list[str]]:
    """The properties of an object schema and the names it requires, ``allOf`` parts merged
    in (four levels deep at most)."""
    schema, _ = doc.deref(schema, "")
    if not isinstance(schema, dict) or depth > 4:
        return {}, []
    props = dict(schema.get("properties") or {})
    required = list(schema.get("required") or [])
    for part in schema.get("allOf") or []:
        more, need = object_properties(doc, part, depth + 1)
        props.update(more)
        required.extend(need)
    return props, required
