"""A contract file (TOML or JSON): a policy plus routes, without Python.

For teams whose clients are not in Python and for the standalone server
(``pytest-idempotency serve --contract acme.toml``). It may start from an OpenAPI document
(``openapi = "api.yaml"``) and change its policy, credential, error body and routes. The format
is in docs/contract-file.md.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .openapi import DescriptionError, variant_from_openapi
from .openapi.errors import pointer
from .openapi.handlers import ACTIONS, Plan, make_handler
from .openapi.shapes import TemplateShape
from .overrides import coerce_policy_options
from .policy import Answer, Policy, PolicyError, check_header, is_final_status
from .routes import parse_route
from .variant import CredentialScheme, Route, Variant

__all__ = ["read_contract", "variant_from_contract"]

_TOP = (
    "name",
    "description",
    "openapi",
    "overlay",
    "policy",
    "credential",
    "errors",
    "example",
    "routes",
    "max_body_bytes",
)
_ROUTE = ("route", "action", "resource", "id_prefix", "id_field", "status", "schema", "response")
_CREDENTIAL = ("scheme", "header", "example")
_ERRORS = ("template", "content_type", "fault")


def read_contract(path: str | Path) -> dict[str, Any]:
    """The contract file's data (TOML, or JSON by its ``.json`` suffix)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DescriptionError(
            str(path), "", f"cannot read the contract file: {exc}", "pass a readable file"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise DescriptionError(
                str(path), "", f"the contract file is not valid JSON: {exc}", "fix the JSON syntax"
            ) from None
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - exercised on 3.10 only
            import tomli as tomllib
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DescriptionError(
                str(path),
                "",
                f"the contract file is not valid TOML: {exc}",
                "fix the TOML syntax, or name a JSON file *.json",
            ) from None
    if not isinstance(data, dict):
        raise DescriptionError(
            str(path),
            "",
            "a contract file is an object",
            "write name = ..., [policy] and [[routes]]",
        )
    return data


def variant_from_contract(path: str | Path, base: Variant | None = None) -> Variant:
    """The variant a contract file states. With ``base`` (or ``openapi = FILE`` in the file),
    the file changes that variant: its policy options, credential, errors and routes (a route
    of the file replaces the base's route of the same spec). Raises
    :class:`~pytest_idempotency.openapi.DescriptionError` naming the place and the fix."""
    source = str(path)
    data = read_contract(path)
    _known(source, "", data, _TOP)
    if base is None and data.get("openapi") is not None:
        folder = Path(path).parent
        overlay = data.get("overlay")
        base = variant_from_openapi(
            folder / str(data["openapi"]), overlay=folder / str(overlay) if overlay else None
        )
    routes = _routes(source, data.get("routes", []))
    if base is None and not routes:
        raise DescriptionError(
            source,
            "/routes",
            "the contract declares no routes",
            'add [[routes]] entries (route = "POST /orders", action = "create"), or openapi = "api.yaml"',
        )
    policy = _policy(source, data.get("policy", {}), base.policy if base is not None else Policy())
    changes: dict[str, Any] = {"policy": policy, **_credential(source, data.get("credential"))}
    changes.update(_errors(source, data.get("errors")))
    inherited = base.routes if base else ()
    if "authenticate" in changes:  # [credential] replaces the document's, on every route
        inherited = tuple(
            dataclasses.replace(r, authenticate=None, unauthorized=None) for r in inherited
        )
    if routes or "authenticate" in changes:
        kept = tuple(r for r in inherited if r.spec not in {n.spec for n in routes})
        changes["routes"] = (*routes, *kept)
    if "example" in data:
        changes["example"] = _example(source, data["example"])
        _example_route(source, changes["example"], changes.get("routes", inherited))
    elif base is None:
        first = next((r for r in routes if r.pattern.method == "POST"), routes[0])
        changes["example"] = (first.pattern.method, first.pattern.path, {})
    if "max_body_bytes" in data:
        changes["max_body_bytes"] = _byte_count(source, "/max_body_bytes", data["max_body_bytes"])
    name = _text(source, "/name", data.get("name")) or (base.name if base else Path(path).stem)
    description = _text(source, "/description", data.get("description")) or (
        base.description if base else f"from {Path(path).name}"
    )
    if base is None:
        return Variant(name=name, description=description, **changes)
    return dataclasses.replace(base, name=name, description=description, **changes)


def _byte_count(source: str, where: str, value: Any) -> int:
    """A whole number of bytes >= 1 (not a string, not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DescriptionError(
            source,
            where,
            f"this must be a whole number >= 1 (got {json.dumps(value, default=str)})",
            "write a number of bytes such as 1048576",
        )
    return value


def _text(source: str, where: str, value: Any) -> str | None:
    """One line of printable text, or ``None`` when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.isprintable():
        raise DescriptionError(
            source,
            where,
            f"this must be one line of printable text (got {json.dumps(value, default=str)[:60]})",
            'write it as a quoted string, such as "orders"',
        )
    return value


