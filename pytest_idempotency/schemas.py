"""Request bodies against a route's JSON Schema: one validator per schema, checked against its
metaschema once, whose regular expressions match with a time bound.

A schema's ``pattern`` comes from the API's author and the string it is matched against from
the client. Python's ``re`` can take exponential time on some patterns (``^(a+)+$`` against
``aaaa...b``) and holds the interpreter while it does, so one request would stall the whole
server. Here ``pattern``, ``patternProperties``, ``additionalProperties`` and (JSON Schema
2020-12 and 2019-09) ``unevaluatedProperties`` match with the ``regex`` library, bounded in time
(:mod:`pytest_idempotency.patterns`): past the bound the request is refused naming the
pattern, and the server goes on serving.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jsonschema
import regex
from jsonschema import _keywords, _legacy_keywords
from jsonschema.exceptions import SchemaError, ValidationError

from .patterns import PatternTimeout, bounded_search, compiled

__all__ = [
    "check_routes",
    "check_schema",
    "problem",
    "refusal",
    "schema_refusal",
    "validator",
]


def _pattern(v: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if v.is_type(instance, "string") and not bounded_search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    v: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not v.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if bounded_search(pattern, name):
                yield from v.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    v: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """jsonschema's ``additionalProperties``, its ``patternProperties`` matched bounded."""
    if not v.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        name
        for name in instance
        if name not in known and not any(bounded_search(p, name) for p in patterns)
    ]
    if v.is_type(additional, "object"):
        for name in extras:
            yield from v.descend(instance[name], additional, path=name)
    elif not additional and extras:  # jsonschema's own wording
        names = ", ".join(repr(name) for name in sorted(set(extras), key=str))
        one = len(set(extras)) == 1
        if "patternProperties" in schema:
            joined = ", ".join(repr(p) for p in sorted(patterns))
            verb = "does" if one else "do"
            yield ValidationError(f"{names} {verb} not match any of the regexes: {joined}")
        else:
            verb = "was" if one else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({names} {verb} unexpected)"
            )


