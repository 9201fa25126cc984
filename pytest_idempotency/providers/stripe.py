"""``stripe``: the Stripe API v1 idempotency contract, close enough for stripe-python.

Header ``Idempotency-Key`` (up to 255 characters) on every ``POST``; form-encoded parameters
(``a[b]=c``) compared with the first request's; a reused key with other parameters gets 400
``idempotency_error``; a duplicate while the original executes gets 409
``idempotency_key_in_use`` (not saved); everything after execution began is saved, 4xx and 500
included; parameter validation, 401 and 429 happen before the idempotency layer; replays carry
``Idempotent-Replayed: true``; every keyed response echoes ``Idempotency-Key``; keys are kept
24 hours per account (secret key). Any ``POST /v1/<resource>`` creates a Stripe-shaped object.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from werkzeug.datastructures import Headers

from ..policy import Answer, Policy
from ..variant import HandlerContext, Reply, Route, Variant

__all__ = ["MISMATCH_MESSAGE", "VARIANT"]

MISMATCH_MESSAGE = (
    "Keys for idempotent requests can only be used with the same parameters they were first "
    "used with. Try using a key other than '{key}' if you meant to execute a different request."
)
#: ``resource`` in the URL -> (``object`` value, id prefix); others get a generic fallback.
KINDS: dict[str, tuple[str, str]] = {
    "customers": ("customer", "cus"),
    "payment_intents": ("payment_intent", "pi"),
    "charges": ("charge", "ch"),
    "refunds": ("refund", "re"),
    "products": ("product", "prod"),
    "prices": ("price", "price"),
    "invoices": ("invoice", "in"),
    "subscriptions": ("subscription", "sub"),
    "payment_methods": ("payment_method", "pm"),
    "setup_intents": ("setup_intent", "seti"),
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "payment_intents": {"status": "requires_payment_method"},
    "charges": {"status": "succeeded", "paid": True, "captured": True, "refunded": False},
    "refunds": {"status": "succeeded"},
    "products": {"active": True},
    "prices": {"active": True, "type": "one_time"},
}
_INT_FIELDS = frozenset({"amount", "application_fee_amount", "unit_amount", "quantity"})
_BOOL_FIELDS = frozenset({"active", "capture", "confirm", "off_session"})
_PI_ACTIONS = {"confirm": "succeeded", "capture": "succeeded", "cancel": "canceled"}
_KEY_RE = re.compile(r"(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+")
#: Code of the app's schema answer; the error shape turns it into Stripe's parameter errors.
_SCHEMA = "parameter_invalid"
_DOC_CODES = frozenset(
    {
        "idempotency_key_in_use",
        "parameter_invalid_integer",
        "parameter_missing",
        "parameter_unknown",
        "resource_missing",
    }
)


# -- error envelope ------------------------------------------------------------------------------


_WHERE = re.compile(r"(\(body\)|[^\s:]+): (.*)", re.DOTALL)


def _param_name(where: str) -> str | None:
    """``metadata/order`` -> ``metadata[order]`` (Stripe's way of naming nested params)."""
    if where == "(body)":
        return None
    head, *rest = where.split("/")
    return head + "".join(f"[{part}]" for part in rest)


def _schema_error(problem: str) -> tuple[str | None, str, str | None]:
    """A schema problem (``"where: message"``) as Stripe's ``(code, message, param)``."""
    found = _WHERE.fullmatch(problem)
    if found is None:
        return None, f"Invalid request: {problem}", None
    param = _param_name(found.group(1))
    detail = found.group(2)

    def nested(name: str) -> str:
        return f"{param}[{name}]" if param else name

    missing = re.fullmatch(r"'([^']+)' is a required property", detail)
    if missing:
        name = nested(missing.group(1))
        return "parameter_missing", f"Missing required param: {name}.", name
    unknown = re.fullmatch(r"Additional properties are not allowed \('([^']+)'.*", detail)
    if unknown:
        name = nested(unknown.group(1))
        return "parameter_unknown", f"Received unknown parameter: {name}", name
    integer = re.fullmatch(r"'(.*)' does not match '\^\[0-9\]\+\$'", detail)
    if integer:
        return "parameter_invalid_integer", f"Invalid integer: {integer.group(1)}", param
    return None, f"Invalid {param or 'request'}: {detail}", param


def _envelope(
    status: int, code: str | None, message: str, param: str | None, type: str | None, rid: str
) -> Reply:
    error: dict[str, Any] = {}
    if code:
        error["code"] = code
        if code in _DOC_CODES:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    error["message"] = message
    if param:
        error["param"] = param
    error["type"] = type or ("api_error" if status >= 500 else "invalid_request_error")
    return Reply(status, {"error": error}, headers=(("Request-Id", rid),))


def stripe_error_shape(
    status: int, code: str, message: str, *, type: str | None, request_id: str
) -> Reply:
    """Stripe's envelope: ``{"error": {"code", "doc_url", "message", "param", "type"}}``."""
    if code == _SCHEMA:
        final_code, message, param = _schema_error(message)
        return _envelope(status, final_code, message, param, type, request_id)
    return _envelope(status, code, message, None, type, request_id)


def authenticate(headers: Headers) -> str | None:
    """The secret key (``sk_test_...``) from ``Authorization: Bearer`` or Basic auth, or ``None``."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    token = value.strip()
    if scheme.lower() == "basic":
        try:
            token = base64.b64decode(token, validate=True).decode("ascii").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    return token if _KEY_RE.fullmatch(token) else None


# -- resources -----------------------------------------------------------------------------------


def kind_of(resource: str) -> tuple[str, str]:
    """``("customer", "cus")`` for ``customers``; unknown plurals lose their ``s``, prefix ``obj``."""
    if resource in KINDS:
        return KINDS[resource]
    return (resource[:-1] if resource.endswith("s") else resource), "obj"


def _typed(value: Any) -> Any:
    """Nested form values as Stripe returns them: ``a[0]=x&a[1]=y`` is a list."""
    if not isinstance(value, dict):
        return value
    if value and all(k.isdigit() for k in value):
        return [_typed(value[k]) for k in sorted(value, key=int)]
    return {k: _typed(v) for k, v in value.items()}


def _params(ctx: HandlerContext) -> dict[str, Any]:
    """The request's parameters, typed: known integers and booleans, lists; no ``expand``."""
    if not isinstance(ctx.data, dict):
        return {}
    out: dict[str, Any] = {}
    for name, value in ctx.data.items():
        if name in ("expand", "id", "object", "created"):
            continue
        if name in _INT_FIELDS and isinstance(value, str) and value.isdigit():
            out[name] = int(value)
        elif name in _BOOL_FIELDS and value in ("true", "false"):
            out[name] = value == "true"
        else:
            out[name] = value if name == "metadata" else _typed(value)
    return out


def _resource(ctx: HandlerContext) -> str:
    """``customers`` for ``/v1/customers/cus_1``."""
    return ctx.path.split("/")[2]


def _reply(ctx: HandlerContext, obj: Mapping[str, Any], status: int = 200) -> Reply:
    return Reply(status, dict(obj), headers=(("Request-Id", ctx.request_id),))


def _missing(ctx: HandlerContext, resource: str, obj_id: str) -> Reply:
    message = f"No such {kind_of(resource)[0]}: '{obj_id}'"
    return _envelope(404, "resource_missing", message, "id", None, ctx.request_id)


def create(ctx: HandlerContext) -> Reply:
    """``POST /v1/<resource>``: a new object with an id, ``object``, ``created`` and the params."""
    resource = _resource(ctx)
    singular, prefix = kind_of(resource)
    obj: dict[str, Any] = {
        "id": ctx.resources.new_id(prefix),
        "object": singular,
        "created": int(ctx.clock.now()),
        "livemode": False,
        "metadata": {},
        **_DEFAULTS.get(resource, {}),
        **_params(ctx),
    }
    ctx.resources.put(ctx.tenant, resource, obj)
    ctx.side_effect(f"{singular}.created", singular, obj["id"])
    ctx.emit(f"{singular}.created", obj)
    return _reply(ctx, obj)


def update(ctx: HandlerContext) -> Reply:
    """``POST /v1/<resource>/<id>``: Stripe's update (metadata merges; ``""`` unsets a key)."""
    resource, obj_id = _resource(ctx), ctx.params["id"]
    with ctx.resources.lock:
        obj = ctx.resources.get(ctx.tenant, resource, obj_id)
        if obj is None:
            return _missing(ctx, resource, obj_id)
        changes = _params(ctx)
        metadata = {**obj.get("metadata", {}), **changes.pop("metadata", {})}
        obj.update(changes, metadata={k: v for k, v in metadata.items() if v != ""})
    ctx.side_effect(f"{obj['object']}.updated", obj["object"], obj_id)
    ctx.emit(f"{obj['object']}.updated", obj)
    return _reply(ctx, obj)


def act(ctx: HandlerContext) -> Reply:
    """``POST /v1/payment_intents/<id>/confirm|capture|cancel``: moves the status."""
    obj_id, action = ctx.params["id"], ctx.params["action"]
    status = _PI_ACTIONS.get(action)
    if status is None:
        message = f"Unrecognized request URL (POST: {ctx.path})."
        return _envelope(404, None, message, None, None, ctx.request_id)
    with ctx.resources.lock:
        obj = ctx.resources.get(ctx.tenant, "payment_intents", obj_id)
        if obj is None:
            return _missing(ctx, "payment_intents", obj_id)
        obj["status"] = status
        if action != "cancel":
            obj["amount_received"] = obj.get("amount", 0)
    ctx.side_effect(f"payment_intent.{action}", "payment_intent", obj_id)
    ctx.emit(_PI_EVENTS[status], obj)
    return _reply(ctx, obj)


def retrieve(ctx: HandlerContext) -> Reply:
    resource, obj_id = _resource(ctx), ctx.params["id"]
    obj = ctx.resources.get(ctx.tenant, resource, obj_id)
    return _missing(ctx, resource, obj_id) if obj is None else _reply(ctx, obj)


def delete(ctx: HandlerContext) -> Reply:
    resource, obj_id = _resource(ctx), ctx.params["id"]
    if not ctx.resources.delete(ctx.tenant, resource, obj_id):
        return _missing(ctx, resource, obj_id)
    singular = kind_of(resource)[0]
    ctx.side_effect(f"{singular}.deleted", singular, obj_id)
    ctx.emit(f"{singular}.deleted", {"id": obj_id, "object": singular, "deleted": True})
    return _reply(ctx, {"id": obj_id, "object": singular, "deleted": True})


def list_all(ctx: HandlerContext) -> Reply:
    """``GET /v1/<resource>?limit=N``: newest first, Stripe's list object."""
    resource = _resource(ctx)
    limit_text = ctx.query.get("limit", "10")
    limit = int(limit_text) if limit_text.isdigit() else 10
    found = sorted(
        ctx.resources.all(ctx.tenant, resource), key=lambda o: (o["created"], o["id"]), reverse=True
    )
    page = {"object": "list", "data": found[:limit], "has_more": len(found) > limit}
    return _reply(ctx, {**page, "url": f"/v1/{resource}"})


# -- schemas -------------------------------------------------------------------------------------

_TEXT: dict[str, Any] = {"type": "string"}
_INTEGER: dict[str, Any] = {"type": "string", "pattern": "^[0-9]+$"}
_CURRENCY: dict[str, Any] = {"type": "string", "pattern": "^[a-zA-Z]{3}$"}
_BOOL: dict[str, Any] = {"enum": ["true", "false"]}
_METADATA: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_ANY: dict[str, Any] = {}
_COMMON = {"metadata": _METADATA, "expand": _ANY, "description": _TEXT}
#: resource -> (properties, required on create)
_FIELDS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "customers": (
        {"email": _TEXT, "name": _TEXT, "phone": _TEXT, "address": _ANY, "payment_method": _TEXT},
        (),
    ),
    "payment_intents": (
        {
            "amount": _INTEGER,
            "currency": _CURRENCY,
            "customer": _TEXT,
            "payment_method": _TEXT,
            "payment_method_types": _ANY,
            "confirm": _BOOL,
            "capture_method": _TEXT,
            "receipt_email": _TEXT,
        },
        ("amount", "currency"),
    ),
    "charges": (
        {"amount": _INTEGER, "currency": _CURRENCY, "customer": _TEXT, "source": _TEXT},
        ("amount", "currency"),
    ),
    "refunds": (
        {"charge": _TEXT, "payment_intent": _TEXT, "amount": _INTEGER, "reason": _TEXT},
        (),
    ),
    "products": ({"name": _TEXT, "active": _BOOL}, ("name",)),
    "prices": (
        {
            "currency": _CURRENCY,
            "unit_amount": _INTEGER,
            "product": _TEXT,
            "product_data": _ANY,
            "recurring": _ANY,
            "active": _BOOL,
        },
        ("currency",),
    ),
}


