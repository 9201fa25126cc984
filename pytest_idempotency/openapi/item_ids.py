"""Generated ids that the collection's own item route takes back: the id fits the id field's
schema and the item route's path parameter schema (Twilio's ``^QE[0-9a-fA-F]{32}$``, a
``minLength``), so ``GET`` of a created id is never refused by the fake's parameter check."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import schemas
from .document import Document
from .ids import id_maker
from .regex_example import pattern_example
from .schema import request_schema, response_schema

__all__ = ["item_id_maker"]

Maker = Callable[[str], Any]


def item_id_maker(doc: Document, prop: Any, param: Any) -> Maker | None:
    """What turns a new id such as ``usa2p_000001`` into a value both the id field's schema
    ``prop`` and the item route's path parameter schema ``param`` take (either may be
    ``None``): the first that fits of the id field's own id, the parameter's and one built
    from either pattern with the serial number at its end."""
    own = id_maker(doc, prop) if prop is not None else None
    node, _ = doc.deref(param, "")
    if not _constrains(node):
        return own
    fits = _checker(doc, prop, node)
    makers = [own, id_maker(doc, node), *_serial_makers(doc, prop), *_serial_makers(doc, node)]

    def make(new_id: str) -> Any:
        first = own(new_id) if own is not None else new_id
        for maker in makers:
            value = maker(new_id) if maker is not None else new_id
            if value is not None and fits(value):
                return value
        return first

    return make


def _constrains(node: Any) -> bool:
    return isinstance(node, dict) and any(
        k in node for k in ("pattern", "minLength", "maxLength", "format", "enum", "type")
    )


def _checker(doc: Document, prop: Any, param: dict[str, Any]) -> Callable[[Any], bool]:
    answer = functools.cache(lambda: response_schema(doc, prop) if prop is not None else {})
    route = functools.cache(lambda: request_schema(doc, param))
    numeric = param.get("type") in ("integer", "number")

    def fits(value: Any) -> bool:
        text = str(value)
        sent: Any = int(text) if numeric and text.lstrip("-").isdigit() else text
        return _valid(answer(), value) and _valid(route(), sent)

    return fits


def _valid(schema: dict[str, Any], value: Any) -> bool:
    try:
        return schemas.problem(schema, value) is None
    except Exception:
        return False


def _serial_makers(doc: Document, schema: Any) -> list[Maker]:
    """An id from the pattern's example with the serial number written over its end
    (``QE000...0007``)."""
    node, _ = doc.deref(schema, "")
    pattern = node.get("pattern") if isinstance(node, dict) else None
    if not isinstance(pattern, str):
        return []
    low, high = node.get("minLength"), node.get("maxLength")
    base = pattern_example(
        pattern, low if isinstance(low, int) else 0, high if isinstance(high, int) else None
    )
    if base is None:
        return []
    text: str = base

    def over_end(new_id: str) -> str:
        number = new_id.rpartition("_")[2]
        return text[: max(len(text) - len(number), 0)] + number

    return [over_end, lambda new_id: text + new_id.rpartition("_")[2]]
