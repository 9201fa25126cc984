"""What careless or hostile clients send, for every variant.

Each row is one bad request. It must get a clear, non-retryable answer (a 4xx in the variant's
own error envelope: never a 5xx, a crash or a hang), the server must go on serving, and a
response stored before the bad request must replay byte for byte afterwards.

Rows that only make sense for some variants (a missing credential where anonymous calls are
allowed, an empty body where none is required, ...) are left out for the others when the cases
are built, so every collected case runs.
"""

from __future__ import annotations

import http.client
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlencode

import jsonschema
import pytest
import requests
from werkzeug.datastructures import Headers

from pytest_idempotency import IdempotentAPI, Variant, get_variant, variant_names
from pytest_idempotency.app import ERROR_HEADER

TIMEOUT = 0.5
#: A fresh key per case, long enough for every variant (Whet wants 16-128 characters).
_keys = itertools.count(1)

Expect = Literal["reject", "too_large", "accept_or_reject", "at_most_once"]


@dataclass(frozen=True)
class Raw:
    """One request exactly as it goes on the wire (repeated headers and raw bytes allowed)."""

    method: str
    path: str
    headers: tuple[tuple[str, str | bytes], ...]
    body: bytes = b""

    def without(self, name: str) -> Raw:
        return replace(self, headers=tuple(h for h in self.headers if h[0].lower() != name.lower()))

    def with_header(self, name: str, value: str | bytes) -> Raw:
        return replace(self.without(name), headers=(*self.without(name).headers, (name, value)))


@dataclass(frozen=True)
class Row:
    name: str
    build: Callable[[IdempotentAPI, str], Raw]
    expect: Expect = "reject"
    applies: Callable[[Variant], bool] = field(default=lambda v: True)


# -- building requests -----------------------------------------------------------------------


def fresh_key(api: IdempotentAPI) -> str:
    return f"bad-input-case-{next(_keys):012d}"


def encode(api: IdempotentAPI, kwargs: dict[str, Any]) -> tuple[bytes, str]:
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode(), "application/json"
    return urlencode(kwargs["data"]).encode(), "application/x-www-form-urlencoded"


def good(
    api: IdempotentAPI, key: str | None, params: dict[str, Any] | None = None, **kw: Any
) -> Raw:
    """The variant's example operation, well formed, with ``key`` where the variant wants it."""
    method, path, example = api.variant.example
    kwargs = api.request_kwargs(example if params is None else params, key=key, **kw)
    body, content_type = encode(api, kwargs)
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != "content-type"}
    return Raw(method, path, (*headers.items(), ("Content-Type", content_type)), body)


def header_value(api: IdempotentAPI, key: str) -> str:
    """``key`` as the variant's key header carries it (quoted for Structured Fields)."""
    if api.policy.key_header is None:
        return key
    return api.headers(key)[api.policy.key_header]


def key_raw(api: IdempotentAPI, key: str | bytes) -> Raw:
    """A well-formed request whose key (possibly empty, long or non-ASCII) is sent as is."""
    policy = api.policy
    _, _, params = api.variant.example
    if policy.key_header is not None:
        raw = good(api, None)
        if isinstance(key, str) and policy.key_format == "sf-string":
            key = '"' + key + '"'
        elif isinstance(key, bytes) and policy.key_format == "sf-string":
            key = b'"' + key + b'"'
        return raw.with_header(policy.key_header, key)
    assert policy.key_field is not None
    text = key.decode() if isinstance(key, bytes) else key
    return good(api, None, {**params, policy.key_field: text})


def number_raw(api: IdempotentAPI, key: str, text: str) -> Raw:
    """The example with a numeric parameter (the first one, or ``amount``) set to ``text``."""
    _, _, params = api.variant.example
    name = next(
        (n for n, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)),
        "amount",
    )
    raw = good(api, key, {**params, name: "__NUMBER__"})
    if api.variant.body_encoding == "form":
        return replace(raw, body=raw.body.replace(b"__NUMBER__", text.encode()))
    return replace(raw, body=raw.body.replace(b'"__NUMBER__"', text.encode()))


def oversize(api: IdempotentAPI, key: str) -> Raw:
    limit = api.variant.max_body_bytes
    filler = b"a" * (limit + 1 - len(b'{"filler":""}'))
    return replace(good(api, key), body=b'{"filler":"' + filler + b'"}')


# -- applicability ---------------------------------------------------------------------------


def _example_route_rejects_empty_body(variant: Variant) -> bool:
    method, path, _ = variant.example
    route, _, _ = variant.find_route(method, path)
    if route is None or route.schema is None:
        return False
    validator = jsonschema.validators.validator_for(route.schema)(route.schema)
    return not validator.is_valid(None)


def _refuses(headers: list[tuple[str, str]]) -> Callable[[Variant], bool]:
    return lambda variant: variant.authenticate(Headers(headers)) is None


def _unknown_path(variant: Variant) -> bool:
    return variant.find_route("POST", "/no/such/route/anywhere") == (None, {}, False)