def _example_route(
    source: str, example: tuple[str, str, dict[str, Any]], routes: tuple[Route, ...]
) -> None:
    """The example operation must be one the variant serves."""
    method, path, _ = example
    if not any(r.pattern.match(method, path) is not None for r in routes):
        served = ", ".join(r.spec for r in routes) or "none"
        raise DescriptionError(
            source,
            "/example/route",
            f"no route serves {method} {path}",
            f"name one of the routes: {served}",
        )


def _known(source: str, where: str, data: Any, names: tuple[str, ...]) -> None:
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


def _policy(source: str, options: Any, start: Policy) -> Policy:
    _known(source, "/policy", options, tuple(f.name for f in dataclasses.fields(Policy)))
    try:
        return start.replace(**coerce_policy_options(options))
    except PolicyError as exc:
        raise DescriptionError(
            source, "/policy", str(exc), "fix the option (see docs/reference.md)"
        ) from None


def _credential(source: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    _known(source, "/credential", raw, _CREDENTIAL)
    scheme = str(raw.get("scheme", "bearer"))
    try:
        chosen = CredentialScheme(
            scheme, str(raw.get("header", "X-API-Key" if scheme == "header" else "Authorization"))
        )
    except ValueError as exc:
        raise DescriptionError(
            source, "/credential/scheme", str(exc), 'write scheme = "bearer", "basic" or "header"'
        ) from None

    def authenticate(headers: Any) -> str | None:
        token = chosen.read(headers)
        return None if token is None else f"{chosen.kind}:{token}"

    out: dict[str, Any] = {"credential_schemes": (chosen,), "authenticate": authenticate}
    out["unauthorized"] = Answer(
        401, "unauthorized", f"Missing or malformed credential: send a {chosen.describe()}."
    )
    if raw.get("example") is not None:
        out["example_credential"] = str(raw["example"])
    return out


def _errors(source: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    _known(source, "/errors", raw, _ERRORS)
    out: dict[str, Any] = {}
    if "template" in raw:
        if not isinstance(raw["template"], dict):
            raise DescriptionError(
                source,
                "/errors/template",
                "the error template must be a table (a JSON object)",
                'write [errors.template] with fields such as message = "{message}"',
            )
        content_type = raw.get("content_type", "application/json")
        try:
            check_header("content_type", "Content-Type", content_type)
        except PolicyError as exc:
            raise DescriptionError(
                source, "/errors/content_type", str(exc), 'write "application/problem+json"'
            ) from None
        shape = TemplateShape(raw["template"], content_type)
        out["error_shape"] = shape
        out["record_error_shape"] = shape.record_shape
    if "fault" in raw:
        fault = raw["fault"]
        _known(source, "/errors/fault", fault, ("code", "message", "type"))
        out["fault_error"] = Answer(
            500,
            str(fault.get("code", "injected_fault")),
            str(fault.get("message", "Injected {key}.")),
            fault.get("type"),
        )
    return out


def _example(source: str, raw: Any) -> tuple[str, str, dict[str, Any]]:
    _known(source, "/example", raw, ("route", "body"))
    try:
        pattern = parse_route(str(raw.get("route", "")))
    except ValueError as exc:
        raise DescriptionError(
            source, "/example/route", str(exc), 'write route = "POST /orders"'
        ) from None
    body = raw.get("body") or {}
    if not isinstance(body, dict):
        raise DescriptionError(
            source,
            "/example/body",
            "the example body must be a table (a JSON object)",
            'write body = { sku = "A-1" }',
        )
    return pattern.method, pattern.path, dict(body)


def _routes(source: str, raw: Any) -> tuple[Route, ...]:
    if not isinstance(raw, list):
        raise DescriptionError(
            source, "/routes", "routes must be a list", "write each one as a [[routes]] table"
        )
    return tuple(_route(source, pointer("routes", i), entry) for i, entry in enumerate(raw))


def _route(source: str, where: str, entry: Any) -> Route:
    _known(source, where, entry, _ROUTE)
    try:
        pattern = parse_route(str(entry.get("route", "")))
    except ValueError as exc:
        raise DescriptionError(
            source, where + "/route", str(exc), 'write route = "POST /orders" or "GET /orders/{id}"'
        ) from None
    action = str(entry.get("action") or _default_action(pattern.method, pattern.path))
    if action not in ACTIONS:
        raise DescriptionError(
            source,
            where + "/action",
            f"unknown action {action!r}",
            f"use one of {', '.join(ACTIONS)}",
        )
    static = [s for s in pattern.path.split("/") if s and not s.startswith("{") and s != "*"]
    resource = str(entry.get("resource") or (static[-1] if static else "object"))
    response = entry.get("response")
    schema = entry.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise DescriptionError(
            source,
            where + "/schema",
            "schema must be a JSON Schema object",
            'write schema = { type = "object", required = ["sku"] }',
        )
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
        id_prefix=str(entry.get("id_prefix") or resource[:3] or "obj"),
    )
    return Route(str(pattern), make_handler(plan), schema=schema, name=f"{action} {resource}")


def _default_action(method: str, path: str) -> str:
    item = path.rstrip("/").rsplit("/", 1)[-1].startswith("{")
    if method == "POST":
        return "create"
    if method in ("GET", "HEAD"):
        return "read" if item else "list"
    return "delete" if method == "DELETE" else "update"
