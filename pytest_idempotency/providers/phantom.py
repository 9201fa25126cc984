"""``phantom``: Phantom, a managed moderation and economy bot (a product of Hydra Labs).

Header ``Idempotency-Key`` (optional, at most 128 characters) on every ``POST``, ``PATCH``,
``PUT`` and ``DELETE``; ``GET`` and ``HEAD`` ignore it. Keys are scoped to (token, key); the
fingerprint is method + path + a hash of the body bytes. A replay carries
``Idempotent-Replay: true``; the same key with another fingerprint gets 409
``idempotency_key_reused``. 2xx and 4xx responses are cached for 24 hours (validation runs
inside the idempotent execution, so a validation error is replayed too); 5xx are not.
Resources: economy balances and adjustments, member warnings, moderation cases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import Headers

from ..policy import Answer, Policy
from ..variant import HandlerContext, Reply, Route, Variant, bearer_tenant

__all__ = ["VARIANT"]

_TOKEN_PREFIXES = ("phk_live_", "phk_test_")
_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_REASON = {"type": "string", "minLength": 1, "maxLength": 512}
_CASE_ACTIONS = ["note", "warn", "mute", "kick", "ban"]


def _authenticate(headers: Headers) -> str | None:
    """``Authorization: Bearer phk_live_...`` (or ``phk_test_...``); the token is the tenant."""
    token = bearer_tenant(headers, "phk_")
    if token is None or not token.startswith(_TOKEN_PREFIXES) or token in _TOKEN_PREFIXES:
        return None
    return token


def _now(ctx: HandlerContext) -> int:
    return int(ctx.clock.now())


# -- economy ---------------------------------------------------------------------------------


def _adjust(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    user_id, delta = str(data["user_id"]), int(data["delta"])
    with ctx.resources.lock:
        row = ctx.resources.get(ctx.tenant, "balance", user_id)
        current = 0 if row is None else int(row["balance"])
        if current + delta < 0:
            return ctx.error(
                422,
                "insufficient_balance",
                f"User {user_id} has a balance of {current}; an adjustment of {delta} would "
                "make it negative.",
            )
        balance = current + delta
        ctx.resources.put(
            ctx.tenant, "balance", {"id": user_id, "user_id": user_id, "balance": balance}
        )
    adjustment_id = ctx.resources.new_id("adj")
    adjustment = {
        "id": adjustment_id,
        "object": "economy_adjustment",
        "user_id": user_id,
        "delta": delta,
        "reason": data.get("reason"),
        "balance": balance,
        "created_at": _now(ctx),
    }
    ctx.side_effect(
        "economy.adjusted", "economy_adjustment", adjustment_id, user_id=user_id, delta=delta
    )
    return Reply(200, adjustment)


def _balance(ctx: HandlerContext) -> Reply:
    user_id = ctx.params["user_id"]
    row = ctx.resources.get(ctx.tenant, "balance", user_id)
    return Reply(200, {"user_id": user_id, "balance": 0 if row is None else row["balance"]})


# -- members and cases -----------------------------------------------------------------------


def _warn(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    warning = {
        "id": ctx.resources.new_id("warn"),
        "object": "warning",
        "member_id": ctx.params["member_id"],
        "reason": data["reason"],
        "moderator_id": data.get("moderator_id"),
        "created_at": _now(ctx),
    }
    ctx.resources.put(ctx.tenant, "warning", warning)
    ctx.side_effect("warning.created", "warning", warning["id"], member_id=warning["member_id"])
    return Reply(201, warning)


def _warnings(ctx: HandlerContext) -> Reply:
    member_id = ctx.params["member_id"]
    found = [w for w in ctx.resources.all(ctx.tenant, "warning") if w["member_id"] == member_id]
    return Reply(200, {"object": "list", "data": found})


def _open_case(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    case = {
        "id": ctx.resources.new_id("case"),
        "object": "case",
        "member_id": data["member_id"],
        "reason": data["reason"],
        "action": data.get("action", "note"),
        "status": "open",
        "assignee": None,
        "created_at": _now(ctx),
    }
    ctx.resources.put(ctx.tenant, "case", case)
    ctx.side_effect("case.created", "case", case["id"])
    return Reply(201, case)


def _with_case(
    change: Callable[[HandlerContext, dict[str, Any]], Reply],
) -> Callable[[HandlerContext], Reply]:
    """A handler for ``/api/v1/cases/{case_id}...`` that answers 404 for an unknown case."""

    def handler(ctx: HandlerContext) -> Reply:
        case_id = ctx.params["case_id"]
        with ctx.resources.lock:
            case = ctx.resources.get(ctx.tenant, "case", case_id)
            if case is None:
                return ctx.error(404, "not_found", f"No case with id {case_id!r}.")
            return change(ctx, case)

    return handler


def _show_case(ctx: HandlerContext, case: dict[str, Any]) -> Reply:
    return Reply(200, case)


def _update_case(ctx: HandlerContext, case: dict[str, Any]) -> Reply:
    changes: dict[str, Any] = ctx.data
    updated = {**case, **changes}
    ctx.resources.put(ctx.tenant, "case", updated)
    ctx.side_effect("case.updated", "case", case["id"], changes=sorted(changes))
    return Reply(200, updated)


def _assign_case(ctx: HandlerContext, case: dict[str, Any]) -> Reply:
    updated = {**case, "assignee": ctx.data["moderator_id"]}
    ctx.resources.put(ctx.tenant, "case", updated)
    ctx.side_effect("case.assigned", "case", case["id"], assignee=updated["assignee"])
    return Reply(200, updated)


def _delete_case(ctx: HandlerContext, case: dict[str, Any]) -> Reply:
    ctx.resources.delete(ctx.tenant, "case", case["id"])
    ctx.side_effect("case.deleted", "case", case["id"])
    return Reply(200, {"id": case["id"], "object": "case", "deleted": True})


def _object(properties: dict[str, Any], required: list[str], **more: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **more,
    }


#: Chosen bound on ``delta``: the JSON-safe integer range (the page is silent on limits).
_DELTA = {"type": "integer", "minimum": -(2**53 - 1), "maximum": 2**53 - 1}
ADJUST_SCHEMA = _object({"user_id": _ID, "delta": _DELTA, "reason": _REASON}, ["user_id", "delta"])
WARNING_SCHEMA = _object({"reason": _REASON, "moderator_id": _ID}, ["reason"])
CASE_SCHEMA = _object(
    {"member_id": _ID, "reason": _REASON, "action": {"enum": _CASE_ACTIONS}},
    ["member_id", "reason"],
)
CASE_PATCH_SCHEMA = _object(
    {"status": {"enum": ["open", "closed"]}, "reason": _REASON, "action": {"enum": _CASE_ACTIONS}},
    [],
    minProperties=1,
)
ASSIGNEE_SCHEMA = _object({"moderator_id": _ID}, ["moderator_id"])


def _read(spec: str, handler: Callable[[HandlerContext], Reply]) -> tuple[Route, Route]:
    """A ``GET`` route and its ``HEAD`` twin (the server sends no body for ``HEAD``)."""
    return Route(f"GET {spec}", handler), Route(f"HEAD {spec}", handler)


VARIANT = Variant(
    name="phantom",
    description=(
        "Phantom: optional Idempotency-Key header (<= 128 chars) on POST/PATCH/PUT/DELETE, "
        "scope (token, key), 24 h, Idempotent-Replay: true, 409 idempotency_key_reused, "
        "2xx and 4xx cached, 5xx not."
    ),
    policy=Policy(
        key_header="Idempotency-Key",
        key_min_length=1,
        key_max_length=128,
        keyed_routes=(
            "POST /api/v1/*",
            "PATCH /api/v1/*",
            "PUT /api/v1/*",
            "DELETE /api/v1/*",
        ),
        key_required_routes=(),
        scope=("credential",),
        fingerprint="raw",
        fingerprint_route=True,
        on_mismatch="reject",
        mismatch=Answer(
            409,
            "idempotency_key_reused",
            "Idempotency-Key '{key}' was already used with a different method, path or body; "
            "use a new key for a different request.",
        ),
        on_in_flight="reject",
        in_flight=Answer(
            409,
            "idempotency_key_in_use",
            "A request with Idempotency-Key '{key}' is still being processed; retry it later "
            "with the same key.",
        ),
        invalid_key=Answer(400, "invalid_idempotency_key", "Idempotency-Key is not valid: {key}."),
        cache_2xx=True,
        cache_4xx=True,
        cache_5xx=False,
        replay_headers=(("Idempotent-Replay", "true"),),
        ttl=86400.0,
        validate_before_idempotency=False,
    ),
    routes=(
        Route("POST /api/v1/economy/adjust", _adjust, schema=ADJUST_SCHEMA, name="adjust"),
        *_read("/api/v1/economy/balance/{user_id}", _balance),
        Route(
            "POST /api/v1/members/{member_id}/warnings", _warn, schema=WARNING_SCHEMA, name="warn"
        ),
        *_read("/api/v1/members/{member_id}/warnings", _warnings),
        Route("POST /api/v1/cases", _open_case, schema=CASE_SCHEMA, name="open_case"),
        *_read("/api/v1/cases/{case_id}", _with_case(_show_case)),
        Route(
            "PATCH /api/v1/cases/{case_id}",
            _with_case(_update_case),
            schema=CASE_PATCH_SCHEMA,
            name="update_case",
        ),
        Route(
            "PUT /api/v1/cases/{case_id}/assignee",
            _with_case(_assign_case),
            schema=ASSIGNEE_SCHEMA,
            name="assign_case",
        ),
        Route("DELETE /api/v1/cases/{case_id}", _with_case(_delete_case), name="delete_case"),
    ),
    authenticate=_authenticate,
    unauthorized=Answer(
        401,
        "unauthorized",
        "Missing or malformed token; send Authorization: Bearer phk_live_... (or phk_test_...).",
    ),
    validation=Answer(400, "validation_error", "The request body is invalid: {key}"),
    example_credential="phk_test_4f9c2a7e1b3d5068",
    example=(
        "POST",
        "/api/v1/economy/adjust",
        {"user_id": "123", "delta": 500, "reason": "Tournament prize"},
    ),
)
