"""A contract file's ``[[routes]]``: each entry type-checked field by field, its path held to
the rules the OpenAPI reader holds ``paths`` to (:mod:`.templates`), no route twice, and its
schema checked whole at load time (:mod:`.standalone`), so that what loads is served."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..policy import is_final_status
from ..routes import parse_route
from ..variant import Route
from .errors import DescriptionError, pointer
from .handlers import ACTIONS, Plan, make_handler
from .standalone import schema_problem
from .templates import TEMPLATE_FIX, template_problem, template_shape

__all__ = ["ROUTE_FIELDS", "contract_routes", "default_action", "known_fields", "text_field"]

ROUTE_FIELDS = (
    "route",
    "action",
    "resource",
    "id_prefix",
    "id_field",
    "status",
    "schema",
    "response",
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROUTE_FIX = 'write route = "POST /orders" or "GET /orders/{id}"'


def contract_routes(source: str, raw: Any) -> tuple[Route, ...]:
    """The routes of ``[[routes]]`` (``raw``), or :class:`DescriptionError` naming the entry."""
    if not isinstance(raw, list):
        raise DescriptionError(
            source, "/routes", "routes must be a list", "write each one as a [[routes]] table"
        )
    routes: list[Route] = []
    seen: dict[tuple[str, str], str] = {}
    for index, entry in enumerate(raw):
        where = pointer("routes", index)
        route = _route(source, where, entry)
        pattern = route.pattern
        shape = (pattern.method, template_shape(pattern.path))
        if shape in seen:
            raise DescriptionError(
                source,
                where + "/route",
                f"the route {route.spec!r} is the route at {seen[shape]} again (parameter names "
                "do not tell routes apart)",
                "keep one [[routes]] entry per METHOD /path",
            )
        seen[shape] = where
        routes.append(route)
    return tuple(routes)


def known_fields(source: str, where: str, data: Any, names: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise DescriptionError(
            source,
            where,
            "this must be a table (an object)",
            f"write it with the fields {', '.join(names)}",
        )
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise DescriptionError(
            source, where, f"unknown field(s) {', '.join(unknown)}", f"use only {', '.join(names)}"
        )


def text_field(source: str, where: str, value: Any, example: str) -> str:
    """A non-empty string field, or :class:`DescriptionError` naming it."""
    if not isinstance(value, str) or not value:
        raise DescriptionError(
            source,
            where,
            f"this must be a non-empty string (got {json.dumps(value, default=str)[:60]})",
            f"write it as a quoted string, such as {example}",
        )
    return value


def _pattern(source: str, where: str, spec: Any) -> Any:
    text = text_field(source, where, spec, '"POST /orders"')
    parts = text.split()
    path = parts[-1] if len(parts) == 2 else "*"  # checked first: in the OpenAPI reader's words
    problem = "" if path == "*" else template_problem(path)
    if problem:
        raise DescriptionError(
            source, where, f"the path {path!r} can never match a request: {problem}", TEMPLATE_FIX
        )
    try:
        pattern = parse_route(text)
    except ValueError as exc:
        raise DescriptionError(source, where, str(exc), _ROUTE_FIX) from None
    for name in re.findall(r"\{([^{}]*)\}", pattern.path):
        if not _NAME.fullmatch(name):
            raise DescriptionError(
                source,
                where,
                f"the parameter {{{name}}} is not a name a route can take (letters, digits "
                "and '_', not starting with a digit)",
                f"write {{{re.sub(r'[^A-Za-z0-9_]', '_', name).lstrip('0123456789') or 'id'}}}",
            )
    return pattern


def _route(source: str, where: str, entry: Any) -> Route:
    known_fields(source, where, entry, ROUTE_FIELDS)
    pattern = _pattern(source, where + "/route", entry.get("route"))
    action = _action(source, where, entry, pattern.method, pattern.path)
    static = [s for s in pattern.path.split("/") if s and not s.startswith("{") and s != "*"]
    resource = _optional_text(source, where + "/resource", entry.get("resource"))
    resource = resource or (static[-1] if static else "object")
    id_prefix = _optional_text(source, where + "/id_prefix", entry.get("id_prefix"))
    response = entry.get("response")
    schema = entry.get("schema")
    if schema is not None:
        _check_schema(source, where + "/schema", str(pattern), schema)
    status = entry.get("status", 201 if action == "create" else 204 if action == "delete" else 200)
    if not is_final_status(status):
        raise DescriptionError(
            source,
            where + "/status",
            f"status must be an HTTP status from 200 to 599 (got {json.dumps(status, default=str)})",
            "write status = 201",
        )
    id_field = entry.get("id_field", "id")
    if not isinstance(id_field, str) or not id_field:
        raise DescriptionError(
            source,
            where + "/id_field",
            f"id_field must name a field (got {json.dumps(id_field, default=str)})",
            'write id_field = "id"',
        )
    plan = Plan(
        action=action,
        resource=resource,
        status=status,
        template=lambda: response,
        id_field=id_field,
        id_prefix=id_prefix or resource[:3] or "obj",
    )
    return Route(str(pattern), make_handler(plan), schema=schema, name=f"{action} {resource}")


def _optional_text(source: str, where: str, value: Any) -> str | None:
    return None if value is None else text_field(source, where, value, '"order"')


def _action(source: str, where: str, entry: dict[str, Any], method: str, path: str) -> str:
    given = entry.get("action")
    if given is None:
        return default_action(source, where, method, path)
    if given not in ACTIONS:
        raise DescriptionError(
            source,
            where + "/action",
            f"unknown action {given!r:.40}",
            f"use one of {', '.join(ACTIONS)}",
        )
    return str(given)


def default_action(source: str, where: str, method: str, path: str) -> str:
    """What a route does when it does not say: POST creates, GET reads an item or lists a
    collection; PUT, PATCH and DELETE update or delete an item, and on anything else must say
    (as a document's operation must)."""
    item = path.rstrip("/").rsplit("/", 1)[-1].startswith("{")
    if method == "POST":
        return "create"
    if method in ("GET", "HEAD"):
        return "read" if item else "list"
    if item and method in ("PUT", "PATCH", "DELETE"):
        return "delete" if method == "DELETE" else "update"
    raise DescriptionError(
        source,
        where + "/action",
        f"the fake cannot tell what {method} {path} does (it is not a read, list, create, update "
        "or delete of a collection item)",
        'declare it with action = "static" (or create, read, list, update, delete)',
    )


def _check_schema(source: str, where: str, spec: str, schema: Any) -> None:
    if not isinstance(schema, Mapping):
        raise DescriptionError(
            source,
            where,
            "schema must be a JSON Schema object",
            'write schema = { type = "object", required = ["sku"] }',
        )
    found = schema_problem(spec, schema)
    if found is not None:
        inside, problem, fix = found
        raise DescriptionError(source, where + inside, problem, fix)
