"""Generated stateful handlers: create, read, list, update, delete, and a static answer.

A create stores the request body with a generated id and answers the declared response (an
example, or a minimal instance of its schema) with the request's own fields copied in where
the response has them; an answer that wraps the object in one property (``{"endpoint":
{...}}``) gets the id and the fields inside it, and the object alone is stored. Objects live in a table per collection path (``/v1/pets``,
``/v1/pets/pet_000001/toys``), per tenant; every mutation is a recorded side effect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..variant import HandlerContext, Reply

__all__ = ["ACTIONS", "Plan", "make_handler"]

ACTIONS = ("create", "read", "list", "update", "delete", "static")


@dataclass(frozen=True)
class Plan:
    """What one generated handler does."""

    action: str
    #: Name of the resource in side effects (``pets.created``).
    resource: str
    status: int = 200
    #: Builds the answer's template (example or minimal instance); called once, when first used.
    template: Callable[[], Any] = lambda: None
    #: Response field that carries the generated id (``None``: the id is not shown).
    id_field: str | None = "id"
    id_prefix: str = "obj"
    #: Request fields copied into the answer (``None``: all of them).
    echo: frozenset[str] | None = None
    #: What of the request's fields goes into the answer, converted (``None``: :attr:`echo`).
    adapt: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: For ``list``: the property that holds the array (``None``: a bare array); the
    #: template's other fields (``object``, ``has_more``) are kept around it.
    wrap: str | None = None
    #: The answer's property that holds the object (``{"endpoint": {...}}``; ``None``: the
    #: answer is the object); the template's other fields are kept around it.
    envelope: str | None = None
    #: The request's property that holds the object's fields, when the request wraps them too.
    request_envelope: str | None = None
    #: The id field's value for a new id such as ``pet_000001`` (``None``: that id itself).
    make_id: Callable[[str], Any] | None = None
    #: ``writeOnly`` properties: never in an answer.
    hidden: frozenset[str] = frozenset()
    #: What follows the id in an item path's last segment (``.json`` in ``/Messages/{Sid}.json``).
    suffix: str = ""
    #: The request's parameters checked first: the problem (answered 400), else ``None``.
    check: Callable[[HandlerContext], str | None] | None = None
    #: What a read or list leaves out: ``hidden``, and the internal ``id`` when the API names
    #: its ids otherwise (derived).
    concealed: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action {self.action!r} is unknown; use one of {', '.join(ACTIONS)}")
        concealed = self.hidden if self.id_field == "id" else self.hidden | {"id"}
        object.__setattr__(self, "concealed", concealed)


def make_handler(plan: Plan) -> Callable[[HandlerContext], Reply]:
    """The handler that carries out ``plan``."""
    template = functools.cache(plan.template)
    handler = _handler(plan, template)
    check = plan.check
    if check is None:
        return handler

    def checked(ctx: HandlerContext) -> Reply:
        problem = check(ctx)
        if problem is None:
            return handler(ctx)
        answer = ctx.variant.validation
        ctx.journal.problem("schema", f"#{ctx.exchange.seq} {ctx.method} {ctx.path}: {problem}")
        return ctx.error(answer.status, answer.code, f"The request is invalid: {problem}")

    return checked


def _handler(plan: Plan, template: Callable[[], Any]) -> Callable[[HandlerContext], Reply]:
    return {
        "create": lambda ctx: _create(plan, template(), ctx),
        "read": lambda ctx: _read(plan, template, ctx),
        "list": lambda ctx: _list(plan, template(), ctx),
        "update": lambda ctx: _update(plan, template, ctx),
        "delete": lambda ctx: _delete(plan, template, ctx),
        "static": lambda ctx: Reply(plan.status, template()),
    }[plan.action]


def _item(plan: Plan, path: str) -> tuple[str, str]:
    collection, _, item = path.rstrip("/").rpartition("/")
    if plan.suffix and item.endswith(plan.suffix):
        return collection + plan.suffix, item[: -len(plan.suffix)]
    return collection, item


def _create(plan: Plan, template: Any, ctx: HandlerContext) -> Reply:
    # shallow copies: the body is parsed afresh per request, the template is never mutated
    # below its top level, and a reply is encoded at once
    outer = dict(template) if isinstance(template, dict) else {}
    body = _inner(plan, outer)
    body.update(_echoed(plan, _fields(plan, ctx.data)))
    for name in plan.hidden & body.keys():
        del body[name]
    new_id = ctx.resources.new_id(plan.id_prefix)
    if plan.id_field is not None:
        value = new_id if plan.make_id is None else plan.make_id(new_id)
        body[plan.id_field], new_id = value, str(value)
    stored = {**body, "id": new_id} if plan.id_field != "id" else body
    collection = ctx.path.rstrip("/")
    ctx.resources.put(ctx.tenant, collection, stored)
    ctx.side_effect(f"{plan.resource}.created", plan.resource, new_id)
    ctx.bind_record_to(collection, new_id)
    if not isinstance(template, dict) and template is not None:
        return Reply(plan.status, template)
    return Reply(plan.status, _wrapped(plan, outer, body))


def _inner(plan: Plan, outer: dict[str, Any]) -> dict[str, Any]:
    """The object of an answer template: the envelope's value, else the template itself."""
    if plan.envelope is None:
        return outer
    value = outer.get(plan.envelope)
    return dict(value) if isinstance(value, dict) else {}