def _unknown_method(variant: Variant) -> bool:
    _, path, _ = variant.example
    return variant.find_route("PURGE", path)[0] is None


def _json(variant: Variant) -> bool:
    return variant.body_encoding == "json"


NON_ASCII_KEY = "ключ-идемпотентности-1"

ROWS: tuple[Row, ...] = (
    Row(
        "malformed_json",
        lambda api, key: replace(good(api, key), body=b'{"unterminated": ').with_header(
            "Content-Type", "application/json"
        ),
    ),
    Row(
        "non_utf8_body",
        lambda api, key: replace(
            good(api, key),
            body=b'{"name": "\xff\xfe\xfa"}' if _json(api.variant) else b"name=\xff\xfe\xfa",
        ),
    ),
    Row(
        "empty_body_where_one_is_required",
        lambda api, key: replace(good(api, key), body=b""),
        applies=_example_route_rejects_empty_body,
    ),
    Row("body_over_the_size_limit", oversize, expect="too_large"),
    Row(
        "content_length_not_a_number",
        lambda api, key: good(api, key).with_header("Content-Length", "abc"),
    ),
    Row(
        "content_length_negative",
        lambda api, key: good(api, key).with_header("Content-Length", "-5"),
    ),
    Row(
        "empty_key",
        lambda api, key: key_raw(api, ""),
        applies=lambda v: v.policy.key_min_length > 0,
    ),
    Row(
        "key_too_long",
        lambda api, key: key_raw(api, "k" * (api.policy.key_max_length + 1)),
    ),
    Row(
        "key_too_short",
        lambda api, key: key_raw(api, "k" * (api.policy.key_min_length - 1)),
        applies=lambda v: v.policy.key_min_length > 1,
    ),
    Row(
        "non_ascii_key",
        lambda api, key: key_raw(
            api, NON_ASCII_KEY.encode() if api.policy.key_header else NON_ASCII_KEY
        ),
        applies=lambda v: v.policy.key_problem(NON_ASCII_KEY) is not None,
    ),
    Row(
        "key_repeated_in_two_headers",
        lambda api, key: replace(
            good(api, key),
            headers=(
                *good(api, key).headers,
                (api.policy.key_header or "", header_value(api, key + "-again")),
            ),
        ),
        applies=lambda v: v.policy.key_header is not None,
    ),
    Row(
        "key_in_header_and_body",
        lambda api, key: good(
            api, None, {**api.variant.example[2], api.policy.key_field or "idempotency_key": key}
        ).with_header(api.policy.key_header or "Idempotency-Key", header_value(api, key + "-h")),
        expect="at_most_once",
    ),
    Row(
        "wrong_content_type",
        lambda api, key: replace(good(api, key), body=b"<thing><name>x</name></thing>").with_header(
            "Content-Type", "application/xml"
        ),
    ),
    Row(
        "missing_credentials",
        lambda api, key: good(api, key).without("Authorization"),
        applies=_refuses([]),
    ),
    Row(
        "basic_instead_of_bearer_credentials",
        lambda api, key: good(api, key).with_header("Authorization", "Basic dXNlcjpwYXNz"),
        applies=_refuses([("Authorization", "Basic dXNlcjpwYXNz")]),
    ),
    Row(
        "empty_bearer_credentials",
        lambda api, key: good(api, key).with_header("Authorization", "Bearer "),
        applies=_refuses([("Authorization", "Bearer ")]),
    ),
    Row(
        "unknown_route",
        lambda api, key: replace(good(api, key), path="/no/such/route/anywhere"),
        applies=_unknown_path,
    ),
    Row(
        "unknown_method",
        lambda api, key: replace(good(api, key), method="PURGE"),
        applies=_unknown_method,
    ),
    Row("number_nan_text", lambda api, key: number_raw(api, key, "NaN"), applies=_json),
    Row("number_infinity_text", lambda api, key: number_raw(api, key, "Infinity"), applies=_json),
    Row(
        "number_overflowing_to_infinity",
        lambda api, key: number_raw(api, key, "1e999"),
        applies=_json,
    ),
    Row(
        "number_with_5000_digits",
        lambda api, key: number_raw(api, key, "9" * 5000),
        applies=_json,
    ),
    Row(
        "number_1e308",
        lambda api, key: number_raw(api, key, "1e308"),
        expect="accept_or_reject",
    ),
    Row(
        "number_minus_2_pow_70",
        lambda api, key: number_raw(api, key, str(-(2**70))),
        expect="accept_or_reject",
    ),
    Row(
        "number_nan_as_form_text",
        lambda api, key: number_raw(api, key, "NaN"),
        expect="accept_or_reject",
        applies=lambda v: not _json(v),
    ),
)


def _variant_or_none(name: str) -> Variant | None:
    try:
        return get_variant(name)
    except Exception:  # a module that does not import fails in the fixture, loudly
        return None


def _cases() -> list[Any]:
    cases = []
    for name in variant_names():
        variant = _variant_or_none(name)
        for row in ROWS:
            if variant is None or row.applies(variant):
                cases.append(pytest.param(name, row, id=f"{name}-{row.name}"))
    return cases


