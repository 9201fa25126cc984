"""A deterministic minimal instance of a schema: what a generated handler answers when the
document has no example (examples, ``const``, ``default`` and ``enum`` win when present)."""

from __future__ import annotations

import math
from typing import Any

from .document import Document, mapping_ref
from .fits import fits
from .regex_example import pattern_example

__all__ = [
    "discriminator_value",
    "example_of",
    "merged",
    "minimal_instance",
    "object_properties",
]

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
    only; ``allOf`` parts merged into one schema first; recursion stops at depth 8) and
    within its bounds: ``maxLength``, ``pattern``, ``maximum``, ``multipleOf``."""
    schema, _ = doc.deref(schema, "")
    if not isinstance(schema, dict) or depth > 8:
        return None
    if isinstance(schema.get("allOf"), list):
        schema = merged(doc, schema)
    found, value = example_of(schema)
    if found:
        return value
    for combo in ("oneOf", "anyOf"):
        if isinstance(schema.get(combo), list) and schema[combo]:
            return _branch_instance(doc, schema, combo, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else None
    return _of_kind(doc, schema, kind, depth)


def merged(doc: Document, schema: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """``schema`` with its ``allOf`` parts (``$ref``s followed) merged in: properties and
    required names joined, the tighter bound of each kind kept, other keywords the first
    part's that has them."""
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf") or ():
        part, _ = doc.deref(part, "")
        if not isinstance(part, dict) or depth > 8:
            continue
        if isinstance(part.get("allOf"), list):
            part = merged(doc, part, depth + 1)
        for key, value in part.items():
            out[key] = _joined(key, out[key], value) if key in out else value
    return out


def _joined(key: str, mine: Any, theirs: Any) -> Any:
    if key == "properties" and isinstance(mine, dict) and isinstance(theirs, dict):
        return {**theirs, **mine}
    if key == "required" and isinstance(mine, list) and isinstance(theirs, list):
        return [*mine, *(n for n in theirs if n not in mine)]
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (mine, theirs))
    if numbers and key in ("minimum", "exclusiveMinimum", "minLength", "minItems"):
        return max(mine, theirs)
    if numbers and key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems"):
        return min(mine, theirs)
    return mine


def _branch_instance(doc: Document, schema: dict[str, Any], combo: str, depth: int) -> Any:
    """The first branch's instance that its schema takes as a whole (for a ``oneOf``: under
    exactly one branch), its discriminator property set to the branch's name."""
    branches = schema[combo]
    tried = [_tagged(doc, schema, b, minimal_instance(doc, b, depth + 1)) for b in branches]
    if len(branches) == 1 or depth > 2:
        return tried[0]
    rest = {k: v for k, v in schema.items() if k not in (combo, "discriminator")}
    for value in tried:
        if fits(doc, {**rest, combo: branches}, value):
            return value
    return tried[0]


def _tagged(doc: Document, schema: dict[str, Any], branch: Any, value: Any) -> Any:
    found = discriminator_value(schema, branch)
    if found is None or not isinstance(value, dict):
        return value
    return {**value, found[0]: found[1]}


def discriminator_value(schema: dict[str, Any], branch: Any) -> tuple[str, str] | None:
    """``(propertyName, value)`` that selects ``branch`` under ``schema``'s discriminator."""
    found = schema.get("discriminator")
    ref = branch.get("$ref") if isinstance(branch, dict) else None
    if not isinstance(found, dict) or not isinstance(found.get("propertyName"), str):
        return None
    if not isinstance(ref, str):
        return None
    for value, target in (found.get("mapping") or {}).items():
        if isinstance(target, str) and mapping_ref(target) == ref:
            return found["propertyName"], str(value)
    return found["propertyName"], ref.rsplit("/", 1)[-1]


def _of_kind(doc: Document, schema: dict[str, Any], kind: Any, depth: int) -> Any:
    if kind == "object":
        props = schema.get("properties") or {}
        required = [n for n in schema.get("required") or [] if n in props]
        return {n: minimal_instance(doc, props[n], depth + 1) for n in required}
    if kind == "array":
        count = int(schema.get("minItems") or 0)
        return [minimal_instance(doc, schema.get("items", {}), depth + 1) for _ in range(count)]
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind)
    if kind == "boolean":
        return False
    return None


def _string(schema: dict[str, Any]) -> str:
    low, high = _count(schema.get("minLength"), 0), schema.get("maxLength")
    high = high if isinstance(high, int) and not isinstance(high, bool) else None
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        found = pattern_example(pattern, low, high)
        if found is not None:
            return found
    text = _FORMATS.get(str(schema.get("format")), "string")
    if high is not None and len(text) > high:
        text = text[:high] if str(schema.get("format")) not in _FORMATS else "x" * high
    return text.ljust(low, "x")


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _number(schema: dict[str, Any], kind: str) -> int | float:
    """The value nearest 0 within the bounds (3.0's boolean exclusive bounds read too) and a
    multiple of ``multipleOf``."""
    step = _real(schema.get("multipleOf")) or (1 if kind == "integer" else None)
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum")
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum")
    value: float = 0
    if low is not None and (value < low or (low_open and value <= low)):
        value = low
        if low_open:
            value = low + (step or 1) if step else low + 1
    if high is not None and (value > high or (high_open and value >= high)):
        value = high - (step or 1) if high_open else high
    if step:
        value = math.ceil(value / step) * step
        if high is not None and (value > high or (high_open and value >= high)):
            value -= step
    return int(value) if kind == "integer" or float(value).is_integer() else value


def _real(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bound(schema: dict[str, Any], name: str, exclusive: str) -> tuple[float | None, bool]:
    flag = schema.get(exclusive)
    if isinstance(flag, bool):  # 3.0: exclusiveMinimum: true qualifies minimum
        return _real(schema.get(name)), flag
    numeric = _real(flag)
    if numeric is not None:
        return numeric, True
    return _real(schema.get(name)), False


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
