"""Request fingerprints: none, raw body bytes, or canonical parameters."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from .jsontext import encoder

__all__ = [
    "canonical_params",
    "fingerprint",
    "form_pairs",
    "loads_strict_json",
    "parse_body",
    "repeated_member",
]


def parse_body(body: bytes, content_type: str) -> Any:
    """Parse a JSON or form-encoded body into plain Python data.

    Returns ``None`` for an empty body; raises ``ValueError`` for a body that claims to be
    JSON or form data and is not.
    """
    if not body:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("the form body is not UTF-8") from exc
        return _nest_form(parse_qsl(text, keep_blank_values=True, strict_parsing=False))
    try:
        data = loads_strict_json(body)
    except RecursionError:
        raise ValueError(_too_deep()) from None
    except (UnicodeDecodeError, ValueError) as exc:
        if "integer string conversion" in str(exc):  # Python's own limit, in its own words
            raise ValueError(
                "the body holds an integer of more than 4,300 digits; send a smaller number"
            ) from None
        raise ValueError(f"the body is not valid JSON ({exc})") from exc
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
        raise ValueError(_too_deep())
    return data


def repeated_member(body: bytes, name: str) -> list[Any] | None:
    """Every value of member ``name`` of the JSON object ``body`` when the object names it
    more than once (``None`` otherwise). The body is parsed again only when its bytes could
    name it twice (the quoted name twice, or a ``\\u`` escape that could spell it)."""
    quoted = f'"{name}"'.encode()
    if body.count(quoted) < 2 and b"\\u" not in body:
        return None
    objects: list[list[tuple[str, Any]]] = []

    def keep(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        objects.append(pairs)
        return dict(pairs)

    try:
        text = body.decode("utf-8", "surrogatepass")
        top = json.loads(text, object_pairs_hook=keep)
    except (ValueError, RecursionError):
        return None
    if not isinstance(top, dict) or not objects:
        return None
    values = [value for member, value in objects[-1] if member == name]  # the outermost
    return values if len(values) > 1 else None


#: Deepest nesting of arrays and objects a body may have (chosen: real JSON APIs refuse deep
#: nesting, and every layer that walks a body would otherwise have to guard its recursion).
MAX_DEPTH = 64


def _too_deep() -> str:
    return f"the body nests arrays or objects more than {MAX_DEPTH} levels deep; flatten it"


def _depth(data: Any) -> int:
    """How deeply arrays and objects nest in ``data`` (without recursion)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads_strict_json(data: bytes | str) -> Any:
    """``json.loads`` that refuses what RFC 8259 does not allow (``NaN``, ``Infinity``) and
    numbers that overflow to infinity (``1e999``)."""
    if isinstance(data, (bytes, bytearray)):
        # An object or array whose second byte is not NUL is UTF-8 (what detect_encoding says)
        utf8 = data[:1] in (b"{", b"[") and data[1:2] != b"\x00"
        data = data.decode("utf-8" if utf8 else json.detect_encoding(data), "surrogatepass")
    elif data.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", data, 0)
    return _decode(data)


def _decode(text: str) -> Any:
    """``_STRICT_DECODER.decode(text)``, calling its scanner directly (same answers, same
    errors)."""
    start = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    try:
        value, end = _SCAN(text, start)
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None
    end = _SPACE.match(text, end).end()  # type: ignore[union-attr]
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _not_json(text: str) -> Any:
    """``NaN`` and ``Infinity`` are Python's, not JSON (RFC 8259): refuse them."""
    raise ValueError(f"{text} is not a JSON number; send a finite number")


def _finite(text: str) -> float:
    """A number so large it overflows to infinity (``1e999``) is refused too."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:20]} is out of range; send a finite number")
    return value


#: One shared decoder (``json.loads`` with options builds a new one per call).
_STRICT_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)
_SCAN: Callable[[str, int], tuple[Any, int]] = _STRICT_DECODER.scan_once  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")  # json.decoder's WHITESPACE


def _nest_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``a[b]=1&c[]=2&c[]=3&e=6&e=7`` into nested dicts and lists: ``a[b]`` is an object
    (``d[0]`` too: ``{"0": ...}``, as Rack reads it), ``c[]`` is a list, and a plain name sent
    more than once is a list of its values (an OpenAPI form field with ``explode``; it used to
    keep the last value only)."""
    root: dict[str, Any] = {}
    repeated: set[int] = set()  # the lists made of a repeated plain name, by id
    for name, value in pairs:
        head, bracket, rest = name.partition("[")
        parts = [head, *rest[:-1].split("][")] if bracket and rest.endswith("]") else [name]
        if len(parts) > MAX_DEPTH:
            raise ValueError(
                f"the form field {name[:60]!r} nests more than {MAX_DEPTH} levels deep; flatten it"
            )
        node = root
        for index, part in enumerate(parts[:-1]):
            if parts[index + 1] == "" and index + 2 == len(parts):
                items = node.get(part)
                if not isinstance(items, list):
                    items = node[part] = []
                items.append(value)
                break
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        else:
            _set_field(node, parts[-1], value, repeated)
    return root


def _set_field(node: dict[str, Any], name: str, value: str, repeated: set[int]) -> None:
    """``name=value`` into ``node``; a plain name seen again makes (or grows) a list."""
    previous = node.get(name)
    if isinstance(previous, str):
        values = node[name] = [previous, value]
        repeated.add(id(values))
    elif isinstance(previous, list) and id(previous) in repeated:
        previous.append(value)
    else:
        node[name] = value


def form_pairs(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe-style form encoding, the inverse of the parsing above: nested dicts as ``a[b]``,
    lists as ``a[0]``, booleans as ``true``/``false``."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        full = f"{prefix}[{name}]" if prefix else str(name)
        if isinstance(value, Mapping):
            pairs.extend(form_pairs(value, full))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs.extend(form_pairs(item, f"{full}[{index}]"))
                else:
                    pairs.append((f"{full}[{index}]", _scalar(item)))
        else:
            pairs.append((full, _scalar(value)))
    return pairs


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def canonical_params(data: Any) -> str:
    """A canonical text for parsed parameters: equal parameters give equal text."""
    return _CANONICAL(data)


_CANONICAL = encoder(sort_keys=True, ensure_ascii=False, default=str)


def fingerprint(
    mode: str,
    body: bytes,
    content_type: str,
    *,
    method: str = "",
    path: str = "",
    include_route: bool = False,
    parsed: tuple[Any] | None = None,
) -> str | None:
    """The fingerprint of one request under a policy's ``fingerprint`` mode.

    ``none`` gives ``None`` (never a mismatch); ``raw`` hashes the exact bytes (SHA-256);
    ``canonical`` hashes parsed JSON or form parameters so key order and spacing do not matter
    (a body that does not parse falls back to its raw bytes). ``parsed``, when given, is
    ``(data,)`` with the body already parsed by :func:`parse_body`.
    """
    if mode == "none":
        return None
    route = f"{method.upper()} {path}\n".encode() if include_route else b""
    if mode == "raw":
        return hashlib.sha256(route + body).hexdigest()[:16]
    if mode != "canonical":
        raise ValueError(f"unknown fingerprint mode {mode!r}; use 'none', 'raw' or 'canonical'")
    if parsed is None:
        try:
            parsed = (parse_body(body, content_type),)
        except ValueError:
            return hashlib.sha256(route + b"raw:" + body).hexdigest()[:16]
    # surrogatepass: a JSON string may hold a lone surrogate ("\\ud800"), still hashable
    text = canonical_params(parsed[0]).encode("utf-8", "surrogatepass")
    return hashlib.sha256(route + text).hexdigest()[:16]
