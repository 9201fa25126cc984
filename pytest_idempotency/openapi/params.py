"""Path, query and header parameters checked against the document: a required query or
header parameter must be sent, and each sent value (read the OpenAPI way: a path or header
array is comma-separated, a query array repeats its name, numbers and booleans are their
text) must fit its ``schema``. The generated handler refuses a request that breaks one
with the variant's validation answer (400, in the document's error body) before anything
is stored. Cookie parameters, ``content``-typed parameters and object-typed ones are not
checked (chosen); the credential and the idempotency key have their own checks."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import schemas
from ..variant import HandlerContext
from .document import Document
from .operations import Operation
from .schema import request_schema

__all__ = ["ParamCheck", "literal", "param_check"]

_PARAM = re.compile(r"\{([^}/]+)\}")
_INTEGER = re.compile(r"-?[0-9]+")
#: Header parameters OpenAPI says are ignored (the request's own framing and credential).
_IGNORED_HEADERS = frozenset(("accept", "content-type", "authorization"))


@dataclass
class _Param:
    name: str
    where: str
    key: str  # the name the request carries it under (a path parameter's route name)
    required: bool
    node: Any
    explode: bool
    doc: Document
    built: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def schema(self) -> dict[str, Any]:
        if self.built is None:
            self.built = request_schema(self.doc, self.node)
        return self.built


ParamCheck = Callable[[HandlerContext], "str | None"]


def param_check(doc: Document, op: Operation) -> ParamCheck | None:
    """The check of ``op``'s parameters (``None``: nothing to check)."""
    names = zip(_PARAM.findall(op.template), _PARAM.findall(op.route_path("")), strict=True)
    route_names = dict(names)
    checked = [p for p in (_param(doc, raw, route_names) for raw in op.parameters) if p]
    if not checked:
        return None

    def check(ctx: HandlerContext) -> str | None:
        for param in checked:
            problem = _problem(param, ctx)
            if problem is not None:
                return problem
        return None

    return check


def _param(doc: Document, raw: dict[str, Any], route_names: Mapping[str, str]) -> _Param | None:
    where, name = raw["in"], raw["name"]
    node, _ = doc.deref(raw.get("schema"), "")
    kinds = _kinds(node)
    if where == "cookie" or "object" in kinds:
        return None
    if where == "header" and name.lower() in _IGNORED_HEADERS:
        return None
    if where == "path" and name not in route_names:
        return None
    if node is None and not raw.get("required"):
        return None
    explode = bool(raw.get("explode", raw.get("style", "form") == "form"))
    key = route_names.get(name, name)
    required = bool(raw.get("required")) or where == "path"
    return _Param(name, where, key, required, node, explode and where == "query", doc)


def _kinds(node: Any) -> tuple[str, ...]:
    kind = node.get("type") if isinstance(node, dict) else None
    return tuple(kind) if isinstance(kind, list) else (kind,) if isinstance(kind, str) else ()


def _problem(param: _Param, ctx: HandlerContext) -> str | None:
    if param.where == "header" and param.name.lower() == _key_header(ctx):
        return None  # the key's own checks answer for it
    values = _sent(param, ctx)
    if values is None:
        if param.required:
            return f"the {param.where} parameter {param.name!r} is required; send it"
        return None
    if param.node is None:
        return None
    value = _typed(param, values)
    found = schemas.problem(param.schema, value)
    if found is None:
        return None
    inside = "" if found[0] == "(body)" else f" (at {found[0]})"
    return f"the {param.where} parameter {param.name!r}{inside}: {found[1]}"


def _key_header(ctx: HandlerContext) -> str:
    return (ctx.variant.policy.key_header or "").lower()


def _sent(param: _Param, ctx: HandlerContext) -> list[str] | None:
    if param.where == "path":
        value = ctx.params.get(param.key)
        return None if value is None else [value]
    if param.where == "query":
        getlist = getattr(ctx.query, "getlist", None)
        if param.name not in ctx.query:
            return None
        return list(getlist(param.name)) if getlist else [ctx.query[param.name]]
    sent = ctx.headers.get(param.name)
    return None if sent is None else [sent]


def _typed(param: _Param, values: list[str]) -> Any:
    """The sent text as the value the schema describes (``"5"`` an integer, ``a,b`` an
    array), left as text where it is not one."""
    node = param.node if isinstance(param.node, dict) else {}
    if "array" in _kinds(node):
        items = values if param.explode else [p for v in values for p in v.split(",")]
        inner = node.get("items")
        return [literal(item, _kinds(inner)) for item in items]
    return literal(values[-1], _kinds(node))


def literal(text: str, kinds: Collection[str]) -> Any:
    """``text`` as the integer, number or boolean ``kinds`` allow, where it is a literal of
    one; else the text itself."""
    if ("integer" in kinds or "number" in kinds) and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in kinds:
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if "boolean" in kinds and text in ("true", "false"):
        return text == "true"
    return text
