"""Which field of a create's answer carries the new id, and where the object is in an answer
(its envelope): the document's operations indexed once (:class:`Catalog`), the item route's
parameter compared ignoring case, ``_`` and ``-``, and the one object of an answer that holds
the id field."""

from __future__ import annotations

from typing import Any

from .document import Document
from .envelopes import (
    Envelope,
    answer_properties,
    envelopes,
    is_scalar,
    named_like,
    same_name,
)
from .operations import Operation

__all__ = ["Catalog", "id_field_of", "item_envelope"]


class Catalog:
    """The operations of a document, indexed once: the creates by their collection path and
    the item operations by their collection (so planning every operation is linear)."""

    def __init__(self, ops: list[Operation]) -> None:
        self.creates: dict[str, Operation] = {}
        self.item_params: dict[str, list[str]] = {}
        self.item_ops: dict[str, list[Operation]] = {}
        for op in ops:
            if op.action == "create":
                self.creates.setdefault(op.template, op)
            if op.is_item:
                self.item_params.setdefault(op.collection, []).append(str(op.item_param))
                self.item_ops.setdefault(op.collection, []).append(op)
        self.create_ids: dict[int, tuple[str, str | None]] = {}


def id_field_of(
    doc: Document,
    op: Operation,
    catalog: Catalog,
    response: tuple[dict[str, Any], list[str]],
    request: dict[str, Any],
) -> tuple[str | None, Envelope | None]:
    """The create's id field, and the envelope holding the object when its answer wraps it
    (``{"endpoint": {"id": ...}}``); refused when several objects of the answer could be it."""
    props, required = response
    params = catalog.item_params.get(op.template.rstrip("/"), [])
    if "id_field" in op.ext:
        return _given(doc, str(op.ext["id_field"]), props)
    named = _named_id(doc, props, params)
    if named is not None or not props:
        return named or "id", None
    found = _resource_envelopes(
        op, envelopes(doc, props, required, lambda inner: _named_id(doc, inner, params) is not None)
    )
    if len(found) == 1:
        return _named_id(doc, found[0].props, params), found[0]
    if len(found) > 1:
        names = ", ".join(e.name for e in found)
        raise doc.error(
            op.where + "/responses",
            f"the answer holds several objects with an id ({names}): the fake cannot tell "
            "which one the create made",
            f"name it on the operation with x-idempotency: {{id_field: {found[0].name}.id}} "
            "(the envelope property, a dot, the id field), in the document or an overlay",
        )
    return _loose_id(doc, props, request), None


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and len(name) > 3 else name


def _given(doc: Document, given: str, props: dict[str, Any]) -> tuple[str, Envelope | None]:
    """``x-idempotency.id_field``: a property of the answer, or ``envelope.field``."""
    outer, dot, field = given.partition(".")
    if given in props or not dot or outer not in props:
        return given, None
    inner, required = answer_properties(doc, props[outer])
    return field, Envelope(outer, inner, required)


def _named_id(doc: Document, props: dict[str, Any], params: list[str]) -> str | None:
    """``id``, else the property the item route's parameter names (``{Sid}``: ``sid``,
    ``{BrandVettingSid}``: ``brand_vetting_sid``); an object or array property is no id."""
    if "id" in props:
        return "id"
    scalars = [n for n, p in props.items() if is_scalar(doc, p)]
    return next((n for n in (named_like(scalars, p) for p in params) if n is not None), None)


def _loose_id(doc: Document, response: dict[str, Any], request: dict[str, Any]) -> str | None:
    fresh = [n for n in response if n not in request]
    generated = [n for n in fresh if _is_read_only(doc, response[n])]
    for suffix in ("id", "reference"):
        found = sorted((n for n in generated or fresh if n.lower().endswith(suffix)), key=len)
        if found:
            return found[0]
    return None


def item_envelope(
    doc: Document,
    op: Operation,
    response: tuple[dict[str, Any], list[str]],
    created: tuple[str, str | None],
) -> Envelope | None:
    """The envelope of a read's, update's or delete's answer: the create's, else the one
    object property holding the id field when the answer itself does not."""
    props, required = response
    id_field, named = created
    if op.action not in ("read", "update", "delete") or id_field in props:
        return None
    if named is not None and named in props:
        inner, need = answer_properties(doc, props[named])
        return Envelope(named, inner, need)
    found = _resource_envelopes(
        op, envelopes(doc, props, required, lambda inner: id_field in inner)
    )
    return found[0] if len(found) == 1 else None


def _resource_envelopes(op: Operation, found: list[Envelope]) -> list[Envelope]:
    """Of several envelopes (``{"access_point": {...}, "action": {...}}``), the ones named
    as the resource, if any."""
    if len(found) < 2:
        return found
    named = [e for e in found if same_name(_singular(e.name), _singular(op.resource))]
    return named or found


def _is_read_only(doc: Document, prop: Any) -> bool:
    prop, _ = doc.deref(prop, "")
    return isinstance(prop, dict) and prop.get("readOnly") is True
