"""The admin API of the standalone server: JSON under ``/__admin/`` on the fake's own port.

:class:`Admin` is the ``admin=`` hook of :class:`~pytest_idempotency.app.App`. It resets the
fake, moves its clock, scripts faults, restarts it and reads the journal, so clients that are not
in Python can do over HTTP what a pytest test does with ``idempotent_api``. It refuses peers that
are not on loopback unless told otherwise. Bad calls get 4xx ``{"error": "..."}`` naming the fix.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import re
import socket
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from . import admin_journal, admin_webhooks
from .admin_calls import MAX_WAIT, AdminError, Payload, only
from .app import TOO_LARGE_KEY, WIRE_KEY
from .faults import CHAOS_KINDS, FAULT_KINDS, Fault, FaultError, WireAction
from .fingerprint import loads_strict_json
from .http1 import split_absolute
from .jsontext import as_json
from .limits import MAX_ADMIN_BODY
from .overrides import load_variant
from .policy import PolicyError, check_header
from .providers import variant_names

if TYPE_CHECKING:
    from .app import App, State
    from .server import IdempotencyServer
    from .variant import Variant

__all__ = ["Admin", "AdminError", "is_loopback_peer"]

#: Longest a ``slow`` fault may delay a response, in seconds.
MAX_SLOW = 3600.0

# -- peers -------------------------------------------------------------------------------------


def is_loopback_peer(address: str | None) -> bool:
    """Whether ``address`` (a WSGI ``REMOTE_ADDR``) is a loopback address (IPv4-mapped
    IPv6 ones included). Anything unparsable is not."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _trusted_host(host: str, bound: str | None) -> bool:
    """Whether a ``Host`` header names this machine without a DNS name a web page could
    rebind: an IP address, ``localhost`` (or ``*.localhost``), or the host the server is
    bound to, with or without a port."""
    name = host.strip().lower()
    if name.startswith("["):
        name, bracket, rest = name[1:].partition("]")
        if not bracket or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return False
    elif name.count(":") == 1:
        name, _, port = name.partition(":")
        if not port.isdigit():
            return False
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost") or name == (bound or "").lower():
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# -- the admin hook ----------------------------------------------------------------------------

Handler = Callable[["Admin", "App", Request, dict[str, Any]], Payload]


