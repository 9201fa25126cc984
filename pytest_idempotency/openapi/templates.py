"""Path templates both readers check the same way (an OpenAPI document's ``paths`` and a
contract file's ``[[routes]]``): whether a template can ever match a request, and the shape
that tells two templates apart (their parameters' names do not)."""

from __future__ import annotations

import re

__all__ = ["TEMPLATE_FIX", "template_problem", "template_shape"]

_PARAM = re.compile(r"\{([^}/]+)\}")
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]")
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\-]+")

#: The fix for a template that can never match a request.
TEMPLATE_FIX = (
    "write a path of URL characters with whole parameters, e.g. '/things/{thing_id}' "
    "(percent-encode other characters; the query string is not part of a path)"
)


def template_problem(template: str) -> str | None:
    """Why a path template can never match a request (``None``: it can)."""
    for piece in re.split(r"(\{[^{}]*\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            if not _PARAM_NAME.fullmatch(piece[1:-1]):
                return f"{piece!r} is not a parameter name (ASCII letters, digits, '_', '-', '.')"
            continue
        bad = next(
            (c for c in piece if not (_LITERAL.match(c) or (ord(c) > 127 and c.isalnum()))), None
        )
        if bad is not None:
            return f"{bad!r} cannot appear in a URL path" + (
                " (an unclosed or nested parameter)" if bad in "{}" else ""
            )
    return None


def template_shape(template: str) -> str:
    """The template with its parameters' names left out: two templates of one shape
    (``/a/{x}``, ``/a/{y}``) match the same requests."""
    return _PARAM.sub("{}", template)
