"""Where a document says an operation honours an idempotency key: a header parameter named
like ``Idempotency-Key``, a body property named like ``idempotency_key``, or an
``x-idempotency`` extension on the operation; limits from the parameter's schema
(``maxLength``) or its description ("a maximum of 64 characters")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .document import Document
from .operations import Operation, json_media

__all__ = ["KeyUse", "key_use"]

_HEADER = re.compile(r"^(x-)?(idempotency|idempotent)[-_]?key$", re.IGNORECASE)
_FIELD = re.compile(r"^(idempotency|idempotent)[-_]?key$", re.IGNORECASE)
_LIMIT = re.compile(r"(?:maximum|max\.?|at most|up to)\s+(?:of\s+)?(\d+)\s+char", re.IGNORECASE)


@dataclass(frozen=True)
class KeyUse:
    """How one operation takes its key (``keyed`` False: it ignores keys)."""

    keyed: bool
    header: str | None = None
    field: str | None = None
    required: bool = False
    max_length: int | None = None


def key_use(doc: Document, operation: Operation) -> KeyUse:
    ext = operation.ext
    header, required, limit = None, False, None
    for param in operation.parameters:
        if param.get("in") == "header" and _HEADER.match(str(param.get("name", ""))):
            header, required = str(param["name"]), bool(param.get("required"))
            limit = _limit(doc, param)
    field, field_limit = (None, None) if header else _body_field(doc, operation)
    limit = limit if header else field_limit
    keyed = bool(ext.get("keyed", header is not None or field is not None))
    max_length = ext.get("key_max_length", limit)
    return KeyUse(keyed, header, field, bool(ext.get("required", required)), max_length)


def _limit(doc: Document, param: dict[str, Any]) -> int | None:
    schema, _ = doc.deref(param.get("schema") or {}, "")
    if isinstance(schema, dict) and isinstance(schema.get("maxLength"), int):
        return int(schema["maxLength"])
    found = _LIMIT.search(str(param.get("description") or ""))
    return int(found.group(1)) if found else None


def _body_field(doc: Document, operation: Operation) -> tuple[str | None, int | None]:
    """The body property that carries the key, and its ``maxLength``."""
    body, _ = doc.deref(operation.op.get("requestBody") or {}, operation.where)
    media = json_media(body.get("content") if isinstance(body, dict) else None)
    if media is None:
        return None, None
    schema, _ = doc.deref(media.get("schema") or {}, operation.where)
    props = (schema.get("properties") if isinstance(schema, dict) else None) or {}
    name = next((str(n) for n in props if _FIELD.match(str(n))), None)
    if name is None:
        return None, None
    return name, _limit(doc, {"schema": props[name]})
