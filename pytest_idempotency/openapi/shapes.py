"""Error bodies in an API's own words: a template filled per answer.

A template is JSON with placeholders: ``"{code}"``, ``"{message}"``, ``"{type}"``,
``"{request_id}"``, ``"{kind}"`` (the type, else the code), ``"{status}"`` (a number when it
is the whole string) and, for answers
about a stored record, ``"{resource_id}"`` and ``"{original_seq}"``. A key whose whole value
is a placeholder with no value (``"{type}"`` when the answer has none) is left out.
"""

from __future__ import annotations

import re
from typing import Any

from ..variant import Original, RecordErrorShape, Reply
from .document import Document
from .instances import minimal_instance, object_properties

__all__ = ["TemplateShape", "template_from_schema"]

_PLACEHOLDER = re.compile(
    r"\{(code|message|type|kind|request_id|status|resource_id|original_seq)\}"
)
_ROLES: dict[str, tuple[str, ...]] = {
    "code": ("errorcode", "code", "error_code", "errorkey", "reason"),
    "message": (
        "message",
        "detail",
        "errormessage",
        "error_description",
        "description",
        "msg",
        "title",
    ),
    "status": ("status", "statuscode", "status_code", "httpstatus"),
    "type": ("errortype", "type", "error_type", "category"),
    "request_id": (
        "requestid",
        "request_id",
        "traceid",
        "trace_id",
        "correlationid",
        "pspreference",
    ),
}
_MISSING = object()


def _fill(node: Any, values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        out = {}
        for name, value in node.items():
            filled = _fill(value, values)
            if filled is not _MISSING:
                out[name] = filled
        return out
    if isinstance(node, list):
        return [v for v in (_fill(item, values) for item in node) if v is not _MISSING]
    if not isinstance(node, str):
        return node
    whole = _PLACEHOLDER.fullmatch(node)
    if whole is not None:
        value = values.get(whole.group(1))
        return _MISSING if value is None else value
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1)) or ""), node)


class TemplateShape:
    """An :class:`~pytest_idempotency.variant.ErrorShape` (and record-aware shape) from a
    template; ``content_type`` is what the answers are sent as."""

    def __init__(self, template: Any, content_type: str = "application/json") -> None:
        self.template = template
        self.content_type = content_type
        text = repr(template)
        self.sees_record = "{resource_id}" in text or "{original_seq}" in text

    def __call__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        type: str | None,
        request_id: str,
        original: Original | None = None,
    ) -> Reply:
        values: dict[str, Any] = {
            "code": code,
            "message": message,
            "type": type,
            "kind": type or code,
            "request_id": request_id,
            "status": status,
        }
        if original is not None:
            values["resource_id"] = original.resource_id
            values["original_seq"] = original.seq
        return Reply(status, _fill(self.template, values), content_type=self.content_type)

    @property
    def record_shape(self) -> RecordErrorShape | None:
        return self if self.sees_record else None


def template_from_schema(doc: Document, schema: Any, depth: int = 0) -> Any:
    """A template for ``schema`` (the document's error body): its properties named like a
    code, a message, a status, a type or a request id carry those; other required ones get a
    minimal value; an ``error`` or ``errors`` property holding an object is filled inside."""
    props, required = object_properties(doc, schema)
    out: dict[str, Any] = {}
    for name, prop in props.items():
        low = name.lower()
        inner, _ = doc.deref(prop, "")
        if low in ("error", "errors") and isinstance(inner, dict) and depth < 2:
            kind = inner.get("type")
            if kind == "array" or "items" in inner:
                out[name] = [template_from_schema(doc, inner.get("items", {}), depth + 1)]
            else:
                out[name] = template_from_schema(doc, inner, depth + 1)
            continue
        role = next(
            (r for r, names in _ROLES.items() if low in names and r not in out.values()), None
        )
        if role is not None and f"{{{role}}}" not in out.values():
            out[name] = "{kind}" if role == "type" and name in required else f"{{{role}}}"
        elif name in required:
            out[name] = minimal_instance(doc, prop)
    if "{message}" not in out.values() and not any(
        isinstance(v, (dict, list)) for v in out.values()
    ):
        out.setdefault("message", "{message}")
    return out
