"""Generated ids that fit the id field's schema: an integer counter for integer ids, a UUID
for ``format: uuid``, and for strings with a ``pattern`` or a length, the first of
``pet_000001``, a pattern-shaped id (``^PT[0-9a-f]{32}$`` -> ``PT000...0001``) and a padded
id that the schema accepts, else the schema's own example (then every object gets it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .document import Document
from .instances import minimal_instance
from .limits import MAX_CHARS

__all__ = ["id_maker"]

#: ``^LITERAL[class]{n}$`` or ``^LITERAL\d{n}$``: the shape of most patterned ids.
_SHAPED = re.compile(r"\^?([A-Za-z0-9_.:-]*)(?:\[([^\]]+)\]|\\d)\{(\d+)\}\$?")


def id_maker(doc: Document, schema: Any) -> Callable[[str], Any] | None:
    """What turns a new id such as ``pet_000001`` into a value ``schema`` accepts (``None``:
    the id as it is)."""
    schema, _ = doc.deref(schema, "")
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind in ("integer", "number"):
        return _serial
    if schema.get("format") == "uuid":
        return lambda new_id: f"00000000-0000-4000-8000-{_serial(new_id):012d}"
    pattern, low, high = schema.get("pattern"), schema.get("minLength"), schema.get("maxLength")
    if kind not in (None, "string") or (pattern is None and low is None and high is None):
        return None
    fallback = minimal_instance(doc, schema)

    def make(new_id: str) -> Any:
        for candidate in (new_id, _shaped(pattern, new_id), _padded(new_id, low)):
            if candidate is not None and _fits(candidate, pattern, low, high):
                return candidate
        return fallback

    return make


def _serial(new_id: str) -> int:
    return int(new_id.rpartition("_")[2])


def _shaped(pattern: Any, new_id: str) -> str | None:
    match = _SHAPED.fullmatch(pattern) if isinstance(pattern, str) else None
    if match is None:
        return None
    literal, _, width = match.groups()
    if int(width) > MAX_CHARS:  # no id that long is built
        return None
    return literal + str(_serial(new_id)).zfill(int(width))


def _padded(new_id: str, low: Any) -> str | None:
    if not isinstance(low, int) or len(new_id) >= low:
        return None
    head, _, number = new_id.rpartition("_")
    return f"{head}_{number.zfill(low - len(head) - 1)}"


def _fits(value: str, pattern: Any, low: Any, high: Any) -> bool:
    if isinstance(low, int) and len(value) < low:
        return False
    if isinstance(high, int) and len(value) > high:
        return False
    return not isinstance(pattern, str) or re.search(pattern, value) is not None
