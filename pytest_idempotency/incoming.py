"""The request as the app reads it: straight from the WSGI environ, without building a werkzeug
``Request`` for every call.

:class:`Incoming` reads what the request path needs (method, path, headers, query, body) the way
werkzeug's ``Request`` does, and builds a real ``Request`` only for what it does not cover (a
body from an environ the server did not fill, draining an oversized body).
"""

from __future__ import annotations

from typing import IO, Any

from werkzeug.datastructures import EnvironHeaders, ImmutableMultiDict, MultiDict
from werkzeug.sansio.utils import get_content_length
from werkzeug.wrappers import Request

__all__ = ["BODY_KEY", "HEADER_KEYS_KEY", "Incoming", "RequestHeaders"]

#: environ key where the server leaves the whole request body it read (bytes).
BODY_KEY = "pytest_idempotency.body"
#: environ key where the server lists the environ's header keys, in environ order.
HEADER_KEYS_KEY = "pytest_idempotency.header_keys"

_NO_ARGS: ImmutableMultiDict[str, str] = ImmutableMultiDict()


_TITLES: dict[str, str] = {}


def _title(key: str) -> str:
    """``HTTP_IDEMPOTENCY_KEY`` -> ``Idempotency-Key`` (werkzeug's spelling), remembered."""
    title = _TITLES.get(key)
    if title is None:
        title = (key[5:] if key[:5] == "HTTP_" else key).replace("_", "-").title()
        if len(_TITLES) < 4096:
            _TITLES[key] = title
    return title


_ENVIRON_KEYS: dict[str, str] = {}


def _environ_key(name: str) -> str:
    """``Idempotency-Key`` -> ``HTTP_IDEMPOTENCY_KEY`` (werkzeug's mapping), remembered."""
    key = _ENVIRON_KEYS.get(name)
    if key is None:
        key = name.upper().replace("-", "_")
        if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
            key = "HTTP_" + key
        if len(_ENVIRON_KEYS) < 4096:
            _ENVIRON_KEYS[name] = key
    return key


class RequestHeaders(EnvironHeaders):
    """werkzeug's ``EnvironHeaders`` whose ``in`` and ``get`` look the environ up directly
    (werkzeug's go through a raised ``KeyError`` for every header that was not sent)."""

    def __contains__(self, key: str) -> bool:
        if type(key) is not str:
            return super().__contains__(key)
        return _environ_key(key) in self.environ

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]
        if type is not None or key.__class__ is not str:
            return super().get(key, default, type)
        return self.environ.get(_environ_key(key), default)


class Incoming:
    """One request's method, path, headers, query and body, read from its environ."""

    __slots__ = ("_args", "_body", "_request", "environ", "headers", "method", "path")

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "GET").upper()
        raw_path = environ.get("PATH_INFO") or ""
        self.path = "/" + raw_path.encode("latin1").decode(errors="replace").lstrip("/")
        self.headers: EnvironHeaders = RequestHeaders(environ)
        self._args: MultiDict[str, str] | None = None
        self._body: bytes | None = environ.get(BODY_KEY)
        self._request: Request | None = None

    def _werkzeug(self) -> Request:
        if self._request is None:
            self._request = Request(self.environ, populate_request=False)
        return self._request

    def header_pairs(self) -> tuple[tuple[str, str], ...]:
        """Every header as ``(Name, value)``, exactly as iterating werkzeug's headers gives them
        (in environ order, names title-cased), in one pass."""
        pairs: list[tuple[str, str]] = []
        environ = self.environ
        keys: list[str] | None = environ.get(HEADER_KEYS_KEY)
        titles = _TITLES
        for key in environ if keys is None else keys:
            if key[:5] == "HTTP_":
                if key == "HTTP_CONTENT_TYPE" or key == "HTTP_CONTENT_LENGTH":
                    continue
            elif (key != "CONTENT_TYPE" and key != "CONTENT_LENGTH") or not environ[key]:
                continue
            pairs.append((titles.get(key) or _title(key), environ[key]))
        return tuple(pairs)

    @property
    def args(self) -> MultiDict[str, str]:
        """The query parameters, as werkzeug's ``Request.args`` gives them."""
        if self._args is None:
            query = self.environ.get("QUERY_STRING", "")
            self._args = self._werkzeug().args if query else _NO_ARGS
        return self._args

    @property
    def content_length(self) -> int | None:
        environ = self.environ
        length = environ.get("CONTENT_LENGTH")
        if (
            "HTTP_TRANSFER_ENCODING" not in environ
            and type(length) is str
            and length.isascii()
            and length.isdigit()
        ):
            return int(length)  # the common case, as werkzeug reads it (ASCII digits only)
        return get_content_length(
            http_content_length=environ.get("CONTENT_LENGTH"),
            http_transfer_encoding=environ.get("HTTP_TRANSFER_ENCODING"),
        )

    @property
    def stream(self) -> IO[bytes]:
        return self._werkzeug().stream

    def get_data(self) -> bytes:
        """The whole body (read once)."""
        if self._body is None:
            self._body = self._werkzeug().get_data(cache=True)
        return self._body
