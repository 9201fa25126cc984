"""Acme's own orders API, described as a pytest-idempotency variant.

Nothing here touches the plugin's engine: a policy (what the API promises about keys), a few
routes with JSON Schemas, Acme's error envelope and its credential check. Registered once, the
variant is selected like a built-in one: ``@pytest.mark.idempotency(variant="acme-orders")``.
"""

from __future__ import annotations

from typing import Any

from pytest_idempotency import (
    Answer,
    HandlerContext,
    Policy,
    Reply,
    Route,
    Variant,
    bearer_tenant,
    default_create_handler,
    register_variant,
)

ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "sku": {"type": "string", "minLength": 1},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
    },
    "required": ["sku", "quantity"],
    "additionalProperties": False,
}
REFUND_SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "integer", "minimum": 1}},
    "required": ["amount"],
    "additionalProperties": False,
}


def acme_error(status: int, code: str, message: str, *, type: str | None, request_id: str) -> Reply:
    """Acme's envelope: ``{"errors": [{"code", "message"}], "trace_id"}``."""
    return Reply(status, {"errors": [{"code": code, "message": message}], "trace_id": request_id})


def read_order(ctx: HandlerContext) -> Reply:
    order = ctx.resources.get(ctx.tenant, "order", ctx.params["id"])
    if order is None:
        return ctx.error(404, "order_not_found", f"No order {ctx.params['id']}.")
    return Reply(200, order)


def refund_order(ctx: HandlerContext) -> Reply:
    order = ctx.resources.get(ctx.tenant, "order", ctx.params["id"])
    if order is None:
        return ctx.error(404, "order_not_found", f"No order {ctx.params['id']}.")
    refund: dict[str, Any] = {
        "id": ctx.resources.new_id("rf"),
        "order": order["id"],
        "amount": ctx.data["amount"],
    }
    ctx.resources.put(ctx.tenant, "refund", refund)
    ctx.side_effect("refund.created", "refund", refund["id"], order=order["id"])
    return Reply(201, refund)


ACME_ORDERS = Variant(
    name="acme-orders",
    description="Acme orders API: Idempotency-Key on creates and refunds, 422 on reuse, 1 h.",
    policy=Policy(
        key_header="Idempotency-Key",
        keyed_routes=("POST /orders", "POST /orders/{id}/refunds"),
        key_required_routes=("POST /orders/{id}/refunds",),
        mismatch=Answer(
            422, "idempotency_key_reused", "Key '{key}' was already used for another request."
        ),
        in_flight=Answer(409, "request_in_progress", "Key '{key}' is still being processed."),
        missing_key=Answer(400, "idempotency_key_missing", "Refunds need an Idempotency-Key."),
        replay_headers=(("Idempotent-Replayed", "true"),),
        cache_5xx=False,
        ttl=3600,
    ),
    routes=(
        Route("POST /orders", default_create_handler("order", "ord"), schema=ORDER_SCHEMA),
        Route("GET /orders/{id}", read_order),
        Route("POST /orders/{id}/refunds", refund_order, schema=REFUND_SCHEMA),
    ),
    error_shape=acme_error,
    authenticate=lambda headers: bearer_tenant(headers, prefix="acme_"),
    unauthorized=Answer(401, "unauthenticated", "Send Authorization: Bearer acme_<key>."),
    validation=Answer(400, "invalid_request", "The request is invalid: {key}"),
    example_credential="acme_test_key",
    example=("POST", "/orders", {"sku": "tea-earl-grey", "quantity": 2}),
)

register_variant(ACME_ORDERS, replace=True)
