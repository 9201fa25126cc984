"""The variant's example request (``GET /__admin/variant``, ``api.example()``): a request the
fake answers 2xx. A keyed create without path parameters is preferred, then any create, then
a static or list ``GET``; path parameters get a value their schema takes (a pattern's
example, a padded length), required query parameters are added to the path, and the body is
the document's example when its schema takes it, else the schema's minimal instance."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from .. import schemas
from .document import Document
from .forms import form_schema
from .idempotency import KeyUse
from .instances import example_of, minimal_instance
from .operations import Operation
from .plans import is_form, raw_media, request_media, template_of
from .schema import request_schema

__all__ = ["example_request"]

_PARAM = re.compile(r"\{([^}/]+)\}")
#: Headers a request carries anyway (the key, the credential, its framing).
_SENT_HEADERS = frozenset(("accept", "content-type", "authorization"))
#: The most operations whose example is built and checked before one is taken unchecked.
_TRIED = 12

Example = tuple[str, str, dict[str, Any]]


def example_request(
    doc: Document, base: str, ops: list[Operation], uses: dict[int, KeyUse]
) -> Example:
    """The first of the ranked operations whose parameters and body the fake takes."""
    ranked = _ranked(ops, uses)
    for op in ranked[:_TRIED]:
        found = _example(doc, base, op, uses[id(op)], check=True)
        if found is not None:
            return found
    for op in ranked[_TRIED:] or ranked[:1]:
        found = _example(doc, base, op, uses[id(op)], check=False)
        if found is not None:
            return found
    return "GET", base + "/", {}  # no operation can be sent as it is (chosen: answered 404)


def _ranked(ops: list[Operation], uses: dict[int, KeyUse]) -> list[Operation]:
    def rank(op: Operation) -> tuple[int, int]:
        if op.action == "create":
            return (0 if uses[id(op)].keyed else 1), ("{" in op.template)
        if op.method == "GET" and op.action in ("static", "list"):
            return 2, ("{" in op.template)
        return 3, 0

    return sorted((op for op in ops if rank(op)[0] < 3), key=rank)


def _example(
    doc: Document, base: str, op: Operation, use: KeyUse, *, check: bool
) -> Example | None:
    values: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    for param in op.parameters:
        where, name = param["in"], param["name"]
        if where == "header" and param.get("required") and not _sent_anyway(name, use):
            return None
        if where not in ("path", "query") or (where == "query" and not param.get("required")):
            continue
        value = _param_value(doc, param, check)
        if value is None:
            return None
        if where == "path":
            values[name] = value
        else:
            query.append((name, value))
    path = _PARAM.sub(lambda m: quote(values.get(m.group(1), "example"), safe=""), op.template)
    path = base + path + ("?" + urlencode(query) if query else "")
    if op.method in ("GET", "HEAD", "DELETE"):
        return op.method, path, {}
    body = _body(doc, op, check)
    return None if body is None else (op.method, path, body)


def _sent_anyway(name: str, use: KeyUse) -> bool:
    return name.lower() in _SENT_HEADERS or name.lower() == (use.header or "").lower()


def _param_value(doc: Document, param: dict[str, Any], check: bool) -> str | None:
    """A value of the parameter that its schema takes, as it is sent (text)."""
    node, _ = doc.deref(param.get("schema") or {}, "")
    kinds = _kinds(node)
    if "object" in kinds:
        return None
    found, given = (True, param["example"]) if "example" in param else (False, None)
    candidates = [given] if found else []
    if isinstance(node, dict):
        candidates += [example_of(node)[1], minimal_instance(doc, node)]
    for value in candidates:
        if value is None or isinstance(value, (dict, list)):
            continue
        if not check or _takes(request_schema(doc, node), _sent(value, kinds)):
            return _text(value)
    return None if check else "example"


def _kinds(node: Any) -> tuple[str, ...]:
    kind = node.get("type") if isinstance(node, dict) else None
    return tuple(kind) if isinstance(kind, list) else (kind,) if isinstance(kind, str) else ()


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _sent(value: Any, kinds: tuple[str, ...]) -> Any:
    """``value`` as the fake's parameter check reads its text."""
    text = _text(value)
    if ("integer" in kinds or "number" in kinds) and re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    return text


def _body(doc: Document, op: Operation, check: bool) -> dict[str, Any] | None:
    media, _ = request_media(doc, op)
    if media is None:
        return None if raw_media(doc, op) and check else {}
    node = media.get("schema")
    candidates = [template_of(doc, media)]
    if node is not None:
        candidates.append(minimal_instance(doc, node))
    if not check or node is None:
        first = candidates[0]
        return first if isinstance(first, dict) else {}
    built = request_schema(doc, node)
    built = form_schema(built) if is_form(doc, op) else built
    for body in candidates:
        if isinstance(body, dict) and _takes(built, body):
            return body
    return None


def _takes(schema: dict[str, Any], value: Any) -> bool:
    try:
        return schemas.problem(schema, value) is None
    except Exception:
        return False
