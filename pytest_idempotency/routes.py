"""Route patterns: ``"POST /v1/tasks"``, ``"GET /v1/tasks/{id}"``, ``"POST *"``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["RoutePattern", "parse_route", "specificity"]

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"}
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: A path body cut into its ``{...}`` pieces and the text between them.
_PIECES = re.compile(r"(\{[^{}]*\})")
#: How a template is written, for the messages that refuse one.
_TEMPLATE_FIX = (
    "write the path as literal segments and whole parameters, e.g. 'GET /v1/things/{thing_id}' "
    "(a parameter name is letters, digits and '_', not starting with a digit; percent-encode a "
    "literal brace as %7B/%7D)"
)


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
        problem = _template_problem(path_body)
        if problem is not None:
            raise ValueError(f"route {spec!r}: {problem}; {_TEMPLATE_FIX}")
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


def _template_problem(path: str) -> str | None:
    """What is wrong with the path ``path`` (its ``/*`` tail cut off): a brace that is not part
    of a whole ``{name}``, a query or fragment, a ``*`` that is not the tail; ``None``: nothing."""
    for piece in _PIECES.split(path):
        if piece.startswith("{") and piece.endswith("}"):
            if _PARAM.fullmatch(piece) is None:
                return f"{piece} is not a parameter, so the route can never match"
        elif "{" in piece or "}" in piece:
            brace = "an unclosed '{'" if "{" in piece else "a '}' that closes nothing"
            return f"the path has {brace} (in {piece!r}), so the route can never match"
        elif "?" in piece or "#" in piece:
            return (
                "the path has a query or fragment ('?' or '#'), which a request's path never "
                "holds, so the route can never match"
            )
        elif "*" in piece:
            return (
                "'*' matches any path only as the whole path ('POST *') or as the last "
                "segment ('POST /v1/*'); elsewhere it would match only a literal '*'"
            )
    return None


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
