"""Credentials from ``components/securitySchemes``: how they are checked and sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import Headers

from ..variant import CredentialScheme
from .document import Document

__all__ = ["authenticator", "schemes_of"]


def schemes_of(doc: Document) -> tuple[CredentialScheme, ...]:
    """The schemes the document's operations accept, in the order the document prefers them
    (an API key in a header first, as SDKs send it; then Bearer, then Basic)."""
    declared = ((doc.data.get("components") or {}).get("securitySchemes")) or {}
    used = _used_scheme_names(doc)
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


def _used_scheme_names(doc: Document) -> set[str] | None:
    """Names of schemes some operation (or the root) requires; ``None``: none is named."""
    names: set[str] = set()
    requirements: list[Any] = [doc.data.get("security") or []]
    for item in doc.data["paths"].values():
        if isinstance(item, dict):
            requirements.extend(
                op.get("security") or [] for op in item.values() if isinstance(op, dict)
            )
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
