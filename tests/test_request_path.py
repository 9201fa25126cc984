"""The app reads a request straight from its environ: what it reads equals what werkzeug's
``Request`` reads from the same environ (headers, path, query, length, body)."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import EnvironHeaders
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from pytest_idempotency.incoming import Incoming

CASES = [
    {
        "path": "/v1/things",
        "method": "POST",
        "data": b'{"a": 1}',
        "headers": {"Content-Type": "application/json", "Idempotency-Key": "k-1"},
    },
    {
        "path": "/v1/caf%C3%A9//x",
        "method": "get",
        "query_string": "a=1&a=2&b=&c=%ZZ",
        "headers": {"X-API-Key": "s", "x-stainless-retry-count": "2"},
    },
    {"path": "/", "method": "DELETE", "headers": {"Content-Length": "0"}},
]


@pytest.mark.parametrize("case", CASES, ids=["keyed-post", "query-and-odd-path", "empty"])
def test_incoming_reads_what_a_werkzeug_request_reads(case: dict[str, object]) -> None:
    environ = EnvironBuilder(**case).get_environ()  # type: ignore[arg-type]
    reference = Request(EnvironBuilder(**case).get_environ(), populate_request=False)  # type: ignore[arg-type]
    incoming = Incoming(environ)
    assert incoming.method == reference.method
    assert incoming.path == reference.path
    assert incoming.header_pairs() == tuple(EnvironHeaders(environ))
    assert list(incoming.args.items(multi=True)) == list(reference.args.items(multi=True))
    assert incoming.content_length == reference.content_length
    assert incoming.get_data() == reference.get_data()
