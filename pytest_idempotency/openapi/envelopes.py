"""Answers that wrap the object in one property (``{"endpoint": {...}}``, DigitalOcean;
``{"bank_transfer": {...}, "request_id": ...}``, Plaid): which property is the envelope, and
the properties of an answer schema, ``oneOf``/``anyOf`` branches included."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .document import Document
from .instances import object_properties

__all__ = ["Envelope", "answer_properties", "envelopes", "is_scalar", "named_like", "same_name"]


@dataclass(frozen=True)
class Envelope:
    """The property ``name`` of an answer holds the object, whose properties are ``props``."""

    name: str
    props: dict[str, Any]
    required: list[str]


def same_name(a: str, b: str) -> bool:
    """Whether two names are one, ignoring case, ``_`` and ``-`` (``BrandVettingSid`` is
    ``brand_vetting_sid``)."""
    return _squeezed(a) == _squeezed(b)


def _squeezed(name: str) -> str:
    return re.sub(r"[-_]", "", name).lower()


def named_like(names: Iterable[str], wanted: str) -> str | None:
    """The first of ``names`` that is ``wanted`` by :func:`same_name`."""
    return next((n for n in names if same_name(n, wanted)), None)


def answer_properties(doc: Document, schema: Any) -> tuple[dict[str, Any], list[str]]:
    """The properties of an answer schema and the names it requires: its own (``allOf``
        merged), then those of its ``oneOf``/``anyOf`` branches that it does not name itself (and
    the names any branch requires)."""
    props, required = object_properties(doc, schema)
    node, _ = doc.deref(schema, "")
    if not isinstance(node, dict):
        return props, required
    for combo in ("oneOf", "anyOf"):
        branches = node.get(combo)
        for branch in branches if isinstance(branches, list) else ():
            more, need = object_properties(doc, branch)
            for name, prop in more.items():
                props.setdefault(name, prop)
            required += [n for n in need if n not in required]
    return props, required


def envelopes(
    doc: Document,
    props: dict[str, Any],
    required: list[str],
    carries_id: Callable[[dict[str, Any]], bool],
) -> list[Envelope]:
    """The properties that may wrap the answer's object: among the required ones (else the
    sole property), each whose schema is an object ``carries_id`` accepts."""
    pool = [n for n in required if n in props] or (list(props) if len(props) == 1 else [])
    found = []
    for name in dict.fromkeys(pool):
        inner, need = answer_properties(doc, props[name])
        if inner and carries_id(inner) and not _is_array(doc, props[name]):
            found.append(Envelope(name, inner, need))
    return found


def _is_array(doc: Document, prop: Any) -> bool:
    node, _ = doc.deref(prop, "")
    return isinstance(node, dict) and (node.get("type") == "array" or "items" in node)


def is_scalar(doc: Document, prop: Any) -> bool:
    """Whether a property may hold an id: not an object or an array."""
    node, _ = doc.deref(prop, "")
    if not isinstance(node, dict):
        return True
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return not ({"object", "array"} & set(kinds) or "properties" in node or "items" in node)
