"""JSON text on the request path: one encoder built once per option set.

``json.JSONEncoder.encode`` builds a new C encoder (and a Python closure) on every call; on a
small reply that is most of the cost. :func:`encoder` builds the C encoder once and keeps it.
It is reentrant (no per-call state): a structure that contains itself is not looked for, and
fails with ``RecursionError`` instead of ``ValueError`` as it nests past the recursion limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from json import encoder as _std
from typing import Any

__all__ = ["JSONText", "as_json", "encoder", "object_with_list"]


def encoder(
    *,
    sort_keys: bool = False,
    ensure_ascii: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> Callable[[Any], str]:
    """A compact (``","`` and ``":"``) encoder: ``encoder()(value)`` is ``json.dumps(value,
    separators=(",", ":"), ...)`` with the same options."""
    options = json.JSONEncoder(
        separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=ensure_ascii, default=default
    )
    make: Callable[..., Callable[[Any, int], list[str]]] | None = getattr(
        _std, "c_make_encoder", None
    )
    if make is None:  # pragma: no cover (CPython always has the C accelerator)
        return options.encode
    chunks = make(
        None,
        options.default,
        _std.encode_basestring_ascii if ensure_ascii else _std.encode_basestring,
        None,
        options.key_separator,
        options.item_separator,
        sort_keys,
        False,
        True,
    )

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


class JSONText(str):
    """JSON text already encoded: an answer that leaves as it is, never encoded again."""


_PLAIN = json.JSONEncoder(default=str, allow_nan=False)


def as_json(payload: Any) -> JSONText:
    """``payload`` as JSON text. A value JSON has no type for leaves as its text (``str()``),
    never a crash; NaN and the infinities, which JSON cannot carry, are a ``ValueError``."""
    if isinstance(payload, JSONText):
        return payload
    try:
        return JSONText(_PLAIN.encode(payload))
    except ValueError as exc:
        if "JSON compliant" not in str(exc):
            raise
        raise ValueError(
            "the answer holds a number JSON cannot carry (NaN or an infinity); set finite numbers"
        ) from None


def object_with_list(name: str, items: Iterable[Any], rest: dict[str, Any]) -> JSONText:
    """``{name: [*items], **rest}`` as JSON text, encoded item by item: a long list costs its
    text, not a whole structure of objects beside it."""
    parts = [as_json(item) for item in items]
    tail = as_json(rest)[1:]
    return JSONText(f"{{{json.dumps(name)}: [{', '.join(parts)}]{', ' if rest else ''}{tail}")