def _schema(resource: str, *, creating: bool) -> dict[str, Any]:
    fields, required = _FIELDS[resource]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**_COMMON, **fields},
        "additionalProperties": False,
    }
    if creating and required:
        schema["required"] = list(required)
    return schema


_ROUTES: tuple[Route, ...] = (
    *(Route(f"POST /v1/{r}", create, schema=_schema(r, creating=True), name=r) for r in _FIELDS),
    *(
        Route(f"POST /v1/{r}/{{id}}", update, schema=_schema(r, creating=False), name=f"{r}.update")
        for r in _FIELDS
    ),
    Route("POST /v1/payment_intents/{id}/{action}", act, name="payment_intents.action"),
    Route("POST /v1/{resource}", create, name="create"),
    Route("POST /v1/{resource}/{id}", update, name="update"),
    Route("GET /v1/{resource}", list_all, name="list"),
    Route("GET /v1/{resource}/{id}", retrieve, name="retrieve"),
    Route("DELETE /v1/{resource}/{id}", delete, name="delete"),
)

POLICY = Policy(
    key_header="Idempotency-Key",
    key_max_length=255,
    keyed_routes=("POST *",),
    scope=("credential",),
    fingerprint="canonical",
    fingerprint_route=True,
    on_mismatch="reject",
    mismatch=Answer(
        400,
        "",
        MISMATCH_MESSAGE,
        type="idempotency_error",
        headers=(("Stripe-Should-Retry", "false"),),
    ),
    on_in_flight="reject",
    in_flight=Answer(
        409,
        "idempotency_key_in_use",
        "The idempotency key provided is currently being used in another request. This occurs "
        "if your integration is making duplicate requests simultaneously.",
        type="invalid_request_error",
        headers=(("Stripe-Should-Retry", "true"),),
    ),
    invalid_key=Answer(
        400, "", "Invalid Idempotency-Key header: {key}.", type="invalid_request_error"
    ),
    cache_2xx=True,
    cache_4xx=True,
    cache_5xx=True,
    replay_headers=(("Idempotent-Replayed", "true"),),
    echo_key_header=True,
    ttl=86400.0,
    validate_before_idempotency=True,
)

