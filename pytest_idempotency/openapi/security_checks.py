"""Load-time checks of ``components/securitySchemes`` and of every ``security`` requirement,
so a malformed one is refused naming its place instead of failing when it is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..policy import PolicyError, check_header, is_header_name
from ..variant import CredentialScheme
from .document import Document
from .errors import DescriptionError, pointer
from .operations import Operation

__all__ = ["credential_problem", "security_errors"]

_TYPES = ("apikey", "http", "oauth2", "openidconnect", "mutualtls")
_WHERE = ("query", "header", "cookie")
#: An HTTP header name (RFC 9110 ``token``).
_REQUIREMENT_FIX = "write security as a list of requirements, e.g. security: [{api_key: []}]"


def security_errors(doc: Document, ops: list[Operation]) -> list[DescriptionError]:
    """One error per malformed scheme or requirement (root and operations)."""
    errors: list[DescriptionError] = []
    holders = [(doc.data, "")] + [(op.op, op.where) for op in ops]
    checks: list[tuple[Callable[..., None], tuple[Any, ...]]] = [(_check_schemes, (doc,))]
    for holder, where in holders:
        if "security" in holder:
            checks.append((_check_requirement, (doc, holder["security"], where + "/security")))
    for check, args in checks:
        try:
            check(*args)
        except DescriptionError as exc:
            errors.append(exc)
    return errors


def _check_schemes(doc: Document) -> None:
    components = doc.data.get("components")
    if components is None:
        return
    if not isinstance(components, dict):
        raise doc.error(
            "/components",
            "components must be an object",
            "write components: {schemas: ..., securitySchemes: ...}",
        )
    schemes = components.get("securitySchemes")
    if schemes is None:
        return
    if not isinstance(schemes, dict):
        raise doc.error(
            "/components/securitySchemes",
            "securitySchemes must be an object of named schemes",
            "write securitySchemes: {api_key: {type: apiKey, in: header, name: X-Api-Key}}",
        )
    for name, raw in schemes.items():
        where = pointer("components", "securitySchemes", str(name))
        scheme, _ = doc.deref(raw, where)
        _check_scheme(doc, scheme, where)


def _check_scheme(doc: Document, scheme: Any, where: str) -> None:
    kind = scheme.get("type") if isinstance(scheme, dict) else None
    if not isinstance(kind, str) or kind.lower() not in _TYPES:
        raise doc.error(
            where + "/type",
            f"a security scheme needs a type, one of apiKey, http, oauth2, openIdConnect, "
            f"mutualTLS (got {kind!r:.40})",
            "write e.g. {type: http, scheme: bearer}",
        )
    assert isinstance(scheme, dict)
    if kind.lower() == "apikey":
        _check_api_key(doc, scheme, where)
    elif kind.lower() == "http" and not isinstance(scheme.get("scheme"), str):
        raise doc.error(
            where + "/scheme",
            "an http scheme needs its scheme name",
            "write scheme: bearer (or basic)",
        )


def _check_api_key(doc: Document, scheme: dict[str, Any], where: str) -> None:
    place, name = scheme.get("in"), scheme.get("name")
    if place not in _WHERE:
        raise doc.error(
            where + "/in",
            f"an apiKey is sent in a query, header or cookie (got {place!r:.40})",
            "write in: header (or query, cookie)",
        )
    if not isinstance(name, str) or not name.strip():
        raise doc.error(
            where + "/name",
            "an apiKey needs the name it is sent under",
            "write e.g. name: X-Api-Key",
        )
    if place == "header" and not is_header_name(name):
        raise doc.error(
            where + "/name",
            f"{name!r} is not an HTTP header name",
            "write a header name such as X-Api-Key (letters, digits and -)",
        )


def _check_requirement(doc: Document, requirement: Any, where: str) -> None:
    if not isinstance(requirement, list):
        raise doc.error(
            where,
            f"security must be an array of requirements (got {type(requirement).__name__})",
            _REQUIREMENT_FIX,
        )
    for index, alternative in enumerate(requirement):
        here = pointer(index)
        if not isinstance(alternative, dict):
            raise doc.error(
                where + here,
                "a security requirement must be an object of scheme names",
                _REQUIREMENT_FIX,
            )
        for name, scopes in alternative.items():
            if not isinstance(scopes, list):
                raise doc.error(
                    where + here + pointer(str(name)),
                    "a requirement's scopes must be an array",
                    "write [] for no scopes, e.g. {api_key: []}",
                )


def credential_problem(scheme: CredentialScheme, value: Any) -> str | None:
    """Why ``value`` cannot be the example credential ``headers()`` sends by ``scheme``
    (``None``: it can): not a string, not one header line, or not read back as sent."""
    if not isinstance(value, str) or not value:
        return f"the example credential must be a non-empty string (got {value!r:.40})"
    sent = scheme.send(value)
    try:
        for name, text in sent.items():
            check_header("credential", name, text)
    except PolicyError:
        return (
            f"the example credential {value[:40]!r} cannot go out in one header line (it holds "
            "CR, LF or another control character)"
        )
    if scheme.read(sent) != value:
        return (
            f"the example credential {value[:40]!r} is not one a {scheme.describe()} carries "
            "(ASCII, no spaces; user:password for Basic)"
        )
    return None
