"""Request bodies sent as ``application/x-www-form-urlencoded`` (Twilio, Stripe): every value
of a form is a string, so a built request schema accepts the string form of each number and
boolean it declares (``Count=5`` for ``type: integer``, ``true``/``false``)."""

from __future__ import annotations

from typing import Any

__all__ = ["FORM", "form_media", "form_schema"]

FORM = "application/x-www-form-urlencoded"

_AS_TEXT: dict[str, dict[str, Any]] = {
    "integer": {"type": "string", "pattern": r"^-?[0-9]+$"},
    "number": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"},
    "boolean": {"enum": ["true", "false"]},
}
_CHILDREN = ("items", "additionalProperties", "not")
_MAPS = ("properties", "patternProperties", "$defs")
_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def form_media(content: Any) -> dict[str, Any] | None:
    """The form media type object of a ``content`` map, if any."""
    if isinstance(content, dict):
        for media, value in content.items():
            if str(media).split(";")[0].strip().lower() == FORM and isinstance(value, dict):
                return value
    return None


def form_schema(schema: Any) -> Any:
    """A built request schema that also takes the string form of its numbers and booleans."""
    if not isinstance(schema, dict):
        return schema
    out = {k: _child(k, v) for k, v in schema.items()}
    kinds = out.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    texts = [_AS_TEXT[k] for k in kinds if k in _AS_TEXT]
    return {"anyOf": [out, *texts]} if texts else out


def _child(name: str, value: Any) -> Any:
    if name in _CHILDREN:
        return form_schema(value)
    if name in _MAPS and isinstance(value, dict):
        return {k: form_schema(v) for k, v in value.items()}
    if name in _LISTS and isinstance(value, list):
        return [form_schema(v) for v in value]
    return value
