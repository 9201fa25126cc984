"""A variant: one policy, its routes and handlers, its schemas and its error envelopes.

Providers are data plus small handlers built from these pieces; so is a team's own API.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from werkzeug.datastructures import Headers

from .jsontext import encoder
from .policy import Answer, Policy
from .routes import RoutePattern, parse_route, specificity

if TYPE_CHECKING:
    from .clock import Clock
    from .faults import BatchFaults
    from .journal import Exchange, Journal

__all__ = [
    "CredentialScheme",
    "ErrorShape",
    "Original",
    "HandlerContext",
    "Reply",
    "Resources",
    "Route",
    "Variant",
    "approx_size",
    "bearer_tenant",
    "default_create_handler",
    "json_error_shape",
]


#: One shared encoder, built once (:mod:`pytest_idempotency.jsontext`).
_COMPACT_JSON = encoder()


@dataclass(frozen=True)
class Reply:
    """What a handler returns. ``body`` is JSON-encoded unless it is ``bytes``."""

    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return _COMPACT_JSON(self.body).encode()


class Handler(Protocol):
    def __call__(self, ctx: HandlerContext) -> Reply: ...


@dataclass(frozen=True)
class Route:
    """One endpoint: ``Route("POST /v1/tasks", create_task, schema={...})``."""

    spec: str
    handler: Callable[[HandlerContext], Reply]
    schema: Mapping[str, Any] | None = None
    name: str = ""
    #: Who may call this route when it differs from the rest of the variant:
    #: ``(headers, query) -> tenant`` (``""`` when anyone may call it unauthenticated) or
    #: ``None`` for a missing or malformed credential. ``None`` here: the variant's
    #: ``authenticate``.
    authenticate: Callable[[Headers, Mapping[str, str]], str | None] | None = None
    #: The answer when this route's ``authenticate`` refuses (``None``: the variant's).
    unauthorized: Answer | None = None
    #: Media types this route takes as bytes, unparsed and unchecked by ``schema`` (an
    #: upload's ``multipart/form-data`` or ``application/octet-stream``; ``image/*`` and
    #: ``*/*`` match a family or anything): the handler reads ``ctx.body``, and the
    #: fingerprint hashes the bytes.
    raw_media: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.spec, str):
            raise TypeError(
                f"Route(spec) is the route as a str such as 'POST /v1/tasks', not {self.spec!r:.60}"
            )
        parse_route(self.spec)  # a malformed template is refused here, naming it (cached)

    def takes_raw(self, content_type: str) -> bool:
        """Whether a body of ``content_type`` is one this route takes as bytes."""
        if not self.raw_media:
            return False
        media = content_type.split(";", 1)[0].strip().lower()
        family = media.split("/", 1)[0] + "/*"
        return any(m in (media, family, "*/*") for m in self.raw_media)

    @property
    def pattern(self) -> RoutePattern:
        return parse_route(self.spec)


class ErrorShape(Protocol):
    """Renders an error in a variant's own envelope."""

    def __call__(
        self, status: int, code: str, message: str, *, type: str | None, request_id: str
    ) -> Reply: ...


def json_error_shape(
    status: int, code: str, message: str, *, type: str | None, request_id: str
) -> Reply:
    """The default envelope: ``{"error": {"type", "code", "message", "request_id"}}``."""
    error: dict[str, Any] = {}
    if type is not None:
        error["type"] = type
    error.update({"code": code, "message": message, "request_id": request_id})
    return Reply(status, {"error": error})


