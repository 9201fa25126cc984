"""An OpenAPI document as an ordinary :class:`~pytest_idempotency.variant.Variant`."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.datastructures import Headers

from ..overrides import coerce_policy_options
from ..policy import Answer, Policy, PolicyError
from ..variant import BEARER, CredentialScheme, Route, Variant, json_error_shape
from .checks import schema_errors
from .document import Document
from .errors import DescriptionError, refuse_all
from .example_request import example_request
from .forms import form_schema
from .handlers import make_handler
from .idempotency import KeyUse, key_use
from .operations import Operation, json_media_entry, operations
from .plans import Catalog, body_encoding, is_form, plan_for, raw_media, request_media
from .schema import LazySchema, request_schema
from .security import authenticator, operation_check, schemes_of
from .security_checks import credential_problem, security_errors
from .servers import base_path
from .shapes import TemplateShape, template_from_schema
from .structure import check_info

__all__ = ["VARIANT_OPTIONS", "variant_from_openapi"]

#: Root ``x-idempotency`` fields that are not policy options.
VARIANT_OPTIONS = ("name", "description", "base_path", "credential", "error", "fault_error")
_FAULT_ERROR = Answer(500, "injected_fault", "Injected {key}.", type="api_error")
_DEFAULT_CREDENTIALS = {
    "header": "test_api_key",
    "bearer": "test_token",
    "basic": "test_user:test_password",
}


def variant_from_openapi(
    path: str | Path, name: str | None = None, *, overlay: str | Path | None = None, **policy: Any
) -> Variant:
    """A variant serving the OpenAPI 3.0/3.1 document at ``path``: its routes, request
    schemas, credentials, error body and idempotency declaration, with generated stateful
    handlers. ``overlay`` is a JSON/YAML merge patch applied to the document first;
    ``policy`` overrides any policy option (``ttl=60``) and ``base_path``, ``credential``,
    ``error``, ``fault_error``, ``description``. Raises
    :class:`~pytest_idempotency.openapi.DescriptionError` naming the place and the fix."""
    doc = Document(path, overlay)
    check_info(doc)
    root = _root_options(doc)
    options = {**root, **policy}
    variant_opts = {k: options.pop(k) for k in VARIANT_OPTIONS if k in options}
    base = base_path(doc, variant_opts.get("base_path"))
    errors: list[DescriptionError] = []
    ops = operations(doc, errors)
    refuse_all(errors + security_errors(doc, ops) + schema_errors(doc, ops))
    uses = {id(op): key_use(doc, op) for op in ops}
    derived = _derived_policy(doc, base, ops, uses)
    try:
        chosen = Policy(**{**derived, **coerce_policy_options(options)})
    except (PolicyError, TypeError) as exc:
        raise doc.error(
            "/x-idempotency", str(exc), "fix the policy options (see docs/reference.md)"
        ) from None
    schemes = schemes_of(doc, ops)
    catalog = Catalog(ops)
    tenant_of = authenticator(schemes)
    shape = _error_shape(doc, ops, variant_opts.get("error"))
    credential = _credential(doc, schemes, variant_opts.get("credential"))
    info = doc.data.get("info") or {}
    return Variant(
        name=name or variant_opts.get("name") or _slug(str(info.get("title") or Path(path).stem)),
        description=str(
            variant_opts.get("description")
            or f"{info.get('title', 'API')} {info.get('version', '')}, from {Path(path).name}"
        ).strip(),
        policy=chosen,
        routes=_routes(doc, base, ops, catalog, tenant_of),
        error_shape=shape,
        record_error_shape=shape.record_shape if isinstance(shape, TemplateShape) else None,
        authenticate=tenant_of,
        unauthorized=Answer(
            401,
            "unauthorized",
            "Missing or malformed credential: send "
            + " or ".join(s.describe() for s in schemes)
            + ".",
        ),
        example_credential=credential,
        credential_schemes=schemes,
        example=example_request(doc, base, ops, uses),
        body_encoding=body_encoding(doc, ops),
        fault_error=_answer(doc, variant_opts.get("fault_error")),
        extra={"source": str(path), "openapi": doc.version},
    )


def _root_options(doc: Document) -> dict[str, Any]:
    raw = doc.data.get("x-idempotency", {})
    if not isinstance(raw, dict):
        raise doc.error(
            "/x-idempotency",
            "the root x-idempotency must be an object",
            "write e.g. x-idempotency: {ttl: 3600, key_header: Idempotency-Key}",
        )
    return dict(raw)


def _credential(doc: Document, schemes: tuple[CredentialScheme, ...], given: Any) -> str | None:
    """The example credential ``headers()`` sends: the one given, else a default."""
    if given is None:
        return _DEFAULT_CREDENTIALS[schemes[0].kind] if schemes else None
    problem = credential_problem(schemes[0] if schemes else BEARER, given)
    if problem:
        raise doc.error("/x-idempotency/credential", problem, "write e.g. credential: test_api_key")
    return str(given)


def _answer(doc: Document, raw: Any) -> Answer:
    if raw is None:
        return _FAULT_ERROR
    try:
        fields = {"status": 500, **raw}
        return Answer(**fields)
    except (TypeError, ValueError) as exc:  # a status outside 100-599 too
        raise doc.error(
            "/x-idempotency/fault_error",
            str(exc),
            'write {"code": "internal_error", "message": "Injected {key}.", "type": "internal"}',
        ) from None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "openapi"


def _derived_policy(
    doc: Document, base: str, ops: list[Operation], uses: dict[int, KeyUse]
) -> dict[str, Any]:
    keyed = [(op, uses[id(op)]) for op in ops if uses[id(op)].keyed]
    headers = {u.header for _, u in keyed if u.header}
    if len(headers) > 1:
        raise doc.error(
            "/paths",
            f"operations take the key in different headers: {', '.join(sorted(headers))}",
            "declare one with x-idempotency: {key_header: NAME} at the root",
        )
    fields = {u.field for _, u in keyed if u.field}
    out: dict[str, Any] = {
        "key_header": headers.pop() if headers else None if fields else "Idempotency-Key",
        "key_field": fields.pop() if fields else None,
        "keyed_routes": tuple(f"{op.method} {op.route_path(base)}" for op, _ in keyed),
        "key_required_routes": tuple(
            f"{op.method} {op.route_path(base)}" for op, u in keyed if u.required
        ),
    }
    limits = {
        (f"{op.method} {op.route_path(base)}", u.max_length) for op, u in keyed if u.max_length
    }
    distinct = {limit for _, limit in limits}
    if len(distinct) == 1:
        out["key_max_length"] = distinct.pop()
    elif distinct:
        out["key_max_length"] = max(distinct)
        out["key_route_limits"] = tuple(sorted(limits))
    return out


def _routes(
    doc: Document,
    base: str,
    ops: list[Operation],
    catalog: Catalog,
    tenant_of: Callable[[Headers], str | None],
) -> tuple[Route, ...]:
    """Every operation's route; every operation whose handler cannot be planned is refused
    at once (each named once, though an item's plan looks at its create's)."""
    routes: list[Route] = []
    errors: dict[tuple[str, str], DescriptionError] = {}
    for op in ops:
        try:
            routes.append(_route(doc, base, op, catalog, tenant_of))
        except DescriptionError as exc:
            errors.setdefault((exc.where, exc.problem), exc)
    refuse_all(list(errors.values()))
    return tuple(routes)


def _route(
    doc: Document,
    base: str,
    op: Operation,
    catalog: Catalog,
    tenant_of: Callable[[Headers], str | None],
) -> Route:
    media, required = request_media(doc, op)
    schema = None
    if (
        media is not None
        and media.get("schema") is not None
        and op.method not in ("GET", "HEAD", "DELETE")
    ):
        node, form = media["schema"], is_form(doc, op)

        def build() -> dict[str, Any]:
            built = request_schema(doc, node)
            if form:
                built = form_schema(built)
            if required:
                return built
            if built.get("type") == "object":  # the cheap way to accept an empty body
                return {**built, "type": ["object", "null"]}
            defs, dialect = built.pop("$defs", {}), built.pop("$schema")
            return {"$schema": dialect, "if": {"type": "null"}, "else": built, "$defs": defs}

        schema = LazySchema(build)
    authenticate, unauthorized = operation_check(doc, op.op, tenant_of)
    return Route(
        f"{op.method} {op.route_path(base)}",
        make_handler(plan_for(doc, op, catalog)),
        schema=schema,
        name=op.name,
        authenticate=authenticate,
        unauthorized=unauthorized,
        raw_media=raw_media(doc, op),
    )


def _error_shape(doc: Document, ops: list[Operation], template: Any) -> Any:
    """The document's own error body: the schema most of its 4xx/5xx/default answers use."""
    if template is not None:
        return TemplateShape(template)
    counts: Counter[str] = Counter()
    found: dict[str, tuple[Any, str]] = {}
    for op in ops:
        for code, response in (op.op.get("responses") or {}).items():
            if not (str(code)[:1] in "45" or code == "default"):
                continue
            response, _ = doc.deref(response, "")
            content = response.get("content") if isinstance(response, dict) else None
            media_type, media = json_media_entry(content)
            schema = (media or {}).get("schema")
            if isinstance(schema, dict):
                tag = str(schema.get("$ref") or id(schema))
                counts[tag] += 1
                found[tag] = (schema, media_type)
    if not counts:
        return json_error_shape
    schema, media_type = found[counts.most_common(1)[0][0]]
    return TemplateShape(template_from_schema(doc, schema), media_type)
