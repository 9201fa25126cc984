"""The JSON Schema dialect of request schemas built from documents: Draft 2020-12 plus one
keyword, ``x-dispatch``, that checks a ``oneOf``/``anyOf`` whose alternatives each fix one
property to disjoint values (Adyen's 39 payment methods, each with its ``type``) by looking
the body's value up, instead of trying every alternative. The verdict is the same; a body
without the property, or with a value no alternative names, gets the original keyword, but
under an OpenAPI ``discriminator`` (``strict``), which requires the property and a value
that names a branch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.validators import Draft202012Validator, create

__all__ = ["DIALECT", "Validator"]

#: ``$schema`` of the built schemas; ``jsonschema.validators.validator_for`` finds
#: :data:`Validator` by it.
DIALECT = "urn:pytest-idempotency:openapi-request-schema"

_META = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": DIALECT,
    "$ref": "https://json-schema.org/draft/2020-12/schema",
}


def _dispatch(validator: Any, spec: dict[str, Any], instance: Any, schema: Any) -> Iterator[Any]:
    name = spec["property"]
    if validator.is_type(instance, "object") and name in instance:
        case = json.dumps(instance[name], sort_keys=True)
        index = spec["cases"].get(case)
        if index is not None:
            yield from validator.descend(instance, spec["branches"][index], schema_path=index)
            return
        if case in spec.get("shared", ()):  # a value several branches fix: all are tried
            yield from validator.descend(instance, spec["fallback"], schema_path="fallback")
            return
        if spec.get("strict"):  # an OpenAPI discriminator: the value must name a branch
            names = ", ".join(
                repr(json.loads(c)) for c in [*spec["cases"], *spec.get("shared", ())]
            )
            yield ValidationError(
                f"{instance[name]!r} is not one of the values of the discriminator {name!r}: "
                f"{names}",
                validator="enum",
                path=[name],
            )
            return
    elif spec.get("strict") and validator.is_type(instance, "object"):
        yield ValidationError(f"{name!r} is a required property", validator="required")
        return
    yield from validator.descend(instance, spec["fallback"], schema_path="fallback")


Validator: Any = create(
    meta_schema=_META,
    validators={**Draft202012Validator.VALIDATORS, "x-dispatch": _dispatch},
    type_checker=Draft202012Validator.TYPE_CHECKER,
    format_checker=Draft202012Validator.FORMAT_CHECKER,
    id_of=Draft202012Validator.ID_OF,
    version="pytest-idempotency-openapi",
)
