"""The shape of the parts of a document the reader reads, checked where each is read: the
``info`` object, parameter lists and parameter objects, each response and its ``content``,
named examples, ``operationId``. A part of the wrong type is refused naming its JSON pointer,
never an ``AttributeError`` later."""

from __future__ import annotations

from typing import Any

from .document import Document
from .errors import pointer

__all__ = ["check_info", "check_parameters", "check_responses"]

_IN = ("query", "header", "path", "cookie")
_PARAM_FIX = "write parameters as [{name: id, in: path, required: true, schema: {type: string}}]"


_KINDS: dict[type, str] = {dict: "object", list: "array", str: "string"}


def _kind(value: Any) -> str:
    """The JSON name of ``value``'s type."""
    return _KINDS.get(type(value)) or type(value).__name__


def check_info(doc: Document) -> None:
    """``info`` is an object whose ``title`` and ``version`` are text."""
    info = doc.data.get("info")
    if info is None:
        return
    if not isinstance(info, dict):
        raise doc.error(
            "/info",
            f"info must be an object (got {_kind(info)} {info!r:.40})",
            "write info: {title: Orders API, version: '1.0'}",
        )
    for name in ("title", "version"):
        value = info.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (str, int, float))
        ):
            raise doc.error(
                pointer("info", name),
                f"{name} must be a string (got {_kind(value)})",
                f"write {name}: as text, e.g. {name}: '1.0'",
            )


def check_parameters(doc: Document, holder: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The parameter objects of a path item or an operation (``$ref``s followed), each an
    object with a string ``name``, an ``in`` of query, header, path or cookie and, when
    given, a ``schema`` object and a boolean ``required``."""
    raw = holder.get("parameters")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise doc.error(
            where + "/parameters", f"parameters must be an array (got {_kind(raw)})", _PARAM_FIX
        )
    out: list[dict[str, Any]] = []
    for index, entry in enumerate(raw):
        here = where + pointer("parameters", index)
        param, _ = doc.deref(entry, here)
        _check_parameter(doc, param, here)
        out.append(param)
    return out


def _check_parameter(doc: Document, param: Any, where: str) -> None:
    if not isinstance(param, dict):
        raise doc.error(where, f"a parameter must be an object (got {_kind(param)})", _PARAM_FIX)
    if not isinstance(param.get("name"), str) or not param["name"]:
        raise doc.error(where + "/name", "a parameter needs a string name", _PARAM_FIX)
    if param.get("in") not in _IN:
        raise doc.error(
            where + "/in",
            f"a parameter is in query, header, path or cookie (got {param.get('in')!r:.40})",
            _PARAM_FIX,
        )
    if "required" in param and not isinstance(param["required"], bool):
        raise doc.error(where + "/required", "required must be true or false", _PARAM_FIX)
    schema = param.get("schema")
    if schema is not None and not isinstance(schema, (dict, bool)):
        raise doc.error(
            where + "/schema",
            f"a parameter's schema must be an object (got {_kind(schema)})",
            _PARAM_FIX,
        )


def check_responses(doc: Document, op: dict[str, Any], where: str) -> None:
    """Each response is an object (after its ``$ref``), its ``content`` an object of media
    type objects, their ``examples`` objects of example objects; ``operationId`` is text."""
    if "operationId" in op and not isinstance(op["operationId"], str):
        raise doc.error(
            where + "/operationId",
            f"operationId must be a string (got {_kind(op['operationId'])})",
            "write operationId: createThing",
        )
    for code, raw in (op.get("responses") or {}).items():
        here = where + pointer("responses", str(code))
        response, _ = doc.deref(raw, here)
        if not isinstance(response, dict):
            raise doc.error(
                here,
                f"a response must be an object (got {_kind(response)} {response!r:.40})",
                "write e.g. '200': {description: ok, content: {application/json: {schema: ...}}}",
            )
        _check_content(doc, response.get("content"), here + "/content")


def _check_content(doc: Document, content: Any, where: str) -> None:
    if content is None:
        return
    if not isinstance(content, dict):
        raise doc.error(
            where, f"content must be an object of media types (got {_kind(content)})", _MEDIA_FIX
        )
    for media_type, media in content.items():
        here = where + pointer(str(media_type))
        if not isinstance(media, dict):
            raise doc.error(here, "a media type must be an object", _MEDIA_FIX)
        examples = media.get("examples", {})
        if not isinstance(examples, dict):
            raise doc.error(
                here + "/examples", "examples must be an object of named examples", _MEDIA_FIX
            )
        for name, raw in examples.items():
            example, _ = doc.deref(raw, here + pointer("examples", str(name)))
            if not isinstance(example, dict):
                raise doc.error(
                    here + pointer("examples", str(name)),
                    f"an example must be an object with its value under value (got {_kind(example)})",
                    "write examples: {one: {value: {...}}}",
                )


_MEDIA_FIX = "write e.g. application/json: {schema: ..., examples: {one: {value: ...}}}"
