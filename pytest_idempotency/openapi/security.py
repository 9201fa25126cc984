"""Credentials from ``components/securitySchemes``: how they are checked and sent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from werkzeug.datastructures import Headers
from werkzeug.http import parse_cookie

from ..policy import Answer
from ..variant import CredentialScheme
from .document import Document
from .operations import Operation

__all__ = ["authenticator", "operation_check", "schemes_of"]


def schemes_of(doc: Document, ops: list[Operation]) -> tuple[CredentialScheme, ...]:
    """The schemes the document's operations accept, in the order the document prefers them
    (an API key in a header first, as SDKs send it; then Bearer, then Basic)."""
    declared = ((doc.data.get("components") or {}).get("securitySchemes")) or {}
    used = _used_scheme_names(doc, ops)
    found: list[CredentialScheme] = []
    for name, raw in declared.items():
        if used is not None and name not in used:
            continue
        scheme, _ = doc.deref(raw, "")
        converted = _convert(scheme if isinstance(scheme, dict) else {})
        if converted is not None and converted not in found:
            found.append(converted)
    order = {"header": 0, "bearer": 1, "basic": 2}
    return tuple(sorted(found, key=lambda s: order[s.kind]))


def _used_scheme_names(doc: Document, ops: list[Operation]) -> set[str] | None:
    """Names of schemes some operation (or the root) requires; ``None``: none is named."""
    names: set[str] = set()
    requirements: list[Any] = [doc.data.get("security") or []]
    requirements.extend(op.op.get("security") or [] for op in ops)
    for requirement in requirements:
        for alternative in requirement if isinstance(requirement, list) else []:
            if isinstance(alternative, dict):
                names.update(alternative)
    return names or None


def _convert(scheme: dict[str, Any]) -> CredentialScheme | None:
    kind = str(scheme.get("type", "")).lower()
    if kind == "apikey" and scheme.get("in") == "header" and scheme.get("name"):
        return CredentialScheme("header", str(scheme["name"]))
    if kind == "http":
        http = str(scheme.get("scheme", "")).lower()
        if http == "basic":
            return CredentialScheme("basic")
        if http == "bearer":
            return CredentialScheme("bearer")
    if kind in ("oauth2", "openidconnect"):
        return CredentialScheme("bearer")
    return None  # query and cookie keys, mutual TLS: not checked


def authenticator(schemes: tuple[CredentialScheme, ...]) -> Callable[[Headers], str | None]:
    """Headers -> the tenant: the first credential present in any accepted scheme, ``None``
    when none is (or one is malformed); with no scheme, everyone is the tenant ``""``."""
    if not schemes:
        return lambda headers: ""

    def authenticate(headers: Headers) -> str | None:
        for scheme in schemes:
            if scheme.header in headers:
                token = scheme.read(headers)
                if token is not None:
                    return f"{scheme.kind}:{token}"
        return None

    return authenticate


# -- per operation -------------------------------------------------------------------------------


class Credential(NamedTuple):
    """One credential an operation may ask for. ``where`` is a header scheme's kind
    (``header``, ``bearer``, ``basic``: read by ``scheme``), ``query``, ``cookie``, or
    ``unchecked`` (a scheme the fake cannot check, such as mutual TLS or HTTP Digest: it never
    refuses a client for it)."""

    where: str
    name: str
    scheme: CredentialScheme | None = None


RouteAuthenticate = Callable[[Headers, Mapping[str, str]], str | None]


def operation_check(
    doc: Document, op: dict[str, Any], tenant_of: Callable[[Headers], str | None]
) -> tuple[RouteAuthenticate, Answer]:
    """The credential check of one operation: its own ``security`` (else the root's), read the
    OpenAPI way. Alternatives are tried in order, every scheme of one alternative must be sent,
    and no requirement, ``[]`` or an empty alternative ``{}`` lets anyone call the operation
    (the tenant is then what ``tenant_of`` reads from a credential sent anyway, else ``""``)."""
    alternatives = _alternatives(doc, op)
    anyone = not alternatives or any(not alt for alt in alternatives)
    checks = [alt for alt in alternatives if alt]

    def authenticate(headers: Headers, query: Mapping[str, str]) -> str | None:
        for alt in checks:
            tenant = _satisfied(alt, headers, query)
            if tenant is not None:
                return tenant
        return (tenant_of(headers) or "") if anyone else None

    return authenticate, Answer(401, "unauthorized", _refusal(checks))


def _alternatives(doc: Document, op: dict[str, Any]) -> list[list[Credential]]:
    requirement = op["security"] if "security" in op else doc.data.get("security")
    declared = ((doc.data.get("components") or {}).get("securitySchemes")) or {}
    out: list[list[Credential]] = []
    for alternative in requirement if isinstance(requirement, list) else []:
        if not isinstance(alternative, dict):
            continue
        needs: list[Credential] = []
        for name in alternative:
            raw, _ = doc.deref(declared.get(name) or {}, "")
            needs.append(_credential_of(raw if isinstance(raw, dict) else {}))
        out.append(needs)
    return out


def _credential_of(scheme: dict[str, Any]) -> Credential:
    known = _convert(scheme)
    if known is not None:
        return Credential(known.kind, known.header, known)
    where, name = str(scheme.get("in", "")).lower(), str(scheme.get("name", ""))
    if str(scheme.get("type", "")).lower() == "apikey" and where in ("query", "cookie") and name:
        return Credential(where, name)
    return Credential("unchecked", str(scheme.get("type", "")).lower() or "unknown")


def _satisfied(alt: list[Credential], headers: Headers, query: Mapping[str, str]) -> str | None:
    """The tenant when every credential of ``alt`` was sent (from the first checked one)."""
    tenant: str | None = None
    for credential in alt:
        token = _read(credential, headers, query)
        if token is None:
            return None
        if tenant is None and credential.where != "unchecked":
            tenant = f"{credential.where}:{token}"
    return tenant or ""


def _read(credential: Credential, headers: Headers, query: Mapping[str, str]) -> str | None:
    if credential.scheme is not None:
        return credential.scheme.read(headers)
    if credential.where == "unchecked":
        return ""
    if credential.where == "query":
        value = query.get(credential.name)
    else:
        value = parse_cookie(headers.get("Cookie", "")).get(credential.name)
    value = (value or "").strip()
    return value if value and value.isascii() else None


def _refusal(checks: list[list[Credential]]) -> str:
    said = {
        "header": "the {} header",
        "query": "the {} query parameter",
        "cookie": "the {} cookie",
        "bearer": "a Bearer token",
        "basic": "HTTP Basic",
    }
    options = [
        " and ".join(said[c.where].format(c.name) for c in alt if c.where in said) for alt in checks
    ]
    said_options = " or ".join(o for o in options if o)
    if not said_options:
        return "Missing or malformed credential."
    return f"Missing or malformed credential: send {said_options}."
