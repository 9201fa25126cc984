"""The request's fields a create copies into its answer: a form's text read as the number or
boolean the response property declares (``amount=2000`` answers ``"amount": 2000``), and a
field copied only where its value is valid under the response property's schema (a request's
``parent: {"id": "0"}`` does not replace the answer's richer folder object)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from .. import schemas
from ..jsontext import encoder
from .document import Document
from .instances import merged
from .params import literal
from .schema import response_schema

__all__ = ["Echo", "echo_of", "typed"]

Echo = Callable[[dict[str, Any]], dict[str, Any]]
_CANONICAL = encoder(sort_keys=True)
_DEEPEST = 8


def echo_of(
    doc: Document,
    props: dict[str, Any],
    names: frozenset[str],
    form: bool,
    request_props: dict[str, Any] | None = None,
) -> Echo:
    """What of a request's fields goes into the answer: those in ``names`` (converted when
    ``form``) whose value the answer's property ``props[name]`` takes. A JSON field whose
    request property is the answer's own (the same schema, as most are) is copied unchecked:
    the request's validation already checked it."""
    built = {n: functools.cache(functools.partial(response_schema, doc, props[n])) for n in names}
    asked = request_props or {}
    checked = {n for n in names if form or _rules(asked.get(n)) != _rules(props[n])}

    def echo(fields: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in fields.items():
            schema = built.get(name)
            if schema is None:
                continue
            if name in checked:
                value = typed(doc, props[name], value) if form else value
                if not verdicts.takes(name, schema, value):
                    continue
            out[name] = value
        return out

    verdicts = _Verdicts()
    return echo


class _Verdicts:
    """Whether a response property takes a value, remembered for the last few values of each
    property (clients send the same ``paymentMethod`` again and again: validating it against
    a schema of thirty branches each time would double a create's cost)."""

    _MOST = 256
    _LONGEST = 2048

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], bool] = {}

    def takes(self, name: str, schema: Callable[[], dict[str, Any]], value: Any) -> bool:
        try:
            text = _CANONICAL(value)
        except (TypeError, ValueError):
            return _takes(schema(), value)
        if len(text) > self._LONGEST:
            return _takes(schema(), value)
        known = self._known.get((name, text))
        if known is None:
            known = _takes(schema(), value)
            if len(self._known) >= self._MOST:
                with contextlib.suppress(RuntimeError, KeyError, StopIteration):  # a race: fine
                    self._known.pop(next(iter(self._known)))
            self._known[(name, text)] = known
        return known


#: Keywords that say what a value means, not which values are valid.
_NOTES = frozenset(
    {"description", "title", "example", "examples", "default", "deprecated", "externalDocs"}
)


def _rules(schema: Any) -> Any:
    """``schema`` without its notes (``description``, ``x-...``): two properties with the same
    rules take the same values, however they are described."""
    if not isinstance(schema, dict):
        return schema
    return {k: v for k, v in schema.items() if k not in _NOTES and not k.startswith("x-")}


def _takes(schema: dict[str, Any], value: Any) -> bool:
    try:
        return schemas.problem(schema, value) is None
    except Exception:  # a schema the validator cannot build: the value is copied as before
        return True


def typed(doc: Document, schema: Any, value: Any, depth: int = 0) -> Any:
    """``value`` (a form's text, or objects and arrays of it) as the type ``schema`` declares,
    where the text is a literal of it; anything else as it is."""
    node, _ = doc.deref(schema, "")
    if not isinstance(node, dict) or depth > _DEEPEST:
        return value
    if isinstance(node.get("allOf"), list):
        node = merged(doc, node)
    if isinstance(value, str):
        return _scalar(value, _kinds(doc, node))
    if isinstance(value, dict):
        props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        return {
            k: typed(doc, props[k], v, depth + 1) if k in props else v for k, v in value.items()
        }
    if isinstance(value, list) and "items" in node:
        return [typed(doc, node["items"], v, depth + 1) for v in value]
    return value


def _kinds(doc: Document, node: dict[str, Any]) -> set[str]:
    """The types ``node`` declares, its ``oneOf``/``anyOf`` branches' included."""
    kinds: set[str] = set()
    branches = [b for c in ("anyOf", "oneOf") if isinstance(node.get(c), list) for b in node[c]]
    for part in [node, *branches]:
        part, _ = doc.deref(part, "")
        kind = part.get("type") if isinstance(part, dict) else None
        kinds.update(kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else [])
    return kinds


def _scalar(text: str, kinds: set[str]) -> Any:
    return text if "string" in kinds else literal(text, kinds)