VARIANT = Variant(
    name="stripe",
    description="Stripe API v1: Idempotency-Key on every POST, form params compared, 400 "
    "idempotency_error, 409 in use, 4xx and 500 replayed, 24 h per account.",
    policy=POLICY,
    routes=_ROUTES,
    error_shape=stripe_error_shape,
    authenticate=authenticate,
    unauthorized=Answer(
        401,
        "",
        "You did not provide an API key. You need to provide your API key in the Authorization "
        "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
        "https://stripe.com/docs/api#authentication for details, or we can help at "
        "https://support.stripe.com/.",
        type="invalid_request_error",
    ),
    not_found=Answer(
        404,
        "",
        "Unrecognized request URL ({key}). Please see https://stripe.com/docs or we can help at "
        "https://support.stripe.com/.",
        type="invalid_request_error",
    ),
    method_not_allowed=Answer(
        405, "", "Unrecognized request URL ({key}).", type="invalid_request_error"
    ),
    validation=Answer(400, _SCHEMA, "{key}", type="invalid_request_error"),
    too_large=Answer(413, "", "Request body too large: {key}.", type="invalid_request_error"),
    example_credential="sk_test_123",
    example=("POST", "/v1/customers", {"email": "jenny@example.com", "name": "Jenny Rosen"}),
    body_encoding="form",
)


