"""Which keys of a document are vendor extensions the reader does not read: an ``x-*`` key
(``x-topics``, ``x-codeSamples``) of a specification object, not one named by the document's
author in a map (a property, a header or a component called ``x-request-id``). Their
contents are the vendor's: a ``$ref`` there is never followed (it may name a ``.md`` file).
``x-idempotency`` is the reader's own and is read."""

from __future__ import annotations

from typing import Any

__all__ = ["is_extension"]

#: Keys whose values map names the author chose (so an ``x-`` name there is a name).
_NAMED_MAPS = frozenset(
    (
        "properties",
        "patternProperties",
        "$defs",
        "definitions",
        "dependentSchemas",
        "dependencies",
        "schemas",
        "responses",
        "parameters",
        "examples",
        "requestBodies",
        "headers",
        "securitySchemes",
        "links",
        "callbacks",
        "pathItems",
        "webhooks",
        "content",
        "encoding",
        "variables",
        "mapping",
        "scopes",
    )
)


def is_extension(name: Any, parent: Any) -> bool:
    """Whether key ``name`` of an object found under key ``parent`` (``None``, or an empty
    tuple: at the top or in an array; a one-part tuple is read as that part) is a vendor
    extension the reader skips."""
    if isinstance(parent, tuple):
        parent = parent[0] if parent else None
    return (
        isinstance(name, str)
        and name.startswith("x-")
        and name != "x-idempotency"
        and parent not in _NAMED_MAPS
    )
