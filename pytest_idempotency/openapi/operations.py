"""The operations of a document: route, parameters, request schema, and what the fake does
with each (create, read, list, update, delete, or a static answer)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .document import Document
from .errors import pointer
from .handlers import ACTIONS

__all__ = ["Operation", "operations"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAM = re.compile(r"\{([^}/]+)\}")
_JSON = re.compile(r"^application/([\w.+-]*\+)?json|^\*/\*", re.IGNORECASE)


@dataclass
class Operation:
    method: str
    template: str
    where: str
    op: dict[str, Any]
    parameters: list[dict[str, Any]]
    ext: dict[str, Any] = field(default_factory=dict)
    action: str = "static"

    @property
    def name(self) -> str:
        return str(self.op.get("operationId") or f"{self.method} {self.template}")

    @property
    def is_item(self) -> bool:
        segments = [s for s in self.template.split("/") if s]
        return bool(segments) and _PARAM.fullmatch(segments[-1]) is not None

    @property
    def resource(self) -> str:
        static = [s for s in self.template.split("/") if s and _PARAM.fullmatch(s) is None]
        return str(self.ext.get("resource") or (static[-1] if static else "object"))

    def route_path(self, base: str) -> str:
        """The path as a route pattern: ``{payment-id}`` becomes ``{payment_id}``."""
        return base + _PARAM.sub(lambda m: "{" + _ident(m.group(1)) + "}", self.template)


def _ident(name: str) -> str:
    out = re.sub(r"\W", "_", name)
    return out if re.match(r"[A-Za-z_]", out) else f"p_{out}"


def operations(doc: Document) -> Iterator[Operation]:
    """Every operation under ``paths``, classified; a bad one raises naming its pointer."""
    for template, item in doc.data["paths"].items():
        item_where = pointer("paths", template)
        if not str(template).startswith("/"):
            raise doc.error(
                item_where,
                f"the path {template!r} does not start with '/'",
                "write paths as '/things/{id}'",
            )
        item, _ = doc.deref(item, item_where)
        if not isinstance(item, dict):
            continue
        shared = [doc.deref(p, item_where)[0] for p in item.get("parameters") or []]
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            where = pointer("paths", template, method)
            own = [doc.deref(p, where)[0] for p in op.get("parameters") or []]
            names = {(p.get("in"), p.get("name")) for p in own if isinstance(p, dict)}
            params = [
                p
                for p in shared
                if isinstance(p, dict) and (p.get("in"), p.get("name")) not in names
            ]
            params += [p for p in own if isinstance(p, dict)]
            ext = _extension(doc, op, where)
            operation = Operation(method.upper(), str(template), where, op, params, ext)
            operation.action = _classify(doc, operation)
            yield operation


def _extension(doc: Document, op: dict[str, Any], where: str) -> dict[str, Any]:
    raw = op.get("x-idempotency")
    if raw is None:
        return {}
    if isinstance(raw, bool):
        return {"keyed": raw}
    if not isinstance(raw, dict):
        raise doc.error(
            where + "/x-idempotency",
            f"x-idempotency must be true, false or an object (got {raw!r})",
            "write e.g. x-idempotency: {keyed: true, key_max_length: 45}",
        )
    known = {
        "keyed",
        "required",
        "key_max_length",
        "action",
        "resource",
        "id_field",
        "id_prefix",
        "status",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise doc.error(
            where + "/x-idempotency",
            f"unknown field(s) {', '.join(unknown)}",
            f"use only {', '.join(sorted(known))}",
        )
    action = raw.get("action")
    if action is not None and action not in ACTIONS:
        raise doc.error(
            where + "/x-idempotency/action",
            f"unknown action {action!r}",
            f"use one of {', '.join(ACTIONS)}",
        )
    return dict(raw)


def _classify(doc: Document, operation: Operation) -> str:
    declared = operation.ext.get("action")
    if declared is not None:
        return str(declared)
    method, item = operation.method, operation.is_item
    if method == "POST":
        return "update" if item and _has_create(doc, operation) else "create"
    if method in ("GET", "HEAD"):
        return (
            "read" if item else "list" if _collection_creates(doc, operation.template) else "static"
        )
    if method in ("PUT", "PATCH", "DELETE") and item:
        return "delete" if method == "DELETE" else "update"
    raise doc.error(
        operation.where,
        f"the fake cannot make {method} {operation.template} stateful (it is not a read, list, "
        "create, update or delete of a collection item)",
        "declare what it does with x-idempotency: {action: static} (or create, read, list, "
        "update, delete) on the operation, in the document or in an overlay file",
    )


def _collection_creates(doc: Document, template: str) -> bool:
    item = doc.data["paths"].get(template)
    return isinstance(item, dict) and isinstance(item.get("post"), dict)


def _has_create(doc: Document, operation: Operation) -> bool:
    """A POST on an item path updates it when its collection has a create (Stripe style)."""
    collection = operation.template.rstrip("/").rpartition("/")[0]
    return bool(collection) and _collection_creates(doc, collection)


def json_media(content: Any) -> dict[str, Any] | None:
    """The JSON media type object of a ``content`` map, if any."""
    return json_media_entry(content)[1]


def json_media_entry(content: Any) -> tuple[str, dict[str, Any] | None]:
    """``(media type, media type object)`` of the first JSON entry of a ``content`` map."""
    if isinstance(content, dict):
        for media, value in content.items():
            if _JSON.match(str(media)) and isinstance(value, dict):
                return str(media), value
    return "application/json", None