def _wrapped(plan: Plan, template: Any, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as the answer shows it: in the envelope, the template's other fields kept."""
    if plan.envelope is None:
        return obj
    outer = dict(template) if isinstance(template, dict) else {}
    outer[plan.envelope] = obj
    return outer


def _fields(plan: Plan, data: Any) -> dict[str, Any]:
    """The request's fields for the object: its own, and those inside its envelope."""
    if not isinstance(data, dict):
        return {}
    inner = data.get(plan.request_envelope) if plan.request_envelope else None
    if not isinstance(inner, dict):
        return data
    return {**{k: v for k, v in data.items() if k != plan.request_envelope}, **inner}


def _echoed(plan: Plan, fields: dict[str, Any]) -> dict[str, Any]:
    if plan.adapt is not None:
        return plan.adapt(fields)
    echo = plan.echo
    return fields if echo is None else {k: v for k, v in fields.items() if k in echo}


def _find(plan: Plan, ctx: HandlerContext) -> tuple[str, str, dict[str, Any] | None]:
    collection, item = _item(plan, ctx.path)
    return collection, item, ctx.resources.get(ctx.tenant, collection, item)


def _missing(plan: Plan, ctx: HandlerContext, item: str) -> Reply:
    return ctx.error(404, "not_found", f"No {plan.resource} with id {item!r}.")


def _shown(plan: Plan, obj: dict[str, Any]) -> dict[str, Any]:
    """The stored object as the API shows it (its internal ``id`` hidden when the API names
    its ids otherwise)."""
    hidden = plan.concealed
    return {k: v for k, v in obj.items() if k not in hidden} if hidden else obj


def _read(plan: Plan, template: Callable[[], Any], ctx: HandlerContext) -> Reply:
    _, item, obj = _find(plan, ctx)
    if obj is None:
        return _missing(plan, ctx, item)
    return Reply(plan.status, _answer(plan, template, obj))


def _answer(plan: Plan, template: Callable[[], Any], obj: dict[str, Any]) -> Any:
    shown = _shown(plan, obj)
    return shown if plan.envelope is None else _wrapped(plan, template(), shown)


def _list(plan: Plan, template: Any, ctx: HandlerContext) -> Reply:
    items = [_shown(plan, o) for o in ctx.resources.all(ctx.tenant, ctx.path.rstrip("/"))]
    if not plan.wrap:
        return Reply(plan.status, items)
    envelope = dict(template) if isinstance(template, dict) else {}
    envelope[plan.wrap] = items
    ids = [o.get(plan.id_field or "id") for o in items]
    for name, value in (("first_id", ids[:1]), ("last_id", ids[-1:])):
        if name in envelope and value:
            envelope[name] = value[0]
    return Reply(plan.status, envelope)


def _update(plan: Plan, template: Callable[[], Any], ctx: HandlerContext) -> Reply:
    _, item, obj = _find(plan, ctx)
    if obj is None:
        return _missing(plan, ctx, item)
    changes = _fields(plan, ctx.data)
    with ctx.resources.lock:
        obj.update({k: v for k, v in changes.items() if k not in ("id", plan.id_field)})
    ctx.side_effect(f"{plan.resource}.updated", plan.resource, item)
    return Reply(plan.status, _answer(plan, template, obj))


def _delete(plan: Plan, template: Callable[[], Any], ctx: HandlerContext) -> Reply:
    collection, item, obj = _find(plan, ctx)
    if obj is None or not ctx.resources.delete(ctx.tenant, collection, item):
        return _missing(plan, ctx, item)
    ctx.side_effect(f"{plan.resource}.deleted", plan.resource, item)
    return Reply(plan.status, None if plan.status == 204 else _answer(plan, template, obj))