def _unevaluated_properties(
    v: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """jsonschema's ``unevaluatedProperties`` (same wording), what ``patternProperties``
    evaluated found by bounded matches."""
    if not v.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(v, instance, schema)
    bad = [
        name
        for name in instance
        if name not in evaluated
        and not _valid(v.descend(instance[name], unevaluated, path=name, schema_path=name))
    ]
    if not bad:
        return
    verb = "was" if len(bad) == 1 else "were"
    if unevaluated is False:  # jsonschema's own wording
        names = ", ".join(repr(name) for name in sorted(bad, key=str))
        yield ValidationError(f"Unevaluated properties are not allowed ({names} {verb} unexpected)")
    else:
        names = ", ".join(repr(name) for name in bad)
        yield ValidationError(
            "Unevaluated properties are not valid under the given schema "
            f"({names} {verb} unevaluated and invalid)"
        )


def _unevaluated_properties_2019(
    v: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """jsonschema's 2019-09 ``unevaluatedProperties`` (its own rules and wording), what
    ``patternProperties`` evaluated found by bounded matches."""
    if not v.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys_2019(v, instance, schema)
    bad = [
        name
        for name in instance
        if name not in evaluated
        for _ in v.descend(instance[name], unevaluated, path=name, schema_path=name)
    ]
    if not bad:
        return
    if unevaluated is False:
        names, verb = _extras(sorted(bad, key=str))
        yield ValidationError(f"Unevaluated properties are not allowed ({names} {verb} unexpected)")
    else:
        names, verb = _extras(bad)
        yield ValidationError(
            "Unevaluated properties are not valid under the given schema "
            f"({names} {verb} unevaluated and invalid)"
        )


def _extras(names: list[Any]) -> tuple[str, str]:
    return ", ".join(repr(name) for name in names), "was" if len(names) == 1 else "were"


def _evaluated_keys_2019(v: Any, instance: Any, schema: Any) -> set[str]:
    """jsonschema's 2019-09 ``find_evaluated_property_keys_by_schema``, its patterns matched
    bounded."""
    if v.is_type(schema, "boolean"):
        return set()
    keys: set[str] = set()
    for resolved in _resolved_2019(v, schema):
        inner = v.evolve(schema=resolved.contents, _resolver=resolved.resolver)
        keys |= _evaluated_keys_2019(inner, instance, resolved.contents)
    for keyword in ("properties", "additionalProperties", "unevaluatedProperties"):
        value = schema.get(keyword)
        if value is True:
            keys |= set(instance)
        elif v.is_type(value, "object"):
            keys |= {name for name in value if name in instance}
    return keys | _applied_keys(v, instance, schema, _evaluated_keys_2019)


def _resolved_2019(v: Any, schema: Any) -> Iterator[Any]:
    """What the schema's ``$ref`` and ``$recursiveRef`` name."""
    if schema.get("$ref") is not None:
        yield v._resolver.lookup(schema["$ref"])
    if "$recursiveRef" in schema:
        yield _legacy_keywords.lookup_recursive_ref(v._resolver)


def _valid(errors: Iterator[ValidationError]) -> bool:
    return next(errors, None) is None


def _evaluated_keys(v: Any, instance: Any, schema: Any) -> set[str]:
    """The names of ``instance`` that ``schema`` evaluates (jsonschema's
    ``find_evaluated_property_keys_by_schema``, its patterns matched bounded)."""
    if v.is_type(schema, "boolean"):
        return set()
    keys: set[str] = set()
    for keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(keyword)
        if ref is not None:
            resolved = v._resolver.lookup(ref)
            inner = v.evolve(schema=resolved.contents, _resolver=resolved.resolver)
            keys |= _evaluated_keys(inner, instance, resolved.contents)
    properties = schema.get("properties")
    if v.is_type(properties, "object"):
        keys |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        subschema = schema.get(keyword)
        if subschema is not None:
            keys |= {k for k, value in instance.items() if _valid(v.descend(value, subschema))}
    return keys | _applied_keys(v, instance, schema, _evaluated_keys)


def _applied_keys(
    v: Any, instance: Any, schema: Any, recurse: Callable[[Any, Any, Any], set[str]]
) -> set[str]:
    """The names evaluated by ``patternProperties`` (matched bounded) and by the applicators
    (``dependentSchemas``, ``allOf``/``oneOf``/``anyOf``, ``if``/``then``/``else``), through
    ``recurse``: the same in 2019-09 and 2020-12."""
    keys: set[str] = set()
    for pattern in schema.get("patternProperties", ()):
        keys |= {name for name in instance if bounded_search(pattern, name)}
    for name, subschema in schema.get("dependentSchemas", {}).items():
        if name in instance:
            keys |= recurse(v, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, ()):
            if _valid(v.descend(instance, subschema)):
                keys |= recurse(v, instance, subschema)
    if "if" in schema:
        if v.evolve(schema=schema["if"]).is_valid(instance):
            keys |= recurse(v, instance, schema["if"])
            if "then" in schema:
                keys |= recurse(v, instance, schema["then"])
        elif "else" in schema:
            keys |= recurse(v, instance, schema["else"])
    return keys


_BOUNDED = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}


@functools.lru_cache(maxsize=16)
def _bounded_class(cls: Any) -> Any:
    bounded = dict(_BOUNDED)
    own = cls.VALIDATORS.get("unevaluatedProperties")
    if own is _keywords.unevaluatedProperties:  # 2020-12's (the OpenAPI 3.1 dialect)
        bounded["unevaluatedProperties"] = _unevaluated_properties
    elif own is _legacy_keywords.unevaluatedProperties_draft2019:
        bounded["unevaluatedProperties"] = _unevaluated_properties_2019
    return jsonschema.validators.extend(cls, bounded)


def check_schema(schema: Mapping[str, Any]) -> None:
    """Refuse a schema its metaschema refuses, or whose patterns do not compile
    (:class:`SchemaError`, with where)."""
    jsonschema.validators.validator_for(schema).check_schema(schema)
    for where, pattern in _patterns(schema, ""):
        try:
            compiled(pattern)
        except (regex.error, OverflowError, RecursionError, TypeError) as exc:
            raise SchemaError(
                f"{where or '/'}: {pattern[:80]!r} is not a usable pattern ({exc})"
            ) from None


def _patterns(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every ``pattern`` value and ``patternProperties`` key under ``node`` (JSON pointer)."""
    stack = [(node, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("pattern"), str):
                yield f"{at}/pattern", item["pattern"]
            properties = item.get("patternProperties")
            if isinstance(properties, dict):
                yield from ((f"{at}/patternProperties", key) for key in properties)
            stack.extend((value, f"{at}/{key}") for key, value in item.items())
        elif isinstance(item, list):
            stack.extend((value, f"{at}/{index}") for index, value in enumerate(item))


#: Validators by schema object (kept with the schema, so an id is never reused while cached).
_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def validator(schema: Mapping[str, Any]) -> Any:
    """A validator of ``schema`` (checked first, :class:`SchemaError`) whose patterns match
    bounded; made once per schema object."""
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    check_schema(schema)
    made = _bounded_class(jsonschema.validators.validator_for(schema))(schema)
    if len(_VALIDATORS) >= 4096:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, made)
    return made


def problem(schema: Mapping[str, Any], data: Any) -> tuple[str, str] | None:
    """``(where, message)`` of the error that best explains why ``data`` breaks ``schema``,
    or ``None``; a pattern that backtracks without end, or a schema that refers to itself
    without end, is such an error too."""
    try:
        error = _best_match(validator(schema).iter_errors(data))
    except PatternTimeout as exc:
        return "(body)", str(exc)
    except RecursionError:
        return "(body)", (
            "the schema refers to itself without end (a $ref cycle through allOf, anyOf or "
            "oneOf); fix the schema"
        )
    if error is None:
        return None
    return "/".join(str(p) for p in error.absolute_path) or "(body)", error.message


def _best_match(errors: Iterable[ValidationError]) -> ValidationError | None:
    """jsonschema's ``best_match``, except that in a ``oneOf``/``anyOf`` the body picked one
    branch of (the only one whose ``const``/``enum`` fields, a discriminator such as
    ``type``, and whose type it matches) the answer is that branch's best error: "'iban' is
    a required property" says what to fix where "not valid under any of the given schemas",
    or another branch's error, does not."""
    relevance = jsonschema.exceptions.relevance
    best = max(errors, key=relevance, default=None)
    while best is not None and best.context:
        branch = _chosen_branch(best)
        if branch is not None:
            best = max(branch, key=relevance)
            continue
        smallest = heapq.nsmallest(2, best.context, key=relevance)
        if len(smallest) == 2 and relevance(smallest[0]) == relevance(smallest[1]):
            return best
        best = smallest[0]
    return best


def _chosen_branch(error: ValidationError) -> list[ValidationError] | None:
    if error.validator not in ("oneOf", "anyOf"):
        return None
    branches: dict[Any, list[ValidationError]] = {}
    for inner in error.context:
        branches.setdefault(inner.relative_schema_path[0], []).append(inner)
    chosen = [errors for errors in branches.values() if not any(map(_rules_out, errors))]
    return chosen[0] if len(chosen) == 1 else None


def _rules_out(error: ValidationError) -> bool:
    """Whether ``error`` shows the body is not meant for this branch at all: a field's
    ``const``/``enum`` does not match, or the body is not of the branch's type."""
    depth = len(error.relative_path)
    return (depth == 1 and error.validator in ("const", "enum")) or (
        depth == 0 and error.validator == "type"
    )


def check_routes(routes: Iterable[Any]) -> None:
    """Make each route's validator now: a schema that is no usable JSON Schema is refused
    when the fake takes the variant (``ValueError`` naming the route), not at its first
    request."""
    for route in routes:
        if route.schema is not None:
            refused = schema_refusal(route.spec, route.schema)
            if refused is not None:
                raise ValueError(f"{refused[0]}; {refused[1]}")


def schema_refusal(spec: str, schema: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(problem, fix)`` when ``schema`` (route ``spec``'s) is no usable JSON Schema or nests
    too deep to check, else ``None`` (its validator is then made)."""
    try:
        validator(schema)
    except SchemaError as exc:
        problem, _, fix = str(refusal(spec, exc)).rpartition("; ")
        return problem, fix
    except RecursionError:
        return f"the schema of route {spec!r} nests too deep to check", "flatten it"
    return None


def refusal(spec: str, exc: SchemaError) -> ValueError:
    """The error for a route whose schema is not a usable JSON Schema, naming where."""
    where = "/" + "/".join(str(p) for p in exc.path) if exc.path else ""
    return ValueError(
        f"the schema of route {spec!r} is not a valid JSON Schema: {exc.message[:300]}"
        f"{f' (at {where})' if where else ''}; fix the schema"
    )