# -- talking -----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return strict_json(self.body)


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def strict_json(body: bytes) -> Any:
    """RFC 8259 JSON only: ``NaN`` and ``Infinity`` are refused."""
    return json.loads(body, parse_constant=_no_constant)


def send(api: IdempotentAPI, raw: Raw) -> Answer:
    conn = http.client.HTTPConnection(api.server.host, api.server.port, timeout=TIMEOUT)
    try:
        conn.putrequest(raw.method, raw.path, skip_accept_encoding=True)
        for name, value in raw.headers:
            conn.putheader(name, value)
        if not any(name.lower() == "content-length" for name, _ in raw.headers):
            conn.putheader("Content-Length", str(len(raw.body)))
        conn.endheaders(raw.body)
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


def skeleton(value: Any) -> Any:
    """The keys of nested objects, without their values."""
    if isinstance(value, dict):
        return {k: skeleton(v) for k, v in value.items()}
    return None


def common(first: Any, *others: Any) -> Any:
    """The keys every one of the skeletons has (the envelope's fixed part)."""
    if not isinstance(first, dict):
        return None
    keys = [k for k in first if all(isinstance(o, dict) and k in o for o in others)]
    return {k: common(first[k], *(o[k] for o in others)) for k in keys}


def contains(big: Any, small: Any) -> bool:
    if not isinstance(small, dict):
        return True
    return isinstance(big, dict) and all(k in big and contains(big[k], v) for k, v in small.items())


def assert_variant_error(api: IdempotentAPI, answer: Answer) -> None:
    """A 4xx in the variant's own envelope, not the fake's internal-error answer."""
    __tracebackhide__ = True
    assert 400 <= answer.status < 500, (answer.status, answer.body)
    assert answer.headers.get(ERROR_HEADER) != "internal-error", answer.body
    shape = api.variant.error_shape
    references = [
        shape(400, "", "message", type=None, request_id="req_000001"),
        shape(404, "not_found", "message", type="invalid_request_error", request_id="req_000002"),
    ]
    media = answer.headers.get("Content-Type", "").split(";")[0].strip()
    assert media == references[0].content_type.split(";")[0].strip(), (media, answer.body)
    expected = common(*(skeleton(json.loads(r.encode())) for r in references))
    got = skeleton(answer.json())
    assert contains(got, expected), f"{answer.body!r} is not shaped like {expected}"


def store_one(api: IdempotentAPI) -> requests.Response:
    """A keyed create that every case replays at its end."""
    method, url, params = api.example()
    response = requests.request(
        method, url, timeout=TIMEOUT, **api.request_kwargs(params, key="stored-before-0000000001")
    )
    assert response.status_code < 300, response.text
    return response


def assert_replays(api: IdempotentAPI, stored: requests.Response) -> None:
    __tracebackhide__ = True
    method, url, params = api.example()
    again = requests.request(
        method, url, timeout=TIMEOUT, **api.request_kwargs(params, key="stored-before-0000000001")
    )
    assert again.status_code == stored.status_code
    assert again.content == stored.content
    assert api.exchanges[-1].decision == "replayed", api.timeline()


# -- the matrix ----------------------------------------------------------------------------------


# ``variant=`` only stops the plugin from parametrizing the variant itself: each case below
# names its own variant through the indirect ``idempotency_variant`` parameter.
@pytest.mark.idempotency(
    variant="generic", assert_all_requests_were_expected=False, assert_all_bodies_were_valid=False
)
@pytest.mark.parametrize(("idempotency_variant", "row"), _cases(), indirect=["idempotency_variant"])
def test_bad_request_gets_a_clear_4xx_and_loses_nothing(
    idempotent_api: IdempotentAPI, row: Row
) -> None:
    api = idempotent_api
    stored = store_one(api)
    effects_before = len(api.side_effects)
    raw = row.build(api, fresh_key(api))

    answer = send(api, raw)
    bad = api.exchanges[-1]

    assert answer.status < 500, (answer.status, answer.body)
    if row.expect == "reject":
        assert_variant_error(api, answer)
        assert bad.side_effects == [], api.timeline()
    elif row.expect == "too_large":
        assert answer.status == 413
        assert_variant_error(api, answer)
        assert bad.side_effects == [], api.timeline()
    elif row.expect == "accept_or_reject":
        if answer.status >= 400:
            assert_variant_error(api, answer)
        else:
            answer.json()  # whatever was accepted comes back as strict JSON
    else:  # at_most_once: the same ambiguous request twice executes at most once
        second = send(api, raw)
        assert second.status < 500, (second.status, second.body)
        if answer.status >= 400:
            assert_variant_error(api, answer)
        assert len(api.side_effects) - effects_before <= 1, api.timeline()
        if answer.status < 300:
            assert (second.status, second.body) == (answer.status, answer.body)
    assert not [p for p in api.journal.problems if p[0] == "internal"], api.journal.problems

    assert_replays(api, stored)
