"""The base path the fake serves a document's paths under: from the ``base_path`` option,
else the path of the first ``servers`` URL (its variables at their defaults). Every server
object is checked, so a malformed one is refused naming its place."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .document import Document
from .errors import pointer

__all__ = ["base_path", "check_path_text"]

#: What a URL path may hold (RFC 3986 ``pchar`` and ``/``); ``{}`` are the callers' business.
_PATH_TEXT = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/{}]*")
_SERVER_FIX = (
    'write servers as a list of objects, e.g. servers: [{url: "https://api.example.com/v1"}]'
)


def check_path_text(text: str) -> str | None:
    """What is wrong with ``text`` as a URL path (``None``: nothing)."""
    bad = next((c for c in text if not _PATH_TEXT.fullmatch(c)), None)
    if bad is None:
        return None
    return f"{bad!r} cannot appear in a URL path"


def base_path(doc: Document, given: Any) -> str:
    if given is not None:
        path = "/" + str(given).strip("/") if str(given).strip("/") else ""
        problem = check_path_text(path)
        if problem:
            raise doc.error("/x-idempotency/base_path", problem, "write a path such as /v1")
        return path
    servers = _checked_servers(doc)
    if not servers:
        return ""
    url: str = servers[0]["url"]
    for var, spec in (servers[0].get("variables") or {}).items():
        url = url.replace("{" + var + "}", str(spec["default"]))
    if "{" in url or "}" in url:
        raise doc.error(
            "/servers/0/url",
            f"the server URL {url!r} has a placeholder that is not a declared server variable",
            "declare it under servers[0].variables with a default, or pass base_path='/v1' "
            "(or an overlay that sets servers[0].url)",
        )
    if "://" not in url and not url.startswith("/"):
        url = _scheme_less(url)
    path = urlsplit(url).path.rstrip("/")
    problem = check_path_text(path)
    if problem:
        raise doc.error(
            "/servers/0/url", f"the server URL {url!r}: {problem}", "percent-encode it (%20)"
        )
    return path


def _checked_servers(doc: Document) -> list[dict[str, Any]]:
    servers = doc.data.get("servers")
    if servers is None:
        return []
    if not isinstance(servers, list):
        raise doc.error("/servers", "servers must be an array of server objects", _SERVER_FIX)
    for index, server in enumerate(servers):
        _check_server(doc, server, pointer("servers", index))
    return servers


def _check_server(doc: Document, server: Any, where: str) -> None:
    if not isinstance(server, dict) or not isinstance(server.get("url"), str):
        raise doc.error(
            where, f"a server must be an object with a url string (got {server!r:.60})", _SERVER_FIX
        )
    variables = server.get("variables")
    if variables is None:
        return
    if not isinstance(variables, dict):
        raise doc.error(
            where + "/variables",
            "server variables must be an object of variable objects",
            'write variables: {version: {default: "v1"}}',
        )
    for name, spec in variables.items():
        _check_variable(doc, spec, where + pointer("variables", str(name)))


def _check_variable(doc: Document, spec: Any, where: str) -> None:
    default = spec.get("default") if isinstance(spec, dict) else None
    if isinstance(default, bool) or not isinstance(default, (str, int, float)):
        raise doc.error(
            where + "/default",
            "a server variable needs a string default",
            'write e.g. {default: "v1", enum: ["v1", "v2"]}',
        )
    assert isinstance(spec, dict)
    enum = spec.get("enum")
    if enum is not None and (not isinstance(enum, list) or str(default) not in map(str, enum)):
        raise doc.error(
            where + "/enum",
            f"the default {default!r} is not one of the variable's enum {enum!r:.80}",
            "make enum a list of strings that holds the default",
        )


def _scheme_less(url: str) -> str:
    """A server URL without a scheme: ``api.example.com/v1`` is a host and a path, ``v1`` a
    path."""
    first = url.split("/", 1)[0]
    if "." in first or ":" in first or first == "localhost":
        return "//" + url
    return "/" + url
