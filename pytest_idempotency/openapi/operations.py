"""The operations of a document: route, parameters, request schema, and what the fake does
with each (create, read, list, update, delete, or a static answer)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..policy import is_final_status
from .document import Document
from .errors import DescriptionError, pointer
from .handlers import ACTIONS
from .listing import answers_list
from .structure import check_parameters, check_responses
from .templates import TEMPLATE_FIX, template_problem, template_shape

__all__ = ["Operation", "operations"]

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAM = re.compile(r"\{([^}/]+)\}")
#: An item path's last segment: a parameter, maybe with a suffix (``{Sid}.json``).
_ITEM = re.compile(r"\{([^}/]+)\}([^/{}]*)")
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
        return _last_item(self.template) is not None

    @property
    def item_param(self) -> str | None:
        """The parameter that names the item (``Sid`` in ``/Messages/{Sid}.json``)."""
        match = _last_item(self.template)
        return match.group(1) if match else None

    @property
    def suffix(self) -> str:
        """What follows the item's parameter in the last segment (``.json``)."""
        match = _last_item(self.template)
        return match.group(2) if match else ""

    @property
    def collection(self) -> str:
        """The collection path of an item path (``/Messages.json`` for
        ``/Messages/{Sid}.json``)."""
        return self.template.rstrip("/").rpartition("/")[0] + self.suffix

    @property
    def resource(self) -> str:
        static = [s for s in self.template.split("/") if s and _PARAM.search(s) is None]
        last = re.sub(r"\.\w+$", "", static[-1]) if static else ""
        return str(self.ext.get("resource") or last or "object")

    def route_path(self, base: str) -> str:
        """The path as a route pattern: ``{payment-id}`` becomes ``{payment_id}``; names that
        become the same (``{a-b}`` and ``{a_b}``) are numbered (``{a_b}``, ``{a_b_2}``)."""
        used: set[str] = set()

        def group(match: re.Match[str]) -> str:
            name = stem = _ident(match.group(1))
            number = 1
            while name in used:
                number += 1
                name = f"{stem}_{number}"
            used.add(name)
            return "{" + name + "}"

        return base + _PARAM.sub(group, self.template)


def _last_item(template: str) -> re.Match[str] | None:
    segments = [s for s in template.split("/") if s]
    return _ITEM.fullmatch(segments[-1]) if segments else None


def _ident(name: str) -> str:
    out = re.sub(r"\W", "_", name)
    return out if re.match(r"[A-Za-z_]", out) else f"p_{out}"


def operations(doc: Document, errors: list[DescriptionError]) -> list[Operation]:
    """Every operation under ``paths``, classified (an operation given as a ``$ref`` is
    followed); every bad one is added to ``errors``, named by its pointer, for the caller to
    refuse with the rest."""
    found: list[Operation] = []
    errors.extend(_duplicate_templates(doc))
    for template, item in doc.data["paths"].items():
        try:
            ops = list(_path_item(doc, str(template), item))
        except DescriptionError as exc:
            errors.append(exc)
            continue
        for op in ops:
            if isinstance(op, DescriptionError):
                errors.append(op)
            else:
                found.append(op)
    return found


def _path_item(doc: Document, template: str, item: Any) -> Iterator[Operation | DescriptionError]:
    item_where = pointer("paths", template)
    if not template.startswith("/"):
        raise doc.error(
            item_where,
            f"the path {template!r} does not start with '/'",
            "write paths as '/things/{id}'",
        )
    problem = template_problem(template)
    if problem:
        raise doc.error(
            item_where, f"the path {template!r} can never match a request: {problem}", TEMPLATE_FIX
        )
    item, _ = doc.followed(item, item_where)
    if not isinstance(item, dict):
        raise doc.error(
            item_where,
            f"a path item must be an object (got {type(item).__name__})",
            "write its operations under their methods, e.g. {get: {responses: ...}}",
        )
    shared = check_parameters(doc, item, item_where)
    for method in _METHODS:
        if method not in item:
            continue
        where = pointer("paths", template, method)
        try:
            yield _operation(doc, template, method, item[method], where, shared)
        except DescriptionError as exc:
            yield exc


