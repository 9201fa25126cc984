"""Route patterns: ``"POST /v1/tasks"``, ``"GET /v1/tasks/{id}"``, ``"POST *"``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["RoutePattern", "parse_route", "specificity"]

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"}
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class RoutePattern:
    """A method and a path template; ``{name}`` matches one path segment, ``*`` any path.
    The template's own text is matched percent-decoded (``/my%20files`` matches the request
    path ``/my files``), as request paths arrive decoded."""

    method: str
    path: str
    regex: re.Pattern[str]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method path`` matches, else ``None``."""
        if self.method != "*" and self.method != method:
            return None
        found = self.regex.fullmatch(path)
        return None if found is None else found.groupdict()

    def matches_path(self, path: str) -> bool:
        """Whether the path matches, whatever the method."""
        return self.regex.fullmatch(path) is not None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@functools.lru_cache(maxsize=1024)
def parse_route(spec: str) -> RoutePattern:
    """Parse ``"METHOD /path/{param}"``; the method may be ``*``, the path may be ``*``
    (any path) or end in ``/*`` (any suffix)."""
    parts = spec.split()
    if len(parts) != 2:
        raise ValueError(
            f"route {spec!r} must be 'METHOD /path', e.g. 'POST /v1/tasks' or 'GET /v1/tasks/{{id}}'"
        )
    method, path = parts[0].upper(), parts[1]
    if method not in _METHODS:
        raise ValueError(
            f"route {spec!r}: unknown method {method!r}; use one of {sorted(_METHODS)}"
        )
    if path == "*":
        regex = re.compile(r"/.*")
    else:
        if not path.startswith("/"):
            raise ValueError(f"route {spec!r}: the path must start with '/' (or be '*')")
        tail = ""
        if path.endswith("/*"):
            path_body, tail = path[:-2], r"(?:/.*)?"
        else:
            path_body = path
        pieces: list[str] = []
        last = 0
        names = _PARAM.findall(path_body)
        if len(set(names)) < len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(
                f"route {spec!r}: the parameter {{{twice[0]}}} appears twice; give each "
                "parameter of a path its own name"
            )
        for found in _PARAM.finditer(path_body):
            pieces.append(re.escape(unquote(path_body[last : found.start()])))
            pieces.append(f"(?P<{found.group(1)}>[^/]+)")
            last = found.end()
        pieces.append(re.escape(unquote(path_body[last:])))
        regex = re.compile("".join(pieces) + tail)
    return RoutePattern(method=method, path=path, regex=regex)


def specificity(pattern: RoutePattern) -> tuple[object, ...]:
    """A sort key that puts the most specific route first, as OpenAPI (section "Paths") and
    werkzeug match: segment by segment, a literal segment before one with a parameter (and,
    among those, the one with more literal text: ``{sid}.json`` before ``{sid}``); a path with
    a wildcard (``*``, ``/x/*``) after every path without one; a method before ``*``. Routes
    equal by these rules keep their order."""
    path = pattern.path
    wildcard = path == "*" or path.endswith("/*")
    body = path[:-2] if path.endswith("/*") else ("" if path == "*" else path)
    segments = []
    for segment in body.split("/")[1:]:
        params = _PARAM.findall(segment)
        literal = len(_PARAM.sub("", segment))
        segments.append((1, -literal) if params else (0, 0))
    return (wildcard, tuple(segments), pattern.method == "*")
