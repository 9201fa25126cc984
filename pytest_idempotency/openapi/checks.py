"""Load-time checks of the schemas an operation uses: each request and response schema, and
every schema a ``$ref`` of theirs reaches (once each), must be valid JSON Schema 2020-12
(OpenAPI 3.0 schemas after their conversion): each keyword's value is checked the way the
2020-12 metaschema checks it, so a bad schema is refused naming its place,
never a ``SchemaError`` at request time."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import regex

from ..patterns import PatternTooLarge, compiled
from .cycles import cycle_errors
from .document import Document
from .errors import DescriptionError, pointer
from .forms import form_media
from .keywords import keyword_problem
from .limits import MAX_CHARS, MAX_ITEMS
from .operations import Operation, json_media
from .schema import _Builder

__all__ = ["schema_errors"]


class _Shallow(_Builder):
    """Converts one schema without following its references (it notes them instead)."""

    def __init__(self, doc: Document) -> None:
        super().__init__(doc, for_request=False)
        self.seen: list[str] = []

    def ref(self, ref: str) -> Any:
        self.seen.append(ref)
        return {}


def schema_errors(doc: Document, ops: list[Operation]) -> list[DescriptionError]:
    """One error per invalid schema the operations use (their first problem each)."""
    errors: list[DescriptionError] = []
    pending: list[tuple[str, Any]] = []
    for op in ops:
        try:
            pending += list(_roots(doc, op))
        except DescriptionError as exc:
            errors.append(exc)
    done: set[str] = set()
    while pending:
        where, node = pending.pop()
        shallow = _Shallow(doc)
        converted = shallow.node(node)
        for path, problem, fix in itertools.islice(_problems(converted), 1):
            errors.append(doc.error(where + pointer(*path), problem, fix))
        for ref in shallow.seen:
            if ref not in done:
                done.add(ref)
                pending.append((doc.where_of(ref), doc.lookup(ref)))
    return errors + cycle_errors(doc, done)


def _roots(doc: Document, op: Operation) -> Iterator[tuple[str, Any]]:
    item_where = pointer("paths", op.template)
    item, _ = doc.followed(doc.data["paths"][op.template], item_where)
    for holder, where in ((item, item_where), (op.op, op.where)):
        for index, raw in enumerate(holder.get("parameters") or ()):
            param, _ = doc.deref(raw, where)
            if "schema" in param:
                yield where + pointer("parameters", index, "schema"), param["schema"]
    body, _ = doc.deref(op.op.get("requestBody") or {}, op.where)
    if isinstance(body, dict):
        yield from _media_schema(doc, body, op.where + "/requestBody")
    for code, response in (op.op.get("responses") or {}).items():
        response, _ = doc.deref(response, op.where)
        if isinstance(response, dict):
            yield from _media_schema(doc, response, op.where + pointer("responses", str(code)))


def _media_schema(doc: Document, holder: dict[str, Any], where: str) -> Iterator[tuple[str, Any]]:
    content = holder.get("content")
    media = json_media(content) or form_media(content)
    if isinstance(content, dict) and media is not None and "schema" in media:
        media_type = next(k for k, v in content.items() if v is media)
        yield where + pointer("content", media_type, "schema"), media["schema"]
    for media_type, entry in content.items() if isinstance(content, dict) else ():
        here = where + pointer("content", str(media_type))
        if not isinstance(entry, dict):
            raise doc.error(here, "a media type must be an object", _MEDIA_FIX)
        if not isinstance(entry.get("examples", {}), dict):
            raise doc.error(
                here + "/examples", "examples must be an object of named examples", _MEDIA_FIX
            )


_MEDIA_FIX = "write e.g. application/json: {schema: ..., examples: {one: {value: ...}}}"


_KINDS = frozenset(("array", "boolean", "integer", "null", "number", "object", "string"))
_SCHEMA = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "contentSchema",
)
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_BOUNDED = {"minLength": MAX_CHARS, "minItems": MAX_ITEMS, "minProperties": MAX_ITEMS}
_FIX = "correct the schema (see https://json-schema.org/draft/2020-12)"


def _problems(
    schema: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """``(path, problem, fix)`` for each keyword whose value the JSON Schema 2020-12
    metaschema refuses (the rules that keyword by keyword make it up, checked without the
    cost of running it: a metaschema run takes 20 times as long as loading Adyen's
    document)."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        yield path, f"a schema must be an object or a boolean (got {schema!r:.60})", _FIX
        return
    for key, value in schema.items():
        here = (*path, key)
        if key in _SCHEMA:
            yield from _problems(value, here)
        elif key in _SCHEMA_MAPS:
            if not isinstance(value, dict):
                yield here, f"{key} must be an object of schemas", _FIX
            elif isinstance(value.get("$ref"), str):
                yield (
                    (*here, "$ref"),
                    f"a $ref in place of the {key} object is not followed (it would be a "
                    "property named '$ref')",
                    "$ref the whole schema instead, e.g. allOf: [{$ref: ...}], or write the "
                    f"{key} inline",
                )
            else:
                for name, sub in value.items():
                    if key == "patternProperties" and not _compiles(name):
                        yield (
                            (*here, name),
                            f"the pattern {name!r} is not a regular expression",
                            "write a regular expression Python's re module compiles",
                        )
                    yield from _problems(sub, (*here, name))
        elif key in _SCHEMA_LISTS:
            if not isinstance(value, list) or not value:
                yield here, f"{key} must be a non-empty array of schemas", _FIX
            else:
                for index, sub in enumerate(value):
                    yield from _problems(sub, (*here, str(index)))
        else:
            yield from _keyword(key, value, here)