def _duplicate_templates(doc: Document) -> list[DescriptionError]:
    """Paths that differ only in their parameters' names (``/a/{x}``, ``/a/{y}``)."""
    first: dict[str, str] = {}
    errors: list[DescriptionError] = []
    for template in doc.data["paths"]:
        shape = template_shape(str(template))
        if shape in first:
            errors.append(
                doc.error(
                    pointer("paths", str(template)),
                    f"the path {template!r} is the path {first[shape]!r} with other parameter "
                    "names: a request cannot tell them apart",
                    "merge their operations under one path",
                )
            )
        first.setdefault(shape, str(template))
    return errors


def _operation(
    doc: Document, template: str, method: str, op: Any, where: str, shared: list[Any]
) -> Operation:
    op, _ = doc.followed(op, where)  # x-idempotency beside a $ref is read
    if not isinstance(op, dict):
        raise doc.error(
            where,
            f"an operation must be an object (got {type(op).__name__} {op!r:.40})",
            "write the operation object (responses, requestBody, ...) or remove the method",
        )
    _check_parts(doc, op, where)
    check_responses(doc, op, where)
    own = check_parameters(doc, op, where)
    names = {(p["in"], p["name"]) for p in own}
    params = [p for p in shared if (p["in"], p["name"]) not in names] + own
    ext = _extension(doc, op, where)
    operation = Operation(method.upper(), template, where, op, params, ext)
    operation.action = _classify(doc, operation)
    return operation


def _check_parts(doc: Document, op: dict[str, Any], where: str) -> None:
    """``responses`` must be an object, ``parameters`` an array, ``requestBody`` an object."""
    for name, kind, fix in (
        ("responses", dict, "write responses: {'200': {description: ok}}"),
        ("parameters", list, "write parameters: [{name: id, in: path, required: true}]"),
    ):
        if name in op and not isinstance(op[name], kind):
            raise doc.error(
                where + "/" + name,
                f"{name} must be an {'object' if kind is dict else 'array'} "
                f"(got {type(op[name]).__name__})",
                fix,
            )
    body = doc.deref(op["requestBody"], where)[0] if "requestBody" in op else {}
    if not isinstance(body, dict) or not isinstance(body.get("content", {}), dict):
        raise doc.error(
            where + "/requestBody",
            "a requestBody must be an object whose content is an object of media types",
            "write requestBody: {content: {application/json: {schema: ...}}}",
        )


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
    for name, value in raw.items():
        problem = _field_problem(name, value)
        if problem:
            raise doc.error(where + pointer("x-idempotency", name), problem, _EXT_FIX)
    return dict(raw)


_EXT_FIX = (
    "write keyed/required as true or false, key_max_length and status as integers, "
    "resource/id_field/id_prefix as strings"
)


def _field_problem(name: str, value: Any) -> str | None:
    """What is wrong with one operation ``x-idempotency`` field's value (``None``: nothing)."""
    integer = isinstance(value, int) and not isinstance(value, bool)
    if name in ("keyed", "required") and not isinstance(value, bool):
        return f"{name} must be true or false (got {value!r:.40})"
    if name in ("resource", "id_field", "id_prefix") and not (isinstance(value, str) and value):
        return f"{name} must be a non-empty string (got {value!r:.40})"
    if name == "key_max_length" and not (integer and value > 0):
        return f"key_max_length must be a positive integer (got {value!r:.40})"
    if name == "status" and not is_final_status(value):
        return f"status must be an HTTP status code from 200 to 599 (got {value!r:.40})"
    return None


def _classify(doc: Document, operation: Operation) -> str:
    declared = operation.ext.get("action")
    if declared is not None:
        return str(declared)
    method, item = operation.method, operation.is_item
    if method == "POST":
        return "update" if item and _has_create(doc, operation) else "create"
    if method in ("GET", "HEAD"):
        if item:
            return "read"
        listed = _collection_creates(doc, operation.template) and answers_list(doc, operation)
        return "list" if listed else "static"
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
    item = doc.followed(item, pointer("paths", template))[0] if isinstance(item, dict) else None
    return isinstance(item, dict) and isinstance(item.get("post"), dict)


def _has_create(doc: Document, operation: Operation) -> bool:
    """A POST on an item path updates it when its collection has a create (Stripe style)."""
    collection = operation.collection
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
