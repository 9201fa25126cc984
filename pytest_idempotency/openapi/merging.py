"""One schema from an ``allOf``: its parts (``$ref``s followed) merged into one object, as the
generated examples and the discriminator's branch tags read it."""

from __future__ import annotations

from typing import Any

from .document import Document

__all__ = ["merged"]


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
