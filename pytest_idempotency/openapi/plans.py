"""What each generated handler of a document does (its :class:`~.handlers.Plan`): the
success answer and its template, the request body's media, the id field and how ids are
made, the fields echoed and the ``writeOnly`` ones kept out of answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .document import Document
from .echoes import echo_of
from .envelopes import Envelope, answer_properties
from .forms import form_media
from .handlers import Plan
from .id_fields import Catalog, id_field_of, item_envelope
from .instances import minimal_instance, object_properties
from .item_ids import item_id_maker
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


def _create_id_field(doc: Document, op: Operation, catalog: Catalog) -> tuple[str, str | None]:
    """The id field of the create of ``op``'s collection (``sid``) and its answer's envelope,
    so a read, list, update or delete shows the objects as the create did."""
    given = op.ext.get("id_field")
    if given:
        outer, _, field = str(given).rpartition(".")
        return field, outer or None
    collection = op.collection if op.is_item else op.template.rstrip("/")
    create = catalog.creates.get(collection)
    if create is None:
        return "id", None
    known = catalog.create_ids.get(id(create))
    if known is None:
        plan = plan_for(doc, create, catalog)
        known = catalog.create_ids[id(create)] = (plan.id_field or "id", plan.envelope)
    return known


def _request_envelope(in_props: dict[str, Any], envelope: Envelope | None) -> str | None:
    """The request property of the envelope's name, when the request wraps the object too."""
    return envelope.name if envelope is not None and envelope.name in in_props else None


def _is_write_only(doc: Document, prop: Any) -> bool:
    prop, _ = doc.deref(prop, "")
    return isinstance(prop, dict) and prop.get("writeOnly") is True


def _make_id(
    doc: Document, op: Operation, catalog: Catalog, props: dict[str, Any], id_field: str | None
) -> Callable[[str], Any] | None:
    """How a create's new id is made: fitting the id field's schema and the path parameter
    of the collection's item route (so a read of it is not refused)."""
    if op.action != "create" or id_field is None:
        return None
    param = None
    for item in catalog.item_ops.get(op.template.rstrip("/"), []):
        param = next(
            (
                p.get("schema")
                for p in item.parameters
                if p["in"] == "path" and p["name"] == item.item_param
            ),
            None,
        )
        if param is not None:
            break
    return item_id_maker(doc, props.get(id_field), param)


def plan_for(doc: Document, op: Operation, catalog: Catalog) -> Plan:
    status, raw = _success(op)
    response, _ = doc.deref(raw or {}, op.where)
    media = json_media(response.get("content")) if isinstance(response, dict) else None
    status = int(op.ext.get("status", status))
    answer = answer_properties(doc, (media or {}).get("schema") or {})
    in_media, _ = request_media(doc, op)
    in_props, _ = object_properties(doc, (in_media or {}).get("schema") or {})
    if op.action == "create":
        id_field, envelope = id_field_of(doc, op, catalog, answer, in_props)
    else:
        created = _create_id_field(doc, op, catalog)
        id_field, envelope = created[0], item_envelope(doc, op, answer, created)
    props = envelope.props if envelope is not None else answer[0]
    wrapped = _request_envelope(in_props, envelope)
    if wrapped is not None:
        in_props = {**in_props, **object_properties(doc, in_props[wrapped])[0]}
    every = {**in_props, **answer[0], **props}
    hidden = frozenset(n for n, p in every.items() if _is_write_only(doc, p))
    echo = frozenset(in_props) & frozenset(props) - hidden if props else None
    return Plan(
        action=op.action,
        resource=op.resource,
        status=status,
        template=lambda: template_of(doc, media),
        id_field=id_field,
        id_prefix=str(op.ext.get("id_prefix") or _prefix(op.resource)),
        echo=echo,
        adapt=echo_of(doc, props, echo, is_form(doc, op), in_props) if echo else None,
        wrap=_list_property(doc, op, answer[0]),
        envelope=envelope.name if envelope is not None else None,
        request_envelope=wrapped,
        make_id=_make_id(doc, op, catalog, props, id_field),
        hidden=hidden,
        suffix=op.suffix,
        check=param_check(doc, op),
    )


def _list_property(doc: Document, op: Operation, props: dict[str, Any]) -> str | None:
    if op.action != "list":
        return None
    return next((n for n, p in props.items() if _is_array(doc, p)), None)


def _is_array(doc: Document, prop: Any) -> bool:
    prop, _ = doc.deref(prop, "")
    return isinstance(prop, dict) and (prop.get("type") == "array" or "items" in prop)


def _prefix(resource: str) -> str:
    word = re.sub(r"[^a-z0-9]", "", resource.lower())
    return (word[:-1] if word.endswith("s") and len(word) > 3 else word)[:12] or "obj"
