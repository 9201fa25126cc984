"""Schemas of a document as standalone JSON Schemas, built when first used.

An operation's request schema is copied with every ``$ref`` it reaches inlined (recursive
ones stay references into ``$defs``), so the validator needs no registry and follows no
reference on the hot path. OpenAPI 3.0 schemas are
converted on the way (``nullable``, boolean ``exclusiveMinimum``/``exclusiveMaximum``);
3.1 schemas are JSON Schema 2020-12 already and are kept as they are. Request schemas drop
``readOnly`` properties from ``required`` (they only bind responses).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from .dialect import DIALECT
from .discriminators import discriminator_of, selection
from .document import Document

__all__ = [
    "LazySchema",
    "convert_30",
    "discriminator_of",
    "request_schema",
    "response_schema",
]

_DIALECT = DIALECT


_BOUNDS = (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum"))


def numeric_bounds(out: dict[str, Any]) -> dict[str, Any]:
    """3.0's boolean ``exclusiveMinimum``/``exclusiveMaximum`` in their numeric 2020-12 form
    (``out`` is changed and returned)."""
    for bound, exclusive in _BOUNDS:
        flag = out.get(exclusive)
        if isinstance(flag, bool):
            del out[exclusive]
            if flag and bound in out:
                out[exclusive] = out.pop(bound)
    return out


def _boolean_bounds(schema: dict[str, Any]) -> bool:
    return any(isinstance(schema.get(exclusive), bool) for _, exclusive in _BOUNDS)


def convert_30(schema: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI 3.0 schema object (not its children) as JSON Schema 2020-12."""
    out = {k: v for k, v in schema.items() if k not in ("nullable", "xml")}
    numeric_bounds(out)
    if schema.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif kind is None and "$ref" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


_ANNOTATIONS = frozenset(
    (
        "description",
        "title",
        "example",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
    )
)


#: Most objects and arrays a request or response schema may hold with its components copied in
#: (a validator that follows no ``$ref`` is faster; chosen: 3x the largest of the real
#: documents tried, Adyen's payments at 1,456). Past it (components that each use the next
#: twice double the copy at every level: 2**depth) every component is referred to instead,
#: once in ``$defs``, and the schema grows with the document, not exponentially.
MAX_EXPANDED = 5_000


def _tree_size(node: Any, sizes: dict[int, int]) -> int:
    """How many objects and arrays ``node`` holds written out as a tree (shared parts counted
    at each place), remembered by id: linear in the distinct parts, however they are shared."""
    if not isinstance(node, (dict, list)):
        return 0
    known = sizes.get(id(node))
    if known is None:
        children = node.values() if isinstance(node, dict) else node
        known = sizes[id(node)] = 1 + sum(_tree_size(child, sizes) for child in children)
    return known