@dataclass(frozen=True)
class Original:
    """What an error answer may know of the request that first used the key (Increase names
    its ``resource_id``, GoCardless its ``links.conflicting_resource_id``)."""

    seq: int
    status: int | None
    body: bytes

    @property
    def data(self) -> Any:
        """The stored response body as JSON, or ``None``."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def resource_id(self) -> str | None:
        """The ``id`` of the stored response (or of the one object it wraps), or ``None``."""
        data = self.data
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("id"), (str, int)):
            return str(data["id"])
        inner = [v for v in data.values() if isinstance(v, dict) and "id" in v]
        return str(inner[0]["id"]) if len(inner) == 1 else None


class RecordErrorShape(Protocol):
    """Renders an answer about a stored record (mismatch, reuse, in flight, gone), seeing it."""

    def __call__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        type: str | None,
        request_id: str,
        original: Original,
    ) -> Reply: ...


_SCHEMES = ("bearer", "basic", "header")


@dataclass(frozen=True)
class CredentialScheme:
    """How a credential travels: ``bearer`` (``Authorization: Bearer T``), ``basic``
    (``Authorization: Basic base64(user:password)``) or ``header`` (``X-API-Key: T``)."""

    kind: str = "bearer"
    header: str = "Authorization"

    def __post_init__(self) -> None:
        if self.kind not in _SCHEMES:
            raise ValueError(
                f"credential scheme {self.kind!r} is unknown; use one of {', '.join(_SCHEMES)}"
            )

    def send(self, credential: str) -> dict[str, str]:
        """The header that carries ``credential`` (for basic: ``"user:password"``)."""
        if self.kind == "bearer":
            return {self.header: f"Bearer {credential}"}
        if self.kind == "basic":
            return {self.header: "Basic " + base64.b64encode(credential.encode()).decode()}
        return {self.header: credential}

    def read(self, headers: Headers | Mapping[str, str]) -> str | None:
        """The credential in ``headers``, or ``None`` when it is absent or malformed."""
        value = headers.get(self.header)
        if not value:
            return None
        if self.kind == "header":
            token = value.strip()
            return token if token and token.isascii() else None
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != self.kind or not token or not token.isascii():
            return None
        if self.kind == "bearer":
            return None if any(ch.isspace() for ch in token) else token
        try:
            decoded = base64.b64decode(token, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded if ":" in decoded else None

    def describe(self) -> str:
        return {"bearer": "Bearer token", "basic": "HTTP Basic"}.get(
            self.kind, f"{self.header} header"
        )


#: What ``headers()`` sends when a variant declares no scheme (the built-ins).
BEARER = CredentialScheme()


def bearer_tenant(headers: Headers | Mapping[str, str], prefix: str = "") -> str | None:
    """The credential of ``Authorization: Bearer <token>`` (it must start with ``prefix``),
    or ``None`` when it is missing or malformed."""
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not token.startswith(prefix):
        return None
    if any(ch.isspace() for ch in token) or not token.isascii():
        return None
    return token


def approx_size(obj: dict[str, Any]) -> int:
    """About how many bytes an object holds: the length of its text, 8 per other scalar (a
    flat object in one pass; nested values walked without recursion)."""
    total = 8 * len(obj)
    nested: list[Any] = []
    for name, value in obj.items():
        kind = type(value)
        total += len(name)
        if kind is str or kind is bytes:
            total += len(value)
        elif kind is dict or kind is list or kind is tuple:
            nested.append(value)
        else:
            total += 8
    while nested:
        item = nested.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, dict):
            total += 8 * len(item)
            nested.extend(item.keys())
            nested.extend(item.values())
        elif isinstance(item, (list, tuple)):
            total += 8 * len(item)
            nested.extend(item)
        else:
            total += 8
    return total


class Resources:
    """The fake's own data (tasks, posts, balances), per tenant. Thread-safe.

    ``max_objects`` bounds how many objects it keeps and ``max_bytes`` their size (estimated
    from their text; ``None``: no bound, the pytest fixture's default): past either, the
    oldest object of the oldest table is forgotten and counted in :attr:`dropped_objects`, so
    a long-running server's memory stays bounded."""

    def __init__(self, max_objects: int | None = None, max_bytes: int | None = None) -> None:
        self.lock = threading.RLock()
        self._tables: dict[tuple[str | None, str], dict[str, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self.state: dict[str, Any] = {}
        self.max_objects = max_objects
        self.max_bytes = max_bytes
        self._count = 0
        #: Estimated bytes of the kept objects, and each object's estimate (only while
        #: ``max_bytes`` is set).
        self.bytes = 0
        self._sizes: dict[tuple[tuple[str | None, str], str], int] = {}
        #: Objects forgotten because more than ``max_objects`` were kept.
        self.dropped_objects = 0

    def new_id(self, prefix: str) -> str:
        """A short unique id such as ``task_000007``."""
        return f"{prefix}_{next(self._ids):06d}"

    def table(self, tenant: str | None, kind: str) -> dict[str, dict[str, Any]]:
        """A snapshot of the objects of ``kind`` for ``tenant`` (by id)."""
        with self.lock:
            return dict(self._tables.get((tenant, kind)) or {})

    def put(self, tenant: str | None, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            table = self._tables.get((tenant, kind))
            if table is None:
                table = self._tables[(tenant, kind)] = {}
            obj_id = str(obj["id"])
            if obj_id not in table:
                self._count += 1
            table[obj_id] = obj
            if self.max_bytes is not None:
                size, key = approx_size(obj), ((tenant, kind), obj_id)
                self.bytes += size - self._sizes.get(key, 0)
                self._sizes[key] = size
            if self._over():
                self._drop_oldest((tenant, kind), obj_id)
            return obj

    def bound(self, max_objects: int | None, max_bytes: int | None) -> None:
        """Set the bounds; objects kept already (seeded ones) are counted in from now on."""
        with self.lock:
            self.max_objects = max_objects
            if max_bytes is not None and self.max_bytes is None:
                self._sizes = {
                    (name, obj_id): approx_size(obj)
                    for name, table in self._tables.items()
                    for obj_id, obj in table.items()
                }
                self.bytes = sum(self._sizes.values())
            self.max_bytes = max_bytes
            if max_bytes is None:
                self._sizes, self.bytes = {}, 0

    def _over(self) -> bool:
        return (self.max_objects is not None and self._count > self.max_objects) or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        )

    def _forget(self, name: tuple[str | None, str], obj_id: str) -> None:
        """The object is gone from its table: count it out (the lock is held)."""
        self._count -= 1
        self.bytes -= self._sizes.pop((name, obj_id), 0)

    def _drop_oldest(self, newest: tuple[str | None, str], newest_id: str) -> None:
        """Forget objects, oldest table first, until within the bounds; the object just put
        always stays, however large."""
        tables = self._tables
        while self._over():
            name = next(iter(tables))
            table = tables[name]
            obj_id = next(iter(table))
            if (name, obj_id) == (newest, newest_id):
                if len(tables) == 1 and len(table) == 1:
                    return
                if len(table) == 1:
                    tables[name] = tables.pop(name)  # the newest object's table goes last
                    continue
                obj_id = next(itertools.islice(table, 1, None))
            del table[obj_id]
            self._forget(name, obj_id)
            self.dropped_objects += 1
            if not table:
                del tables[name]

    def get(self, tenant: str | None, kind: str, obj_id: str) -> dict[str, Any] | None:
        with self.lock:
            table = self._tables.get((tenant, kind))
            return None if table is None else table.get(obj_id)

    def delete(self, tenant: str | None, kind: str, obj_id: str) -> bool:
        with self.lock:
            table = self._tables.get((tenant, kind))
            if table is None or table.pop(obj_id, None) is None:
                return False
            self._forget((tenant, kind), obj_id)
            if not table:
                del self._tables[(tenant, kind)]
            return True

    def exists(self, tenant: str | None, kind: str, obj_id: str) -> bool:
        with self.lock:
            table = self._tables.get((tenant, kind))
            return table is not None and obj_id in table

    def all(self, tenant: str | None, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return list((self._tables.get((tenant, kind)) or {}).values())

    def __len__(self) -> int:
        """How many objects are kept, across kinds and tenants."""
        return self._count

    def count(self, kind: str) -> int:
        """How many objects of ``kind`` exist, across tenants."""
        with self.lock:
            return sum(len(t) for (_, k), t in self._tables.items() if k == kind)


@dataclass
class HandlerContext:
    """Everything a handler may use for one request."""

    method: str
    path: str
    params: dict[str, str]
    headers: Headers
    query: Mapping[str, str]
    body: bytes
    content_type: str
    data: Any
    tenant: str | None
    key: str | None
    resources: Resources
    clock: Clock
    exchange: Exchange
    journal: Journal
    variant: Variant
    batch_faults: BatchFaults | None = None
    #: Set by a handler so the idempotency record lives as long as that resource.
    bound_resource: tuple[str, str] | None = None
    request_id: str = ""

    def side_effect(
        self, kind: str, resource: str, resource_id: str | None = None, **detail: Any
    ) -> None:
        """Record a mutation the handler performed (what ``assert_exactly_once`` counts)."""
        self.journal.record_side_effect(self.exchange, kind, resource, resource_id, detail)

    def error(self, status: int, code: str, message: str, *, type: str | None = None) -> Reply:
        """An error reply in the variant's own envelope."""
        return self.variant.error_shape(
            status, code, message, type=type, request_id=self.request_id
        )

    def bind_record_to(self, kind: str, resource_id: str) -> None:
        """Make the idempotency record of this request die with this resource."""
        self.bound_resource = (kind, resource_id)

    def target_fails(self, target: str) -> str | None:
        """For batch handlers: the failure scripted for ``target`` (``"transient"`` or
        ``"permanent"``), or ``None``."""
        return None if self.batch_faults is None else self.batch_faults.failure_for(target)

    def emit(
        self,
        event_type: str,
        obj: Mapping[str, Any],
        *,
        after: float | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue a webhook event about ``obj`` (now, or ``after`` seconds on the fake clock,
        applying ``changes`` to ``obj`` first); see ``docs/webhooks.md``."""
        from .webhooks.registry import hub_for

        hub = hub_for(self.resources, self.clock, self.variant)
        if hub.closed:  # a request of a state replaced by a reset: its events go nowhere
            return
        context = {"request_id": self.request_id, "key": self.key, "tenant": self.tenant}
        hub.emit(event_type, obj, after=after, changes=changes, **context)


def _default_authenticate(headers: Headers) -> str | None:
    """Generic: any bearer token is a tenant; no header is the anonymous tenant ``""``."""
    if "Authorization" not in headers:
        return ""
    return bearer_tenant(headers)


@dataclass(frozen=True)
class Variant:
    """One fake API: a policy plus routes, credentials and error envelopes."""

    name: str
    policy: Policy
    routes: tuple[Route, ...]
    description: str = ""
    error_shape: ErrorShape = json_error_shape
    #: Returns the tenant for the request headers, or ``None`` (-> :attr:`unauthorized`).
    authenticate: Callable[[Headers], str | None] = _default_authenticate
    unauthorized: Answer = Answer(401, "unauthorized", "Missing or malformed bearer credential.")
    not_found: Answer = Answer(404, "not_found", "No route for {key}.")
    method_not_allowed: Answer = Answer(405, "method_not_allowed", "Method not allowed: {key}.")
    validation: Answer = Answer(400, "validation_failed", "The request body is invalid: {key}")
    too_large: Answer = Answer(413, "request_too_large", "The request body is too large: {key}")
    #: A credential tests can use as is (``idempotent_api.headers()`` sends it).
    example_credential: str | None = None
    #: Largest accepted request body in bytes.
    max_body_bytes: int = 1_048_576
    #: An operation that creates something, for portable tests: method, path, parameters.
    example: tuple[str, str, dict[str, Any]] = ("POST", "/v1/things", {"name": "example"})
    #: How request bodies are encoded: ``json`` or ``form`` (Stripe).
    body_encoding: str = "json"
    #: Called on reset to seed per-test data (e.g. accounts).
    seed: Callable[[Resources], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: Its webhooks (a ``webhooks.EventSpec``); ``None``: the provider's ``EVENTS`` or generic.
    events: Any = field(default=None, compare=False, hash=False)
    #: How :meth:`~pytest_idempotency.api.IdempotentAPI.headers` sends the credential; the
    #: first one is used (empty: ``Authorization: Bearer``).
    credential_schemes: tuple[CredentialScheme, ...] = ()
    #: Renders answers about a stored record, seeing it (``None``: :attr:`error_shape`).
    record_error_shape: RecordErrorShape | None = None
    #: The answer to an injected error fault (its status is the fault's), in this API's words.
    fault_error: Answer = Answer(500, "injected_fault", "Injected {key}.", type="api_error")

    @property
    def credential_scheme(self) -> CredentialScheme:
        """The scheme helpers use to send a credential."""
        return self.credential_schemes[0] if self.credential_schemes else BEARER

    def with_policy(self, **changes: Any) -> Variant:
        """This variant with some policy fields overridden."""
        import dataclasses

        return dataclasses.replace(self, policy=self.policy.replace(**changes))

    def find_route(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """``(route, params, path_known)``: the matching route (``None`` when none matches)
        and whether some route serves the path under another method."""
        table = self._route_table
        for route, pattern in table:
            if pattern.method == method or pattern.method == "*":
                found = pattern.regex.fullmatch(path)
                if found is not None:
                    return route, found.groupdict(), True
        return None, {}, any(pattern.matches_path(path) for _, pattern in table)

    @functools.cached_property
    def _route_table(self) -> tuple[tuple[Route, RoutePattern], ...]:
        """Each route with its parsed pattern, parsed once, most specific first (requests
        match against these: ``GET /v1/tasks/stats`` wins over ``GET /v1/tasks/{id}``
        whatever their order)."""
        table = [(route, route.pattern) for route in self.routes]
        return tuple(sorted(table, key=lambda pair: specificity(pair[1])))


def default_create_handler(resource: str = "object", prefix: str = "obj") -> Handler:
    """A handler that creates a resource from the JSON body and echoes it with an ``id``."""

    def create(ctx: HandlerContext) -> Reply:
        data = ctx.data if isinstance(ctx.data, dict) else {"value": ctx.data}
        obj = {"id": ctx.resources.new_id(prefix), "object": resource, **data}
        obj["created"] = int(ctx.clock.now())
        ctx.resources.put(ctx.tenant, resource, obj)
        ctx.side_effect(f"{resource}.created", resource, obj["id"])
        return Reply(201, obj)

    return create
