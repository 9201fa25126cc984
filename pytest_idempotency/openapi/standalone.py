"""Load-time checks of a standalone JSON Schema (a contract file's route schema): the
validator can be made (valid JSON Schema, not nested too deep to check), every ``$ref``
resolves inside the schema, and no ``$ref`` loop leaves a value that can never be checked.
Each refusal is ``(pointer inside the schema, problem, fix)``; what passes never fails at
request time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.exceptions import CannotDetermineSpecification as ReferencingError
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from .. import schemas
from .errors import pointer

__all__ = ["schema_problem"]

_ROOT = "urn:pytest-idempotency:contract-schema"
_REF_FIX = (
    "a contract file's schema refers only into itself: define the part under $defs and "
    'write "$ref" = "#/$defs/Name"'
)
#: One value of each JSON type: a ``$ref`` loop through ``allOf``/``anyOf``/``oneOf`` shows
#: on one of them.
_PROBES: tuple[Any, ...] = (None, {}, [], "", 0, False)


def schema_problem(spec: str, schema: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """``(where, problem, fix)`` of the first reason route ``spec``'s ``schema`` cannot be
    served, else ``None``."""
    dialect = schema.get("$schema")
    if dialect is not None and validator_for(schema, default=None) is None:
        return (
            "/$schema",
            f"the $schema {json.dumps(dialect, default=str)[:80]} is no JSON Schema draft the "
            "fake knows",
            'write "$schema" = "https://json-schema.org/draft/2020-12/schema", or leave it out',
        )
    refused = schemas.schema_refusal(spec, schema)
    if refused is not None:
        return "", *refused
    ref_problem = _dangling(schema)
    if ref_problem is not None:
        return ref_problem
    try:
        check = schemas.validator(schema)
        for probe in _PROBES:
            check.is_valid(probe)
    except RecursionError:
        return (
            "",
            "this schema refers to itself without end (a $ref loop through allOf, anyOf, oneOf "
            "or not, with no property or item in between): no value can be checked against it",
            "put the recursion under properties or items, or remove the $ref",
        )
    except Unresolvable as exc:  # a $dynamicRef or $recursiveRef the walk does not follow
        return "", f"a reference points nowhere ({exc})", _REF_FIX
    return None


def _dangling(schema: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The first ``$ref`` that does not resolve inside ``schema``."""
    try:
        resource: Resource[Any] = Resource.from_contents(
            dict(schema), default_specification=DRAFT202012
        )
    except ReferencingError:  # an unknown $schema, refused before (see schema_problem)
        return None
    registry: Registry[Any] = Registry().with_resource(_ROOT, resource).crawl()
    resolver = registry.resolver(base_uri=_ROOT)
    for where, base, ref in _refs(schema):
        try:
            resolver.lookup(urljoin(base, ref))
        except Unresolvable:
            return where, f"the $ref {ref!r} points nowhere in this schema", _REF_FIX
    return None


def _refs(schema: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """``(pointer of the $ref, base URI there, the $ref)`` for each ``$ref`` in ``schema``."""
    stack: list[tuple[Any, tuple[str, ...], str]] = [(schema, (), _ROOT)]
    while stack:
        node, path, base = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$id"), str) and path:
                base = urljoin(base, node["$id"])
            if isinstance(node.get("$ref"), str):
                yield pointer(*path, "$ref"), base, node["$ref"]
            children: Iterable[tuple[Any, Any]] = node.items()
        elif isinstance(node, list):
            children = enumerate(node)
        else:
            continue
        for name, child in children:
            if name not in ("enum", "const", "default", "examples", "example"):
                stack.append((child, (*path, str(name)), base))
