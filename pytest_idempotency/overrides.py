"""Policy overrides given as JSON values (``--set ttl=60``, the admin API's reset): each value is
checked against the :class:`~pytest_idempotency.policy.Policy` field's type and converted (lists
become tuples, objects become :class:`~pytest_idempotency.policy.Answer`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .policy import Policy, PolicyError, guessed
from .providers import get_variant, variant_names
from .variant import Variant

__all__ = ["apply_overrides", "coerce_policy_options", "load_variant"]


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({_describe(args[0])})"
        return "a list [" + ", ".join(_describe(a) for a in args) + "]"
    names = {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        type(None): "null",
    }
    if hint in names:
        return names[hint]
    return "an object"


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` (decoded JSON) as the type ``hint`` wants, or a :class:`PolicyError`."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        for arm in args:
            with contextlib.suppress(PolicyError):
                return _coerce(value, arm, where)
    elif origin is Literal:
        if value in args and isinstance(value, str):
            return value
    elif origin is tuple and isinstance(value, (list, tuple)):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) == len(args):
            return tuple(
                _coerce(v, a, f"{where}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
    elif origin is dict and isinstance(value, dict):
        return dict(value)
    elif hint is type(None) and value is None:
        return None
    elif hint in (bool, int, str) and isinstance(value, hint):
        if hint is bool or not isinstance(value, bool):
            return value
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif dataclasses.is_dataclass(hint) and isinstance(hint, type) and isinstance(value, dict):
        hints = get_type_hints(hint)
        unknown = sorted(set(value) - set(hints))
        if unknown:
            raise PolicyError(
                f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(hints)}"
            )
        fields = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in value.items()}
        try:
            return hint(**fields)
        except PolicyError as exc:  # Answer's own check: "Answer status must be ..."
            raise PolicyError(f"{where}.{str(exc).removeprefix('Answer ')}") from None
        except TypeError as exc:
            raise PolicyError(f"{where}: {exc}") from None
    raise PolicyError(f"{where} must be {_describe(hint)} (got {json.dumps(value)})")


def coerce_policy_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Policy options given as JSON values, converted to the field types (lists become
    tuples, objects :class:`~pytest_idempotency.policy.Answer`); unknown names and wrong
    types raise a :class:`~pytest_idempotency.policy.PolicyError` naming the fix."""
    hints = get_type_hints(Policy)
    known = [f.name for f in dataclasses.fields(Policy)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise PolicyError(
            f"unknown policy option(s) {guessed(unknown, known)}; known options: {', '.join(known)}"
        )
    return {name: _coerce(value, hints[name], name) for name, value in options.items()}


def apply_overrides(variant: Variant, overrides: Mapping[str, Any]) -> Variant:
    """``variant`` with policy fields overridden by JSON values (``{"ttl": 60}``): lists
    become tuples, objects become :class:`~pytest_idempotency.policy.Answer` where one is
    wanted. Raises :class:`~pytest_idempotency.policy.PolicyError` naming the fix."""
    if not overrides:
        return variant
    return variant.with_policy(**coerce_policy_options(overrides))


def load_variant(name: str, overrides: Mapping[str, Any] | None = None) -> Variant:
    """The variant called ``name`` with ``overrides``; any failure is a ``ValueError`` whose
    message names the fix."""
    if name not in variant_names():
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(variant_names())}")
    try:
        variant = get_variant(name)
    except Exception as exc:
        raise ValueError(f"variant {name!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    return apply_overrides(variant, overrides or {})