class _Builder:
    """Copies a schema with its references inlined (a validator then follows no ``$ref``,
    which costs far more than the check); a reference met again inside its own expansion (a
    recursive schema), or met again when its copy is large, stays a ``$ref`` into ``$defs``."""

    def __init__(self, doc: Document, for_request: bool, share: bool = False) -> None:
        self.doc = doc
        self.for_request = for_request
        #: Refer to every component instead of copying it (a document whose copies would
        #: grow past :data:`MAX_EXPANDED`).
        self.share = share
        self.defs: dict[str, Any] = {}
        self.names: dict[str, str] = {}
        self.inlined: dict[str, Any] = {}
        self.expanding: set[str] = set()

    def name_of(self, ref: str) -> str:
        name = self.names.get(ref)
        if name is None:
            base = re.sub(r"[^A-Za-z0-9._-]", "_", ref.rsplit("/", 1)[-1]) or "def"
            name = base if base not in self.names.values() else f"{base}_{len(self.names)}"
            self.names[ref] = name
        return name

    def ref(self, ref: str) -> Any:
        if self.share:
            return self._shared(ref)
        if ref in self.inlined:
            return self.inlined[ref]
        if ref in self.expanding:  # recursive: refer to it, define it once expanded
            return {"$ref": f"#/$defs/{self.name_of(ref)}"}
        self.expanding.add(ref)
        built = self.node(self.doc.lookup(ref))
        self.expanding.discard(ref)
        self.inlined[ref] = built
        if ref in self.names:
            self.defs[self.names[ref]] = built
        return built

    def _shared(self, ref: str) -> Any:
        """Every reference a ``$ref`` into ``$defs``, each definition built once."""
        name = self.name_of(ref)
        if name not in self.defs:
            self.defs[name] = True  # a placeholder while it is built (a loop refers to it)
            self.defs[name] = self.node(self.doc.lookup(ref))
        return {"$ref": f"#/$defs/{name}"}

    def node(self, schema: Any) -> Any:
        if isinstance(schema, list):
            return [self.node(item) for item in schema]
        if not isinstance(schema, dict):
            return schema
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self.ref(ref)
            rest = {k: v for k, v in schema.items() if k != "$ref" and k not in _ANNOTATIONS}
            if self.doc.is_30 or not any(not k.startswith("x-") for k in rest):
                return target
            return {**self.node(rest), "allOf": [target]}
        if self.doc.is_30:
            schema = convert_30(schema)
        elif _boolean_bounds(schema):  # chosen: 3.1 documents that kept 3.0's boolean form
            schema = numeric_bounds(dict(schema))
        out = {
            k: self._child(k, v)
            for k, v in schema.items()
            if k not in _ANNOTATIONS and k != "discriminator" and not k.startswith("x-")
        }
        for combo in ("oneOf", "anyOf"):
            if isinstance(out.get(combo), list):
                by_discriminator = self._discriminated(schema, out, combo)
                out = by_discriminator or _dispatch(out, combo, schema.get("discriminator"))
        if isinstance(out.get("required"), list):
            out["required"] = self._required(schema, out["required"])
        return out

    def _required(self, schema: dict[str, Any], names: list[Any]) -> list[Any]:
        """``required`` once each (OpenAI's lists some twice, which 2020-12 refuses), for
        requests without the ``readOnly`` properties."""
        if all(isinstance(n, str) for n in names):  # anything else is refused by the checks
            names = list(dict.fromkeys(names))
        if not self.for_request:
            return names
        props = schema.get("properties") or {}
        return [n for n in names if not _read_only(self.doc, props.get(n))]

    def _discriminated(
        self, schema: dict[str, Any], out: dict[str, Any], combo: str
    ) -> dict[str, Any] | None:
        """A ``oneOf``/``anyOf`` with an OpenAPI ``discriminator`` as ``x-dispatch``: the
        body's ``propertyName`` value picks the branch (see :mod:`.discriminators`); a body
        without the property, or with a value that names no branch, is refused (the
        discriminator's rules); a value several branches fix is checked against them all."""
        chosen = selection(self.doc, schema, combo)
        if chosen is None:
            return None
        branches = list(out[combo])
        branches += [self.ref(str(t)) for t in chosen.targets[len(branches) :]]
        spec: dict[str, Any] = {
            "property": chosen.name,
            "cases": chosen.cases,
            "branches": branches,
            "fallback": {combo: out[combo]},
            "strict": True,
        }
        if chosen.shared:
            spec["shared"] = sorted(chosen.shared)
        if chosen.unselectable:
            spec["unselectable"] = chosen.unselectable
        return {**{k: v for k, v in out.items() if k != combo}, "x-dispatch": spec}

    def _child(self, name: str, value: Any) -> Any:
        if name in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
            return {k: self.node(v) for k, v in value.items()} if isinstance(value, dict) else value
        if name in (
            "example",
            "examples",
            "enum",
            "const",
            "default",
            "required",
        ) or name.startswith("x-"):
            return value
        return self.node(value)


