"""The built-in variants, loaded on first use: ``get_variant("phantom")``."""

from __future__ import annotations

import importlib

from ..variant import Variant

__all__ = ["BUILTIN_VARIANTS", "SEED_VARIANTS", "UnknownVariant", "get_variant", "variant_names"]

#: Variant name -> module under ``pytest_idempotency.providers``.
BUILTIN_VARIANTS: dict[str, str] = {
    "generic": "generic",
    "moda": "moda",
    "whet": "whet",
    "phantom": "phantom",
    "letmepost": "letmepost",
    "stripe": "stripe",
    "ietf": "ietf",
}
#: The four providers documented by the seed pages.
SEED_VARIANTS: tuple[str, ...] = ("moda", "whet", "phantom", "letmepost")

_registered: dict[str, Variant] = {}


class UnknownVariant(LookupError):
    """A variant name nobody registered."""


def _check_registration(variant: object, replace: object) -> None:
    """A ``TypeError`` naming the fix when ``variant`` is not a :class:`Variant` (a name, say)
    or ``replace`` is not a bool."""
    if not isinstance(variant, Variant):
        name = variant if isinstance(variant, str) else "acme"
        hint = (
            f"; to serve the built-in {variant!r}, choose it by name (variant={variant!r})"
            if isinstance(variant, str) and variant in BUILTIN_VARIANTS
            else ""
        )
        raise TypeError(
            f"register_variant() takes a Variant, not {type(variant).__name__} "
            f"{variant!r:.60}: build one first, e.g. register_variant(Variant(name="
            f"{name!r:.40}, policy=..., routes=...)), or a copy of another: "
            f"dataclasses.replace(get_variant('generic'), name=...){hint}"
        )
    if not isinstance(replace, bool):
        raise TypeError(f"register_variant(replace=...) takes True or False, not {replace!r:.60}")


def register_variant(variant: Variant, *, replace: bool = False) -> Variant:
    """Make ``variant`` selectable by name (marker, option, standalone server)."""
    _check_registration(variant, replace)
    if not replace and (variant.name in _registered or variant.name in BUILTIN_VARIANTS):
        raise ValueError(
            f"a variant named {variant.name!r} exists; pick another name or pass replace=True"
        )
    _registered[variant.name] = variant
    return variant


def variant_names() -> list[str]:
    """Every selectable name: built-in ones first, then registered ones."""
    return [*BUILTIN_VARIANTS, *(n for n in _registered if n not in BUILTIN_VARIANTS)]


def get_variant(name: str) -> Variant:
    """The variant called ``name``."""
    if name in _registered:
        return _registered[name]
    module = BUILTIN_VARIANTS.get(name)
    if module is None:
        raise UnknownVariant(
            f"unknown idempotency variant {name!r}; choose one of {', '.join(variant_names())} "
            "or register your own with pytest_idempotency.register_variant()"
        )
    variant: Variant = importlib.import_module(f"{__name__}.{module}").VARIANT
    return variant
