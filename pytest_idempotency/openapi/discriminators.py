"""Which branch of a ``oneOf``/``anyOf`` an OpenAPI ``discriminator`` value selects: a
``mapping`` entry; a value the branch fixes the property to with ``const`` or ``enum``
(OpenAI's ``ChatCompletionRequestMessage``: ``role: {enum: [user]}``); the name of the
schema a branch ``$ref``s (always accepted). A value that several branches fix is checked
against all of them; a branch no value can select is refused at load time."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .document import Document, mapping_ref
from .merging import merged

__all__ = ["Selection", "branch_tags", "discriminator_of", "selection"]


def discriminator_of(schema: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """``(propertyName, {value: $ref})`` of a schema's OpenAPI ``discriminator`` (``None``:
    none, or one without a string ``propertyName``); a mapping to a bare name (``Cat``)
    names ``#/components/schemas/Cat``."""
    found = schema.get("discriminator")
    if not isinstance(found, dict) or not isinstance(found.get("propertyName"), str):
        return None
    mapping = found.get("mapping")
    pairs = mapping.items() if isinstance(mapping, dict) else ()
    return found["propertyName"], {
        str(value): mapping_ref(target) for value, target in pairs if isinstance(target, str)
    }


def branch_tags(doc: Document, branch: Any, name: str) -> list[Any] | None:
    """The values ``branch`` (``$ref``s and ``allOf`` followed) fixes property ``name`` to
    with ``const`` or ``enum`` (``None``: it does not fix it)."""
    prop = _of(doc, _of(doc, branch).get("properties", {}).get(name))
    if "const" in prop:
        return [prop["const"]]
    enum = prop.get("enum")
    if not isinstance(enum, list):
        return None
    return [v for v in enum if v is not None] or None


def _of(doc: Document, node: Any) -> dict[str, Any]:
    node, _ = doc.deref(node, "")
    if not isinstance(node, dict):
        return {}
    out = merged(doc, node) if isinstance(node.get("allOf"), list) else node
    return out if isinstance(out.get("properties", {}), dict) else {}


@dataclass
class Selection:
    """How a discriminator's values select branches: ``cases`` maps a JSON-encoded value to
    a branch's index (``targets`` holds each branch's ``$ref``, or ``None``, mapping targets
    the combination does not list appended), ``shared`` the values several branches fix."""

    name: str
    targets: list[str | None]
    cases: dict[str, int] = field(default_factory=dict)
    shared: set[str] = field(default_factory=set)
    #: Indexes of the combination's branches no value selects.
    unselectable: list[int] = field(default_factory=list)


def selection(doc: Document, schema: dict[str, Any], combo: str) -> Selection | None:
    """How ``schema``'s discriminator selects among its ``combo`` branches (``None``: it
    has none)."""
    found = discriminator_of(schema)
    if found is None or not isinstance(schema.get(combo), list):
        return None
    name, mapping = found
    raw = schema[combo]
    out = Selection(name, [b.get("$ref") if isinstance(b, dict) else None for b in raw])
    for index, ref in enumerate(out.targets):  # the schema's name: always accepted
        if isinstance(ref, str):
            out.cases[json.dumps(ref.rsplit("/", 1)[-1])] = index
    tagged: dict[str, set[int]] = {}
    for index, branch in enumerate(raw):
        for value in branch_tags(doc, branch, name) or ():
            tagged.setdefault(json.dumps(value, sort_keys=True), set()).add(index)
    for value, indexes in tagged.items():
        if len(indexes) == 1:
            out.cases[value] = indexes.pop()
        else:
            out.shared.add(value)
            out.cases.pop(value, None)
    for value, target in mapping.items():
        if target not in out.targets:
            out.targets.append(target)
        out.cases[json.dumps(value)] = out.targets.index(target)
    chosen = set(out.cases.values()).union(*(tagged[v] for v in out.shared))
    out.unselectable = [i for i in range(len(raw)) if i not in chosen]
    return out
