"""A deterministic minimal instance of a schema: what a generated handler answers when the
document has no example (examples, ``const``, ``default`` and ``enum`` win when present)."""

from __future__ import annotations

import math
import re
from typing import Any

from .discriminators import branch_tags, discriminator_of
from .document import Document
from .fits import fits
from .merging import merged
from .regex_example import pattern_example

__all__ = [
    "discriminator_value",
    "example_of",
    "merged",
    "minimal_instance",
    "object_properties",
    "undeclared",
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


def _branch_instance(doc: Document, schema: dict[str, Any], combo: str, depth: int) -> Any:
    """The first branch's instance that its schema takes as a whole (for a ``oneOf``: under
    exactly one branch), its discriminator property set to the branch's name."""
    branches = schema[combo]
    tried = [_tagged(doc, schema, b, minimal_instance(doc, b, depth + 1)) for b in branches]
    if len(branches) == 1 or depth > 2:
        return tried[0]
    for value in tried:  # under a discriminator, the branch its value selects
        if fits(doc, schema, value):
            return value
    return tried[0]


def _tagged(doc: Document, schema: dict[str, Any], branch: Any, value: Any) -> Any:
    found = discriminator_value(doc, schema, branch)
    if found is None or not isinstance(value, dict):
        return value
    return {**value, found[0]: found[1]}


def discriminator_value(
    doc: Document, schema: dict[str, Any], branch: Any
) -> tuple[str, Any] | None:
    """``(propertyName, value)`` that selects ``branch`` under ``schema``'s discriminator: its
    ``mapping`` entry, else the first value the branch fixes the property to (``const``,
    ``enum``), else the name of the schema it ``$ref``s."""
    found = discriminator_of(schema)
    if found is None:
        return None
    name, mapping = found
    ref = branch.get("$ref") if isinstance(branch, dict) else None
    for value, target in mapping.items():
        if target == ref:
            return name, value
    tags = branch_tags(doc, branch, name)
    if tags:
        return name, tags[0]
    return (name, ref.rsplit("/", 1)[-1]) if isinstance(ref, str) else None


def _of_kind(doc: Document, schema: dict[str, Any], kind: Any, depth: int) -> Any:
    if kind == "object":
        props = {**undeclared(schema), **(schema.get("properties") or {})}
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
    in (four levels deep at most); a required name ``properties`` does not declare is a
    property of the schema ``additionalProperties`` or ``patternProperties`` give it, else
    a string."""
    props, required = _declared(doc, schema, depth)
    schema, _ = doc.deref(schema, "")
    extra = (
        undeclared({**schema, "properties": props, "required": required})
        if props or required
        else {}
    )
    return {**extra, **props}, required


def _declared(doc: Document, schema: Any, depth: int) -> tuple[dict[str, Any], list[str]]:
    schema, _ = doc.deref(schema, "")
    if not isinstance(schema, dict) or depth > 4:
        return {}, []
    props = dict(schema.get("properties") or {})
    required = list(schema.get("required") or [])
    for part in schema.get("allOf") or []:
        more, need = _declared(doc, part, depth + 1)
        props.update(more)
        required.extend(need)
    return props, required


def undeclared(schema: Any) -> dict[str, Any]:
    """``{name: schema}`` for each name ``schema`` requires but ``properties`` does not
    declare (Box's ``{properties: {login}, required: [id]}``): what ``patternProperties``
    or ``additionalProperties`` say of it, else ``{type: string}``."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    names = schema.get("required")
    names = (
        [n for n in names if isinstance(n, str) and n not in props]
        if isinstance(names, list)
        else []
    )
    return {n: _undeclared_schema(schema, n) for n in names}


def _undeclared_schema(schema: dict[str, Any], name: str) -> Any:
    patterns = schema.get("patternProperties")
    for pattern, sub in patterns.items() if isinstance(patterns, dict) else ():
        try:
            if re.search(pattern, name):
                return sub
        except (re.error, TypeError):
            continue
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) and extra else {"type": "string"}
