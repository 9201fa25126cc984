"""``ietf``: the IETF draft "The Idempotency-Key HTTP Header Field" (draft-ietf-httpapi-
idempotency-key-header), as a small orders API.

The key is a Structured Field string (``Idempotency-Key: "8e03978e-..."``; an unquoted value is
an invalid key -> 400); ``POST`` and ``PATCH`` honour it; ``POST /orders`` requires it (400
"Idempotency-Key is missing"); a reused key with another payload gets 422 "Idempotency-Key is
already used"; a duplicate while the original is in progress gets 409 "A request is outstanding
for this Idempotency-Key"; every error is ``application/problem+json``. Published expiry: 24 h.
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import Headers

from ..policy import Answer, Policy
from ..variant import HandlerContext, Reply, Route, Variant, bearer_tenant

__all__ = ["PROBLEM_TYPE", "TITLES", "VARIANT", "problem_shape"]

#: The ``type`` of the three idempotency problems (the draft's examples use this URI).
PROBLEM_TYPE = "https://developer.example.com/idempotency"
#: Answer code -> problem ``title``. The first three are the draft's; the rest are chosen.
TITLES: dict[str, str] = {
    "idempotency-key-missing": "Idempotency-Key is missing",
    "idempotency-key-reused": "Idempotency-Key is already used",
    "idempotency-key-outstanding": "A request is outstanding for this Idempotency-Key",
    "idempotency-key-invalid": "Idempotency-Key is invalid",
    "invalid-body": "The request body is invalid",
    "unauthorized": "Unauthorized",
    "not-found": "Not Found",
    "method-not-allowed": "Method Not Allowed",
    "too-large": "Content Too Large",
    "order-not-found": "Order not found",
    "injected_fault": "Injected fault",
}
_IDEMPOTENCY_CODES = frozenset(c for c in TITLES if c.startswith("idempotency-key-"))


def problem_shape(
    status: int, code: str, message: str, *, type: str | None, request_id: str
) -> Reply:
    """RFC 9457 problem details: ``{"type", "title", "detail", "status"}``."""
    if type is None or ":" not in type:
        type = PROBLEM_TYPE if code in _IDEMPOTENCY_CODES else "about:blank"
    problem = {"type": type, "title": TITLES.get(code, code), "detail": message, "status": status}
    return Reply(status, problem, content_type="application/problem+json")


def authenticate(headers: Headers) -> str | None:
    """Any ``Authorization: Bearer <token>``; the token is the client (the composite key)."""
    return bearer_tenant(headers)


# -- orders --------------------------------------------------------------------------------------


def _order_missing(ctx: HandlerContext, order_id: str) -> Reply:
    return ctx.error(404, "order-not-found", f"There is no order {order_id!r}.")


def create_order(ctx: HandlerContext) -> Reply:
    """``POST /orders``: 201 with the order and a ``Location``."""
    data = ctx.data if isinstance(ctx.data, dict) else {}
    order = {
        "id": ctx.resources.new_id("ord"),
        "status": "created",
        **data,
        "created_at": ctx.clock.isoformat(),
    }
    ctx.resources.put(ctx.tenant, "order", order)
    ctx.side_effect("order.created", "order", order["id"])
    return Reply(201, order, headers=(("Location", f"/orders/{order['id']}"),))


def patch_order(ctx: HandlerContext) -> Reply:
    """``PATCH /orders/{id}``: a JSON merge patch (``null`` removes a field)."""
    order_id = ctx.params["id"]
    with ctx.resources.lock:
        order = ctx.resources.get(ctx.tenant, "order", order_id)
        if order is None:
            return _order_missing(ctx, order_id)
        changes = ctx.data if isinstance(ctx.data, dict) else {}
        for name, value in changes.items():
            if value is None:
                order.pop(name, None)
            else:
                order[name] = value
    ctx.side_effect("order.updated", "order", order_id, fields=sorted(changes))
    return Reply(200, order)


def get_order(ctx: HandlerContext) -> Reply:
    order = ctx.resources.get(ctx.tenant, "order", ctx.params["id"])
    return _order_missing(ctx, ctx.params["id"]) if order is None else Reply(200, order)


_LINE: dict[str, Any] = {
    "item": {"type": "string", "minLength": 1},
    "quantity": {"type": "integer", "minimum": 1},
    "note": {"type": "string"},
}
ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _LINE,
    "required": ["item", "quantity"],
    "additionalProperties": False,
}
PATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "quantity": {"type": "integer", "minimum": 1},
        "note": {"type": ["string", "null"]},
        "status": {"enum": ["created", "cancelled"]},
    },
    "additionalProperties": False,
    "minProperties": 1,
}

_DETAIL = "This operation is idempotent and it requires correct usage of Idempotency Key."

POLICY = Policy(
    key_header="Idempotency-Key",
    key_format="sf-string",
    key_min_length=1,
    key_max_length=255,
    keyed_routes=("POST *", "PATCH *"),
    key_required_routes=("POST /orders",),
    scope=("credential",),
    fingerprint="canonical",
    fingerprint_route=True,
    on_mismatch="reject",
    mismatch=Answer(
        422,
        "idempotency-key-reused",
        f"{_DETAIL} Idempotency Key MUST not be reused across different payloads of this "
        "operation.",
    ),
    on_in_flight="reject",
    in_flight=Answer(
        409,
        "idempotency-key-outstanding",
        "A request with the same Idempotency-Key for the same operation is being processed or "
        "is outstanding.",
    ),
    missing_key=Answer(400, "idempotency-key-missing", _DETAIL),
    invalid_key=Answer(400, "idempotency-key-invalid", "{key}"),
    cache_2xx=True,
    cache_4xx=True,
    cache_5xx=False,
    replay_headers=(),
    ttl=86400.0,
    validate_before_idempotency=True,
)

VARIANT = Variant(
    name="ietf",
    description="IETF draft Idempotency-Key: sf-string key on POST/PATCH, 400 missing, 422 "
    "reused, 409 outstanding, problem+json, 24 h published expiry.",
    policy=POLICY,
    routes=(
        Route("POST /orders", create_order, schema=ORDER_SCHEMA, name="orders.create"),
        Route("GET /orders/{id}", get_order, name="orders.get"),
        Route("PATCH /orders/{id}", patch_order, schema=PATCH_SCHEMA, name="orders.patch"),
    ),
    error_shape=problem_shape,
    authenticate=authenticate,
    unauthorized=Answer(
        401, "unauthorized", "Send Authorization: Bearer <token>; the token identifies the client."
    ),
    not_found=Answer(404, "not-found", "No route for {key}."),
    method_not_allowed=Answer(405, "method-not-allowed", "Method not allowed: {key}."),
    validation=Answer(400, "invalid-body", "{key}"),
    too_large=Answer(413, "too-large", "The request body is too large: {key}."),
    example_credential="client-1",
    example=("POST", "/orders", {"item": "book", "quantity": 1}),
    body_encoding="json",
)