def _tags(branch: Any, name: str) -> list[Any] | None:
    """The values ``branch`` allows for property ``name`` (its ``enum`` or ``const``)."""
    prop = (branch.get("properties") or {}).get(name) if isinstance(branch, dict) else None
    if not isinstance(prop, dict):
        return None
    if "const" in prop:
        return [prop["const"]]
    return list(prop["enum"]) if isinstance(prop.get("enum"), list) else None


def _dispatch(out: dict[str, Any], combo: str, discriminator: Any) -> dict[str, Any]:
    """A ``oneOf``/``anyOf`` whose alternatives each fix one property to disjoint values
    (``type: scheme`` for cards, ``ideal`` for iDEAL), as ``x-dispatch`` (see
    :mod:`.dialect`): a body naming its alternative is validated against that one only."""
    branches = out[combo]
    if len(branches) < 4 or not all(isinstance(b, dict) for b in branches):
        return out
    names = (
        [discriminator["propertyName"]]
        if isinstance(discriminator, dict) and "propertyName" in discriminator
        else list(branches[0].get("properties") or {})
    )
    for name in names:
        tags = [_tags(b, name) for b in branches]
        if any(t is None for t in tags):
            continue
        flat = [json.dumps(v, sort_keys=True) for t in tags for v in t or ()]
        if len(flat) != len(set(flat)):
            continue
        cases = {
            json.dumps(v, sort_keys=True): i for i, values in enumerate(tags) for v in values or ()
        }
        spec = {
            "property": name,
            "cases": cases,
            "branches": branches,
            "fallback": {combo: branches},
        }
        rest = {k: v for k, v in out.items() if k != combo}
        return {**rest, "x-dispatch": spec}
    return out


def _read_only(doc: Document, prop: Any) -> bool:
    if not isinstance(prop, dict):
        return False
    prop, _ = doc.deref(prop, "")
    return isinstance(prop, dict) and prop.get("readOnly") is True


def request_schema(doc: Document, schema: Any) -> dict[str, Any]:
    """``schema`` (a node of ``doc``) as a standalone JSON Schema 2020-12 for requests."""
    return _standalone(doc, schema, for_request=True)


def response_schema(doc: Document, schema: Any) -> dict[str, Any]:
    """``schema`` as a standalone JSON Schema for answers (``readOnly`` fields required)."""
    return _standalone(doc, schema, for_request=False)


def _standalone(doc: Document, schema: Any, for_request: bool) -> dict[str, Any]:
    builder = _Builder(doc, for_request=for_request)
    root = builder.node(schema)
    if _tree_size(root, {}) > MAX_EXPANDED:
        builder = _Builder(doc, for_request=for_request, share=True)
        root = builder.node(schema)
    if not isinstance(root, dict):
        root = {"allOf": [root]} if isinstance(root, bool) else {}
    out = {"$schema": _DIALECT, **root}
    if builder.defs:
        out["$defs"] = {**out.get("$defs", {}), **builder.defs}
    return out


class LazySchema(dict[str, Any]):
    """A JSON Schema that is built the first time anyone reads it (so loading a large
    document costs nothing for the operations a test never calls)."""

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._build: Callable[[], dict[str, Any]] | None = build

    def _fill(self) -> None:
        build = self._build
        if build is not None:
            self._build = None
            dict.update(self, build())

    def __getitem__(self, key: str) -> Any:
        self._fill()
        return dict.__getitem__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return dict.__contains__(self, key)

    def __eq__(self, other: object) -> bool:
        self._fill()
        return dict.__eq__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        self._fill()
        return dict.__repr__(self)

    def get(self, key: str, default: Any = None) -> Any:
        self._fill()
        return dict.get(self, key, default)

    def keys(self) -> Any:
        self._fill()
        return dict.keys(self)

    def items(self) -> Any:
        self._fill()
        return dict.items(self)

    def values(self) -> Any:
        self._fill()
        return dict.values(self)

    def copy(self) -> dict[str, Any]:
        self._fill()
        return dict(dict.items(self))