# -- webhooks (docs/variants/stripe.md, "Events") ----------------------------------------------

from ..webhooks.spec import EventFacts, EventSpec  # noqa: E402

#: The event a payment intent's new status produces.
_PI_EVENTS = {"succeeded": "payment_intent.succeeded", "canceled": "payment_intent.canceled"}
#: Waits between attempts in test mode, "3 times over a few hours" (exact waits chosen).
TEST_MODE_SCHEDULE = (600.0, 3600.0, 7200.0)
#: Live mode: exponential back-off "for up to 3 days" (exact waits chosen), for
#: ``webhooks.configure(schedule=LIVE_MODE_SCHEDULE)``.
LIVE_MODE_SCHEDULE = (60.0, 300.0, 1800.0, 3600.0, 10800.0, 21600.0, 43200.0, 86400.0, 86400.0)
#: The ``api_version`` events carry (chosen: the version the fake's shapes follow).
EVENT_API_VERSION = "2024-06-20"


def stripe_event_envelope(facts: EventFacts) -> dict[str, Any]:
    """Stripe's event object: ``id`` ``evt_…``, ``object: "event"``, ``type``, ``created``,
    ``data.object``, ``livemode``, ``pending_webhooks``, ``request`` {``id``,
    ``idempotency_key``}."""
    return {
        "id": facts.event_id,
        "object": "event",
        "api_version": EVENT_API_VERSION,
        "created": int(facts.created),
        "data": {"object": dict(facts.obj)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": facts.request_id, "idempotency_key": facts.key},
        "type": facts.type,
    }


EVENTS = EventSpec(
    id_prefix="evt_",
    envelope=stripe_event_envelope,
    types=(
        "<object>.created",
        "<object>.updated",
        "<object>.deleted",
        "payment_intent.succeeded",
        "payment_intent.canceled",
    ),
    # Test mode (the fake's keys are sk_test_…) retries three times over a few hours.
    schedule=TEST_MODE_SCHEDULE,
    signature_header="Stripe-Signature",
    user_agent="Stripe/1.0 (+https://stripe.com/docs/webhooks)",
)
