"""Schemas of a document as standalone JSON Schemas, built when first used.

An operation's request schema is copied with every ``$ref`` it reaches moved under ``$defs``
(cycles stay references), so the validator needs no registry. OpenAPI 3.0 schemas are
converted on the way (``nullable``, boolean ``exclusiveMinimum``/``exclusiveMaximum``);
3.1 schemas are JSON Schema 2020-12 already and are kept as they are. Request schemas drop
``readOnly`` properties from ``required`` (they only bind responses).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from .document import Document

__all__ = ["LazySchema", "convert_30", "request_schema"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def convert_30(schema: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI 3.0 schema object (not its children) as JSON Schema 2020-12."""
    out = {k: v for k, v in schema.items() if k not in ("nullable", "discriminator", "xml")}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        flag = out.get(exclusive)
        if isinstance(flag, bool):
            del out[exclusive]
            if flag and bound in out:
                out[exclusive] = out.pop(bound)
    if schema.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif kind is None and "$ref" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


class _Builder:
    def __init__(self, doc: Document, for_request: bool) -> None:
        self.doc = doc
        self.for_request = for_request
        self.defs: dict[str, Any] = {}
        self.names: dict[str, str] = {}

    def ref(self, ref: str) -> str:
        name = self.names.get(ref)
        if name is None:
            base = re.sub(r"[^A-Za-z0-9._-]", "_", ref.rsplit("/", 1)[-1]) or "def"
            name = base if base not in self.defs else f"{base}_{len(self.defs)}"
            self.names[ref] = name
            self.defs[name] = True  # a placeholder while the target is converted (cycles)
            self.defs[name] = self.node(self.doc.lookup(ref))
        return f"#/$defs/{name}"

    def node(self, schema: Any) -> Any:
        if isinstance(schema, list):
            return [self.node(item) for item in schema]
        if not isinstance(schema, dict):
            return schema
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = {"$ref": self.ref(ref)}
            if self.doc.is_30:
                return target
            return {**{k: self.node(v) for k, v in schema.items() if k != "$ref"}, **target}
        if self.doc.is_30:
            schema = convert_30(schema)
        out = {k: self._child(k, v) for k, v in schema.items()}
        if self.for_request and isinstance(out.get("required"), list):
            props = schema.get("properties") or {}
            out["required"] = [n for n in out["required"] if not _read_only(self.doc, props.get(n))]
        return out

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


def _read_only(doc: Document, prop: Any) -> bool:
    if not isinstance(prop, dict):
        return False
    prop, _ = doc.deref(prop, "")
    return isinstance(prop, dict) and prop.get("readOnly") is True


def request_schema(doc: Document, schema: Any) -> dict[str, Any]:
    """``schema`` (a node of ``doc``) as a standalone JSON Schema 2020-12 for requests."""
    builder = _Builder(doc, for_request=True)
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