def _keyword(
    key: str, value: Any, here: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str, str]]:
    found = keyword_problem(key, value)
    if found is not None:
        yield (here, *found)
    elif key == "type":
        kinds = value if isinstance(value, list) else [value]
        if not kinds or any(k not in _KINDS for k in kinds):
            yield here, f"the type {value!r} is unknown", f"use one of {', '.join(sorted(_KINDS))}"
    elif key == "required" and not _names(value):
        yield (
            here,
            f"'required: {value!r:.80}' is not an array of distinct property names",
            "list the required property names, once each, in the object's own required array "
            "(required: [name]), not required: true on a property",
        )
    elif key == "pattern":
        if not _compiles(value):
            yield (
                here,
                f"the pattern {value!r} is not a regular expression",
                ("write a regular expression Python's re module compiles"),
            )
    elif key == "x-dispatch" and value.get("unselectable"):
        yield from _unselectable(value, here)
    elif key in _COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        yield here, f"{key} must be a non-negative integer (got {value!r})", _FIX
    elif key in _BOUNDED and value > _BOUNDED[key]:
        yield (
            here,
            f"{key} {value:,} is more than the fake builds (at most {_BOUNDED[key]:,})",
            f"lower {key} to at most {_BOUNDED[key]:,} (see docs/openapi.md, limits)",
        )
    elif key in _NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float))):
        yield here, f"{key} must be a number (got {value!r})", _FIX
    elif key == "enum" and not isinstance(value, list):
        yield here, f"enum must be an array (got {value!r:.60})", "list the allowed values"


def _unselectable(
    spec: dict[str, Any], here: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str, str]]:
    name, which = spec["property"], ", ".join(map(str, spec["unselectable"]))
    yield (
        (*here[:-1], "discriminator"),
        f"no value of the discriminator {name!r} can select branch {which} (counted from 0): "
        f"no mapping entry names it, it is not a $ref to a named schema, and it does not fix "
        f"{name!r} with const or enum",
        f"add it to discriminator.mapping ({{value: '#/components/schemas/Name'}}), $ref it "
        f"from components/schemas, or give it properties: {{{name}: {{const: value}}}}",
    )


def _names(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(n, str) for n in value)
        and len(set(value)) == len(value)
    )


def _compiles(pattern: Any) -> bool:
    """Whether ``pattern`` compiles as the fake's validator compiles it (``re`` for the
    metaschema's ``regex`` format, the ``regex`` library for matching)."""
    try:
        re.compile(pattern)
        compiled(pattern)
    except PatternTooLarge:  # valid, only too large to match here: where it is matched says so
        return True
    except (re.error, regex.error, TypeError, OverflowError, RecursionError):
        return False
    return True
