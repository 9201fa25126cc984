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
from pathlib import Path
from typing import Any

from .openapi import DescriptionError, variant_from_openapi
from .openapi.contract_routes import contract_routes, known_fields, text_field
from .openapi.document import read_data_file, read_text
from .openapi.errors import pointer
from .openapi.limits import MAX_DEPTH, check_tree
from .openapi.security_checks import credential_problem
from .openapi.shapes import TemplateShape
from .overrides import coerce_policy_options
from .policy import Answer, Policy, PolicyError, check_header, is_header_name
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
_CREDENTIAL = ("scheme", "header", "example")
_ERRORS = ("template", "content_type", "fault")


def read_contract(path: str | Path) -> dict[str, Any]:
    """The contract file's data (TOML, or JSON by its ``.json`` suffix), refused naming the
    place when it holds what JSON cannot (a TOML date) or nests past
    :data:`~.openapi.limits.MAX_DEPTH` levels."""
    path = Path(path)
    data = read_data_file(path, "contract file") if path.suffix.lower() == ".json" else None
    if data is None:
        data = _read_toml(path)
    if not isinstance(data, dict):
        raise DescriptionError(
            str(path),
            "",
            "a contract file is an object",
            "write name = ..., [policy] and [[routes]]",
        )
    return data


def _read_toml(path: Path) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        data = tomllib.loads(read_text(path, "contract file"))
    except tomllib.TOMLDecodeError as exc:
        raise DescriptionError(
            str(path),
            "",
            f"the contract file is not valid TOML: {exc}",
            "fix the TOML syntax, or name a JSON file *.json",
        ) from None
    except RecursionError:
        raise DescriptionError(
            str(path),
            "",
            f"the contract file nests tables and arrays more than {MAX_DEPTH} levels deep",
            f"nest at most {MAX_DEPTH} levels",
        ) from None
    try:
        check_tree(data, str(path))
    except DescriptionError as exc:
        if "date" not in exc.problem and "time" not in exc.problem:
            raise
        raise DescriptionError(
            exc.source,
            exc.where,
            exc.problem.replace("value is not JSON", "is not a value a contract can hold"),
            'quote it as a string ("1979-05-27"); a duration such as ttl is a number of seconds',
        ) from None
    return data


def variant_from_contract(path: str | Path, base: Variant | None = None) -> Variant:
    """The variant a contract file states. With ``base`` (or ``openapi = FILE`` in the file),
    the file changes that variant: its policy options, credential, errors and routes (a route
    of the file replaces the base's route of the same spec). Raises
    :class:`~pytest_idempotency.openapi.DescriptionError` naming the place and the fix."""
    source = str(path)
    data = read_contract(path)
    known_fields(source, "", data, _TOP)
    if base is None and data.get("openapi") is not None:
        folder = Path(path).parent
        document = text_field(source, "/openapi", data["openapi"], '"api.yaml"')
        overlay = data.get("overlay")
        if overlay is not None:
            overlay = folder / text_field(source, "/overlay", overlay, '"overlay.json"')
        base = variant_from_openapi(folder / document, overlay=overlay)
    routes = contract_routes(source, data.get("routes", []))
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


def _policy(source: str, options: Any, start: Policy) -> Policy:
    known_fields(source, "/policy", options, tuple(f.name for f in dataclasses.fields(Policy)))
    for name, value in options.items():  # each option alone first: the error names it
        try:
            start.replace(**coerce_policy_options({name: value}))
        except PolicyError as exc:
            problem = str(exc)
        else:
            continue
        raise DescriptionError(
            source, pointer("policy", name), problem, "fix the option (see docs/reference.md)"
        )
    try:
        return start.replace(**coerce_policy_options(options))
    except PolicyError as exc:
        raise DescriptionError(
            source, "/policy", str(exc), "fix the options together (see docs/reference.md)"
        ) from None


def _credential(source: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    known_fields(source, "/credential", raw, _CREDENTIAL)
    scheme = text_field(source, "/credential/scheme", raw.get("scheme", "bearer"), '"bearer"')
    default = "X-API-Key" if scheme == "header" else "Authorization"
    header = text_field(source, "/credential/header", raw.get("header", default), '"X-API-Key"')
    try:
        chosen = CredentialScheme(scheme, header)
    except ValueError as exc:
        raise DescriptionError(
            source, "/credential/scheme", str(exc), 'write scheme = "bearer", "basic" or "header"'
        ) from None
    if not is_header_name(header):
        raise DescriptionError(
            source,
            "/credential/header",
            f"{header!r} is not an HTTP header name",
            "write a header name such as X-API-Key (letters, digits and -)",
        )

    def authenticate(headers: Any) -> str | None:
        token = chosen.read(headers)
        return None if token is None else f"{chosen.kind}:{token}"

    out: dict[str, Any] = {"credential_schemes": (chosen,), "authenticate": authenticate}
    out["unauthorized"] = Answer(
        401, "unauthorized", f"Missing or malformed credential: send a {chosen.describe()}."
    )
    if raw.get("example") is not None:
        problem = credential_problem(chosen, raw["example"])
        if problem:
            raise DescriptionError(
                source, "/credential/example", problem, 'write example = "acme_key"'
            )
        out["example_credential"] = raw["example"]
    return out


def _errors(source: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    known_fields(source, "/errors", raw, _ERRORS)
    out: dict[str, Any] = {}
    if "template" in raw:
        if not isinstance(raw["template"], dict):
            raise DescriptionError(
                source,
                "/errors/template",
                "the error template must be a table (a JSON object)",
                'write [errors.template] with fields such as message = "{message}"',
            )
        content_type = text_field(
            source, "/errors/content_type", raw.get("content_type", "application/json"), '""'
        )
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
        known_fields(source, "/errors/fault", fault, ("code", "message", "type"))
        texts = {
            name: text_field(source, pointer("errors", "fault", name), fault[name], '"API_ERROR"')
            for name in ("code", "message", "type")
            if name in fault
        }
        out["fault_error"] = Answer(
            500,
            texts.get("code", "injected_fault"),
            texts.get("message", "Injected {key}."),
            texts.get("type"),
        )
    return out


def _example(source: str, raw: Any) -> tuple[str, str, dict[str, Any]]:
    known_fields(source, "/example", raw, ("route", "body"))
    spec = text_field(source, "/example/route", raw.get("route"), '"POST /orders"')
    try:
        pattern = parse_route(spec)
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
