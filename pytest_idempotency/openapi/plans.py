"""What each generated handler of a document does (its :class:`~.handlers.Plan`): the
success answer and its template, the request body's media, the id field and how ids are
made, the fields echoed and the ``writeOnly`` ones kept out of answers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .document import Document
from .forms import form_media
from .handlers import Plan
from .ids import id_maker
from .instances import minimal_instance, object_properties
from .operations import Operation, json_media
from .params import param_check

__all__ = ["Catalog", "body_encoding", "is_form", "plan_for", "request_media", "template_of"]


def _success(op: Operation) -> tuple[int, Any]:
    responses = op.op.get("responses") or {}
    codes = sorted(int(c) for c in responses if str(c).isdigit() and 200 <= int(c) < 300)
    if codes:
        return codes[0], responses.get(str(codes[0]), responses.get(codes[0]))
    for code in ("2XX", "2xx"):
        if code in responses:
            return 200, responses[code]
    return (204 if op.action == "delete" else 200), responses.get("default")


def _media_example(doc: Document, media: Mapping[str, Any]) -> tuple[bool, Any]:
    if "example" in media:
        return True, media["example"]
    for value in (media.get("examples") or {}).values():
        example, _ = doc.deref(value, "")
        if isinstance(example, dict) and "value" in example:
            return True, example["value"]
    return False, None


def template_of(doc: Document, media: Mapping[str, Any] | None) -> Any:
    if media is None:
        return None
    found, value = _media_example(doc, media)
    return value if found else minimal_instance(doc, media.get("schema") or {})


def request_media(doc: Document, op: Operation) -> tuple[dict[str, Any] | None, bool]:
    """The request body's JSON media type object (else its form one), and ``required``."""
    body, _ = doc.deref(op.op.get("requestBody") or {}, op.where)
    if not isinstance(body, dict):
        return None, False
    content = body.get("content")
    return json_media(content) or form_media(content), bool(body.get("required"))


def raw_media(doc: Document, op: Operation) -> tuple[str, ...]:
    """The request body's media types that are neither JSON nor a form (uploads such as
    ``multipart/form-data`` or ``application/octet-stream``): taken as bytes, unchecked
    (chosen: the fake does not parse multipart parts or check binary formats)."""
    body, _ = doc.deref(op.op.get("requestBody") or {}, op.where)
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, dict):
        return ()
    kinds = (str(media).split(";", 1)[0].strip().lower() for media in content)
    return tuple(k for k in kinds if json_media({k: {}}) is None and form_media({k: {}}) is None)


def body_encoding(doc: Document, ops: list[Operation]) -> str:
    """``form`` when every request body the document declares is a form (Twilio), else
    ``json``: what ``request_kwargs()`` sends."""
    with_body = [op for op in ops if request_media(doc, op)[0] is not None]
    return "form" if with_body and all(is_form(doc, op) for op in with_body) else "json"


def is_form(doc: Document, op: Operation) -> bool:
    body, _ = doc.deref(op.op.get("requestBody") or {}, op.where)
    content = body.get("content") if isinstance(body, dict) else None
    return json_media(content) is None and form_media(content) is not None


class Catalog:
    """The operations of a document, indexed once: the creates by their collection path and
    the item operations by their collection (so planning every operation is linear)."""

    def __init__(self, ops: list[Operation]) -> None:
        self.creates: dict[str, Operation] = {}
        self.item_params: dict[str, list[str]] = {}
        for op in ops:
            if op.action == "create":
                self.creates.setdefault(op.template, op)
            if op.is_item:
                self.item_params.setdefault(op.collection, []).append(str(op.item_param))
        self.create_ids: dict[int, str] = {}


def _id_field(
    doc: Document,
    op: Operation,
    catalog: Catalog,
    response: dict[str, Any],
    request: dict[str, Any],
) -> str | None:
    if "id_field" in op.ext:
        return op.ext["id_field"]  # type: ignore[no-any-return]
    if not response or "id" in response:
        return "id"
    for param in catalog.item_params.get(op.template.rstrip("/"), []):
        named = next((n for n in response if n.lower() == param.lower()), None)
        if named is not None:  # Twilio: {Sid} names sid
            return named
    fresh = [n for n in response if n not in request]
    generated = [n for n in fresh if _is_read_only(doc, response[n])]
    for suffix in ("id", "reference"):
        found = sorted((n for n in generated or fresh if n.lower().endswith(suffix)), key=len)
        if found:
            return found[0]
    return None


def _create_id_field(doc: Document, op: Operation, catalog: Catalog) -> str:
    """The id field of the create of ``op``'s collection (``sid``), so a read, list, update
    or delete shows the objects as the create did."""
    collection = op.collection if op.is_item else op.template.rstrip("/")
    create = catalog.creates.get(collection)
    if create is None:
        return "id"
    known = catalog.create_ids.get(id(create))
    if known is None:
        known = catalog.create_ids[id(create)] = plan_for(doc, create, catalog).id_field or "id"
    return known


def _is_read_only(doc: Document, prop: Any) -> bool:
    prop, _ = doc.deref(prop, "")
    return isinstance(prop, dict) and prop.get("readOnly") is True


def _is_write_only(doc: Document, prop: Any) -> bool:
    prop, _ = doc.deref(prop, "")
    return isinstance(prop, dict) and prop.get("writeOnly") is True


def plan_for(doc: Document, op: Operation, catalog: Catalog) -> Plan:
    status, raw = _success(op)
    response, _ = doc.deref(raw or {}, op.where)
    media = json_media(response.get("content")) if isinstance(response, dict) else None
    status = int(op.ext.get("status", status))
    schema = (media or {}).get("schema") or {}
    out_props, _ = object_properties(doc, schema)
    in_media, _ = request_media(doc, op)
    in_props, _ = object_properties(doc, (in_media or {}).get("schema") or {})
    wrap = (
        next((n for n, p in out_props.items() if _is_array(doc, p)), None)
        if op.action == "list"
        else None
    )
    id_field = (
        _id_field(doc, op, catalog, out_props, in_props)
        if op.action == "create"
        else op.ext.get("id_field") or _create_id_field(doc, op, catalog)
    )
    hidden = frozenset(n for n, p in {**in_props, **out_props}.items() if _is_write_only(doc, p))
    return Plan(
        action=op.action,
        resource=op.resource,
        status=status,
        template=lambda: template_of(doc, media),
        id_field=id_field,
        id_prefix=str(op.ext.get("id_prefix") or _prefix(op.resource)),
        echo=frozenset(in_props) & frozenset(out_props) - hidden if out_props else None,
        wrap=wrap,
        make_id=id_maker(doc, out_props[id_field]) if id_field in out_props else None,
        hidden=hidden,
        suffix=op.suffix,
        check=param_check(doc, op),
    )


def _is_array(doc: Document, prop: Any) -> bool:
    prop, _ = doc.deref(prop, "")
    return isinstance(prop, dict) and (prop.get("type") == "array" or "items" in prop)


def _prefix(resource: str) -> str:
    word = re.sub(r"[^a-z0-9]", "", resource.lower())
    return (word[:-1] if word.endswith("s") and len(word) > 3 else word)[:12] or "obj"
