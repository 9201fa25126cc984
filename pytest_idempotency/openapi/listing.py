"""Whether a GET of a collection path answers a list: its success answer is an array, or an
object with an array property (``{data: [...], has_more}``). A singleton such as Stripe's
``GET /v1/account`` (an object with no array property) answers the object, not ``[]``."""

from __future__ import annotations

from typing import Any

from .document import Document
from .merging import merged

__all__ = ["answers_list", "success_schema"]


def success_schema(doc: Document, op: dict[str, Any], where: str) -> Any:
    """The JSON schema of an operation's first 2xx answer (``None``: none declared)."""
    responses = op.get("responses")
    if not isinstance(responses, dict):
        return None
    codes = sorted(str(c) for c in responses if str(c)[:1] == "2" and str(c)[1:].isdigit())
    code = codes[0] if codes else next((c for c in ("2XX", "2xx") if c in responses), None)
    response = doc.deref(responses[code], where)[0] if code is not None else None
    content = response.get("content") if isinstance(response, dict) else None
    for media, value in content.items() if isinstance(content, dict) else ():
        if "json" in str(media).lower() and isinstance(value, dict):
            return value.get("schema")
    return None


def answers_list(doc: Document, op: Any) -> bool:
    """Whether operation ``op`` answers a list (also when its answer has no schema, or one
    that cannot tell: the fake cannot know it is not)."""
    schema, _ = doc.deref(success_schema(doc, op.op, op.where), op.where)
    if not isinstance(schema, dict) or any(k in schema for k in ("oneOf", "anyOf")):
        return True
    if _is_array(doc, schema):
        return True
    props = merged(doc, schema).get("properties")
    if not isinstance(props, dict):
        return not _is_object(schema)
    return any(_is_array(doc, prop) for prop in props.values())


def _is_array(doc: Document, schema: Any) -> bool:
    schema, _ = doc.deref(schema, "")
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return "array" in kinds or "items" in schema or "prefixItems" in schema


def _is_object(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)