def _number(value: Any, name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise AdminError(400, f"{name} must be a number >= {minimum:g} (got {json.dumps(value)})")
    return float(value)


#: The latest the fake clock may be set to: 9000-01-01 (chosen: dates stop at 9999, and the
#: clock goes on running after it is set, so a millennium is left for it).
_LATEST = _dt.datetime(9000, 1, 1, tzinfo=_dt.timezone.utc).timestamp()


def _representable(epoch: float) -> float:
    """``epoch`` if the fake clock can show it as a date and keep running (years 1970 to
    8999), else a 400."""
    if not epoch <= _LATEST:  # NaN included
        raise AdminError(
            400, f"that puts the fake clock out of range ({epoch:g} s); stay within years 1970-8999"
        )
    if epoch < 0:
        raise AdminError(400, f"the fake clock cannot go before 1970 (got {epoch:g} s)")
    return epoch


def _parse_when(value: Any) -> float:
    """Epoch seconds from an ISO-8601 string with an offset (``Z`` allowed) or a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise AdminError(
            400, f'"set" takes an ISO-8601 time or epoch seconds (got {json.dumps(value)})'
        )
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise AdminError(
            400, f'"set" must be ISO-8601 like "2026-01-01T00:00:00Z" (got {json.dumps(value)})'
        ) from None
    if when.tzinfo is None:
        raise AdminError(
            400,
            f'"set" needs a UTC offset, e.g. "{value}Z" or "{value}+00:00" '
            f"(got {json.dumps(value)})",
        )
    return when.timestamp()


def _describe_fault(fault_id: int, fault: Fault) -> dict[str, Any]:
    """The fault's id, its own JSON (only the options of its kind) and a description; a hold
    or slow fault also says how many requests it parked and whether it was released."""
    out = {"id": fault_id, **fault.as_dict(), "description": fault.describe()}
    if fault.kind in ("hold", "slow"):
        out.update(held=fault.held_count, released=fault.released.is_set())
    return out


_FAULT_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "method": ((str,), 'a method such as "POST"'),
    "path": ((str,), 'a route pattern such as "/v1/tasks" or "/v1/posts/*"'),
    "key": ((str,), "the idempotency key as a string"),
    "keep_records": ((bool,), "true or false"),
    "failures": ((dict,), 'an object such as {"acct_b": "transient"}'),
    "retry_after": ((str, int), 'seconds or an HTTP date, e.g. 2 or "2"'),
    "style": ((str,), '"truncated" or "status_line"'),
    "times": ((int,), "a whole number >= 1, or null for ever"),
    "attempt": ((int,), "the n-th time the server sees the key, from 1"),
    "seq": ((int,), "the n-th request since the last reset, from 1"),
    "status": ((int,), "an HTTP status code such as 503"),
    "seconds": ((int, float), "seconds >= 0, or null until released"),
}
_CHAOS_FIELDS = ("kind", "rate", "seed", "kinds", "statuses")


class Admin:
    """The admin API: ``App(variant, admin=Admin())``. Set :attr:`server` once the server
    runs (health reports its URL; restart closes its connections)."""

    def __init__(
        self,
        *,
        allow_remote: bool = False,
        variant_name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        server: IdempotencyServer | None = None,
        journal_limit: int | None = None,
        max_records: int | None = None,
        max_objects: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        #: Exchanges each journal keeps (``None``: all); applied to every fresh journal.
        self.journal_limit = journal_limit
        #: Records each store and objects each resource table keep (``None``: all); applied
        #: to every fresh state, like the journal's limit.
        self.max_records = max_records
        self.max_objects = max_objects
        #: Bytes the records and, separately, the resources keep (``None``: no bound).
        self.max_bytes = max_bytes
        self.allow_remote = allow_remote
        self.variant_name = variant_name
        self.overrides: dict[str, Any] = dict(overrides or {})
        self.server = server
        self._chaos: tuple[object, dict[str, Any]] | None = None
        #: Journal pages are encoded one at a time: many full reads at once cost one answer's
        #: text in memory beside the answers being sent, not one structure each.
        self.journal_reads = threading.Lock()

    def __call__(self, app: App, request: Request) -> Payload:
        """The answer to one admin call: its status and its JSON text (a value JSON has no
        type for leaves as its text, never a crash)."""
        status, payload = self._answer(app, request)
        try:
            return status, as_json(payload)
        except (ValueError, TypeError, RecursionError) as exc:
            return 400, as_json({"error": f"the admin API could not encode its answer: {exc}"})

    def _answer(self, app: App, request: Request) -> Payload:
        try:
            if not self.allow_remote and not is_loopback_peer(request.remote_addr):
                request.environ[WIRE_KEY] = WireAction(close=True)  # its body stays unread
                raise AdminError(
                    403,
                    f"the admin API answers loopback peers only, not {request.remote_addr}; "
                    "start the server with --allow-remote-admin to allow other hosts",
                )
            self._same_origin(request)
            body = self._body(request)
            handler = self._route(request)
            return handler(self, app, request, body)
        except AdminError as exc:
            return exc.status, {"error": str(exc)}
        except (FaultError, PolicyError, ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
        except Exception as exc:  # the admin API itself broke: say so, never a 500
            return 400, {"error": f"the admin API raised {type(exc).__name__}: {exc}"}

    # -- plumbing ----------------------------------------------------------------------------

    def _same_origin(self, request: Request) -> None:
        """Refuse what a web page could send: a ``Host`` that is a DNS name other than
        localhost or the bound host (DNS rebinding), a cross-origin ``Origin`` or
        ``Sec-Fetch-Site``, and a body that is not JSON (a form or text/plain needs no
        preflight)."""
        host = request.headers.get("Host", "")
        absolute = split_absolute(request.environ.get("REQUEST_URI", ""))
        if absolute is not None:  # its authority stands for Host
            host = absolute[0]
        if not _trusted_host(host, self.bound_host()):
            request.environ[WIRE_KEY] = WireAction(close=True)
            raise AdminError(
                403,
                f"the admin API answers requests for localhost or an IP address, not Host "
                f"{host[:80]!r}; call it as http://127.0.0.1:PORT/__admin/...",
            )
        origin = request.headers.get("Origin")
        sites = {s.strip() for s in request.headers.get("Sec-Fetch-Site", "").lower().split(",")}
        if (origin is not None and origin != f"http://{host}") or sites - {
            "",
            "none",
            "same-origin",
        }:
            request.environ[WIRE_KEY] = WireAction(close=True)
            raise AdminError(
                403,
                f"the admin API refuses cross-origin requests (Origin {origin!r}); call it from "
                "a program, not a web page",
            )
        length = request.content_length or 0
        if 0 < length <= MAX_ADMIN_BODY and not request.environ.get(TOO_LARGE_KEY):
            media = request.mimetype
            if media != "application/json" and not media.endswith("+json"):
                request.environ[WIRE_KEY] = WireAction(close=True)
                raise AdminError(
                    415,
                    f"admin bodies are JSON: send Content-Type: application/json "
                    f"(got {media or 'none'!r})",
                )

    def bound(self, state: State) -> None:
        """Give a fresh state's journal, store and resources this admin's bounds (the app
        calls it for every state before the state serves, so a reset's own answer and the
        first request after it see them)."""
        if self.journal_limit is not None:
            state.journal.limit = self.journal_limit
        state.store.max_records = self.max_records
        state.store.max_bytes = self.max_bytes
        state.resources.bound(self.max_objects, self.max_bytes)

    def bound_host(self) -> str | None:
        return self.server.host if self.server is not None else None

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        length = request.content_length
        too_large = bool(request.environ.get(TOO_LARGE_KEY))
        if too_large or (length is not None and length > MAX_ADMIN_BODY):
            request.environ[WIRE_KEY] = WireAction(close=True)
            raise AdminError(413, f"admin bodies are at most {MAX_ADMIN_BODY} bytes")
        raw = request.get_data(cache=True)
        if not raw.strip():
            return {}
        try:
            body = loads_strict_json(raw)
        except RecursionError:
            raise AdminError(400, "the body nests too deeply; send a flat JSON object") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise AdminError(
                400,
                f"the body is not JSON ({exc}); send a JSON object such as "
                '{"advance": 60} with Content-Type: application/json',
            ) from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise AdminError(
                400, f"the body must be a JSON object, not {type(body).__name__}: {raw[:80]!r}"
            )
        return body

    def _route(self, request: Request) -> Handler:
        name = request.path[len("/__admin/") :].strip("/")
        method = request.method.upper()
        methods = _ROUTES.get(name)
        if methods is None:
            found = re.fullmatch(r"faults/(\d+)/(release|wait)", name)
            if found is not None:
                methods = {"POST": _fault_action}
        if methods is None:
            calls = ", ".join(f"{m} /__admin/{p}" for p, ms in _ROUTES.items() for m in ms)
            calls += ", POST /__admin/faults/{id}/release, POST /__admin/faults/{id}/wait"
            raise AdminError(
                404, f"no admin call {method} {request.path}; the admin calls are: {calls}"
            )
        if method == "HEAD" and "GET" in methods:
            method = "GET"
        if method not in methods:
            allowed = ", ".join(methods)
            raise AdminError(405, f"{request.path} takes {allowed}, not {method}")
        return methods[method]

    def url(self, request: Request) -> str:
        if self.server is not None:
            return self.server.url
        return request.host_url.rstrip("/")

    def close_other_connections(self, request: Request) -> int:
        """Close every client connection but the one carrying this admin call; return how
        many there were."""
        if self.server is None:
            return 0
        tracker: set[socket.socket] = getattr(self.server.server, "open_connections", set())
        mine = request.environ.get("werkzeug.socket")
        others = [conn for conn in list(tracker) if conn is not mine]
        # Released requests finish first (a lost one ends with its RST); the caller's own
        # connection, served by this thread, is spared.
        self.server.close_connections()
        return len(others)

    def faults_by_id(self, app: App) -> dict[int, Fault]:
        return dict(enumerate(app.state.faults.scripted, start=1))

    def chaos(self, app: App) -> dict[str, Any] | None:
        if self._chaos is not None and self._chaos[0] is app.state.faults:
            return self._chaos[1]
        return None


# -- the calls ---------------------------------------------------------------------------------


def _health(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    return 200, {
        "variant": app.variant.name,
        "url": admin.url(request),
        "now": app.clock.isoformat(),
        "offset": app.clock.offset,
        "seed": app.seed,
        "overrides": admin.overrides,
        "variants": variant_names(),
        **_capacity(app),
    }


def _capacity(app: App) -> dict[str, Any]:
    """What the store and the resources keep, their bounds, and what they refused or dropped."""
    store, resources = app.state.store, app.state.resources
    return {
        "records": len(store),
        "max_records": store.max_records,
        "record_bytes": store.bytes,
        "refused_keys": store.refused,
        "objects": len(resources),
        "max_objects": resources.max_objects,
        "object_bytes": resources.bytes,
        "dropped_objects": resources.dropped_objects,
        "max_bytes": store.max_bytes,
    }


def _variant(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    variant = app.variant
    policy = variant.policy
    method, path, params = variant.example
    return 200, {
        "name": variant.name,
        "description": variant.description,
        "routes": [route.spec for route in variant.routes],
        "example": {"method": method, "path": path, "params": params},
        "example_credential": variant.example_credential,
        "credential": _credential(variant),
        "body_encoding": variant.body_encoding,
        "key_header": policy.key_header,
        "key_field": policy.key_field,
        "key_format": policy.key_format,
        "ttl": policy.ttl,
        "overrides": admin.overrides,
        "policy": policy.describe(),
    }


def _credential(variant: Variant) -> dict[str, Any]:
    """How a client sends the credential: the scheme, its header, and the exact headers that
    send the example credential (``{}`` when the variant needs none)."""
    scheme = variant.credential_scheme
    token = variant.example_credential
    return {
        "scheme": scheme.kind,
        "header": scheme.header,
        "headers": scheme.send(token) if token else {},
    }


def _reset(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    only(body, ("variant", "policy", "seed"), '{"variant": "phantom", "policy": {"ttl": 60}}')
    name = body.get("variant", admin.variant_name or app.variant.name)
    if not isinstance(name, str):
        raise AdminError(400, f'"variant" must be a variant name (got {json.dumps(name)})')
    overrides = body.get("policy", admin.overrides)
    if not isinstance(overrides, dict):
        raise AdminError(
            400, f'"policy" must be an object such as {{"ttl": 60}} (got {json.dumps(overrides)})'
        )
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise AdminError(400, f'"seed" must be a whole number (got {json.dumps(seed)})')
    if "variant" in body or "policy" in body or admin.variant_name is not None:
        variant = load_variant(name, overrides)  # fails before anything changes
    else:
        variant = app.variant
    app.reset(variant, seed=seed)
    admin.variant_name, admin.overrides = name, dict(overrides)
    return _health(admin, app, request, {})


def _clock_get(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    return 200, {"now": app.clock.isoformat(), "epoch": app.clock.now(), "offset": app.clock.offset}


def _clock_post(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    steps = ("advance", "minutes", "hours", "days")
    only(body, ("set", *steps), '{"advance": 86401} or {"set": "2026-01-01T00:00:00Z"}')
    if "set" in body and any(k in body for k in steps):
        raise AdminError(400, 'send either "set" or "advance", not both')
    if "set" in body:
        app.clock.set(_representable(_parse_when(body["set"])))
    elif any(k in body for k in steps):
        seconds = _number(body.get("advance", 0), "advance")
        seconds += 60.0 * _number(body.get("minutes", 0), "minutes")
        seconds += 3600.0 * _number(body.get("hours", 0), "hours")
        seconds += 86400.0 * _number(body.get("days", 0), "days")
        _representable(app.clock.now() + seconds)
        app.clock.advance(seconds)
    else:
        raise AdminError(
            400, 'say how to move the clock: {"advance": SECONDS} or {"set": "ISO-8601"}'
        )
    return _clock_get(admin, app, request, {})


def _faults_list(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    faults = [_describe_fault(i, f) for i, f in admin.faults_by_id(app).items()]
    return 200, {
        "faults": faults,
        "unfired": [f["id"] for f in faults if f["fired"] == 0],
        "chaos": admin.chaos(app),
    }


def _faults_add(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise AdminError(
            400,
            'name the fault: {"kind": KIND, ...} with KIND one of '
            f"{', '.join(FAULT_KINDS)} or chaos",
        )
    plan = app.state.faults
    if kind == "chaos":
        only(body, _CHAOS_FIELDS, '{"kind": "chaos", "rate": 0.3, "seed": 7}')
        options: dict[str, Any] = {"rate": _number(body.get("rate", 0.2), "rate")}
        for name in ("kinds", "statuses"):
            if name in body:
                if not isinstance(body[name], list):
                    raise AdminError(400, f'"{name}" must be a list (got {json.dumps(body[name])})')
                options[name] = body[name]
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise AdminError(400, f'"seed" must be a whole number (got {json.dumps(seed)})')
        used = plan.chaos(seed=seed, **options)
        described = {
            "rate": options["rate"],
            "seed": used,
            "kinds": list(options.get("kinds", CHAOS_KINDS)),
            "statuses": list(options.get("statuses", (500, 502, 503))),
        }
        admin._chaos = (plan, described)
        return 201, {"chaos": described}
    spec = {k: v for k, v in body.items() if k != "kind"}
    for name, (types_, wanted) in _FAULT_FIELD_TYPES.items():
        value = spec.get(name)
        if value is None:
            continue
        if not isinstance(value, types_) or (isinstance(value, bool) and bool not in types_):
            raise AdminError(400, f'"{name}" must be {wanted} (got {json.dumps(value)})')
    retry_after = spec.get("retry_after")
    if isinstance(retry_after, str):
        try:
            check_header("retry_after", "Retry-After", retry_after)
        except PolicyError as exc:
            raise AdminError(400, f'"retry_after" {exc}; send seconds such as 2') from None
    for name in ("times", "attempt", "seq"):
        if isinstance(spec.get(name), int) and spec[name] < 1:
            wanted = _FAULT_FIELD_TYPES[name][1]
            raise AdminError(400, f"{name} must be {wanted} (got {json.dumps(spec[name])})")
    seconds = spec.get("seconds")
    if seconds is not None and _number(seconds, "seconds") > MAX_SLOW:
        raise AdminError(
            400, f"seconds is at most {MAX_SLOW:g}; for longer, omit it and release the fault"
        )
    fault = plan.add(kind, **spec)
    fault_id = next(i for i, f in admin.faults_by_id(app).items() if f is fault)
    return 201, {"fault": _describe_fault(fault_id, fault)}


def _faults_clear(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    app.state.faults.clear()
    return 200, {"faults": [], "unfired": [], "chaos": None}


def _faults_release(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    app.state.faults.release_all()
    return _faults_list(admin, app, request, body)


def _fault_action(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    _, raw_id, action = request.path.strip("/").split("/")[-3:]
    if not raw_id.isascii() or len(raw_id) > 18:
        raise AdminError(404, f"no fault #{raw_id[:40]}; GET /__admin/faults lists the ids")
    fault = admin.faults_by_id(app).get(int(raw_id))
    if fault is None:
        raise AdminError(404, f"no fault #{raw_id}; GET /__admin/faults lists them with their ids")
    if action == "release":
        fault.release()
    else:
        only(body, ("count", "timeout"), '{"count": 1, "timeout": 5}')
        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise AdminError(400, f'"count" must be a whole number >= 1 (got {json.dumps(count)})')
        timeout = min(_number(body.get("timeout", 5.0), "timeout"), MAX_WAIT)
        try:
            fault.wait_until_held(timeout=timeout, count=count)
        except TimeoutError as exc:
            raise AdminError(409, str(exc)) from None
    return 200, {"fault": _describe_fault(int(raw_id), fault)}


def _restart(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    only(body, ("keep_records",), '{"keep_records": false}')
    keep = body.get("keep_records", True)
    if not isinstance(keep, bool):
        raise AdminError(400, f'"keep_records" must be true or false (got {json.dumps(keep)})')
    lost = app.restart(keep_records=keep)
    closed = admin.close_other_connections(request)
    return 200, {
        "keep_records": keep,
        "lost": [{"key": r.key, "request": r.owner_seq} for r in lost],
        "closed_connections": closed,
    }


_ROUTES: dict[str, dict[str, Handler]] = {
    "health": {"GET": _health},
    "variant": {"GET": _variant},
    "reset": {"POST": _reset},
    "clock": {"GET": _clock_get, "POST": _clock_post},
    "faults": {"GET": _faults_list, "POST": _faults_add, "DELETE": _faults_clear},
    "faults/release": {"POST": _faults_release},
    "restart": {"POST": _restart},
    **admin_journal.ROUTES,
    **admin_webhooks.ROUTES,
}


def _stubs(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    """``POST /__admin/stubs`` ``{"route": "POST /v1/tasks", "status": 201, "json": {...},
    "headers": {...}, "nth": 2, "times": 1, "side_effect": "task.created"}`` stubs one route's
    answer; ``GET`` lists the stubs, ``DELETE`` removes them."""
    from .stubs import check_route

    plan = app.state.stubs
    if request.method.upper() == "POST":
        fields = ("route", "status", "json", "headers", "nth", "times", "side_effect")
        only(body, fields, '{"route": "POST /v1/tasks", "status": 201, "json": {"id": "t1"}}')
        if "route" not in body:
            raise AdminError(400, 'name the route: {"route": "POST /v1/tasks", ...}')
        check_route(app.state.variant, body["route"])
        stub = plan.add(**body)
        return 201, {"stub": stub.as_dict()}
    if request.method.upper() == "DELETE":
        plan.clear()
    return 200, {"stubs": [s.as_dict() for s in plan.stubs]}


_ROUTES["stubs"] = {"GET": _stubs, "POST": _stubs, "DELETE": _stubs}
