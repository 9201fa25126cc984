"""``letmepost``: LetMePost, one post fanned out to many social accounts.

Header ``Idempotency-Key`` on ``POST /v1/posts``. The key covers the whole batch: a retry with
the same API key, route, key and body (SHA-256 of the exact bytes) returns the first response
verbatim (same status, same envelope, same per-target ``results[]``), even after a partial
success, so each target publishes at most once. Another body is ``idempotency_conflict``.
Records live 24 hours; different keys never dedupe on content.

Accounts live per API key. An unknown ``accountId`` is created on first use, connected, unless
its id starts with ``disconnected_`` (the target fails for good) or ``rate_limited_`` (the
target fails, retryable); ``POST /v1/accounts`` and ``PATCH /v1/accounts/{id}`` set a
``state`` explicitly. ``idempotent_api.faults.partial_batch({"<accountId>": "transient"})``
fails chosen targets once.
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import Headers

from ..policy import Answer, Policy
from ..variant import HandlerContext, Reply, Route, Variant, bearer_tenant

__all__ = ["ACCOUNT_STATES", "VARIANT"]

#: Account state -> (error code, retryable) of a target on such an account; ``None``: publishes.
ACCOUNT_STATES: dict[str, tuple[str, bool] | None] = {
    "connected": None,
    "disconnected": ("account_disconnected", False),
    "rate_limited": ("rate_limited", True),
}
#: An unknown account id starting with one of these is created in that state.
_STATE_PREFIXES = {"disconnected_": "disconnected", "rate_limited_": "rate_limited"}
#: Scripted ``partial_batch`` failures: kind -> (error code, retryable).
_SCRIPTED = {"transient": ("platform_unavailable", True), "permanent": ("platform_rejected", False)}
_MESSAGES = {
    "account_disconnected": "The account is disconnected; reconnect it, then post again with a "
    "new Idempotency-Key.",
    "rate_limited": "The platform rate-limited this account; retry this target later with a new "
    "Idempotency-Key.",
    "platform_unavailable": "The platform did not answer; retry this target with a new "
    "Idempotency-Key.",
    "platform_rejected": "The platform rejected the post.",
}
_ACCOUNT_ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"^[A-Za-z0-9_.:-]+$"}


def _error_shape(
    status: int, code: str, message: str, *, type: str | None, request_id: str
) -> Reply:
    """LetMePost's envelope (chosen): ``{"error": {"code", "message", "requestId"}}``."""
    error: dict[str, Any] = {"code": code, "message": message, "requestId": request_id}
    if type is not None:
        error["type"] = type
    return Reply(status, {"error": error})


def _authenticate(headers: Headers) -> str | None:
    """``Authorization: Bearer lmp_...``; the API key is the tenant."""
    token = bearer_tenant(headers, "lmp_")
    return None if token is None or token == "lmp_" else token


def _iso(ctx: HandlerContext) -> str:
    return ctx.clock.now_datetime().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _account(ctx: HandlerContext, account_id: str, *, keep: bool = True) -> dict[str, Any]:
    """The caller's account; an unknown one is created (``keep``) in the state its id's
    prefix names, else ``connected``."""
    with ctx.resources.lock:
        found = ctx.resources.get(ctx.tenant, "account", account_id)
        if found is not None:
            return found
        state = next(
            (s for prefix, s in _STATE_PREFIXES.items() if account_id.startswith(prefix)),
            "connected",
        )
        account = {"id": account_id, "object": "account", "platform": None, "state": state}
        return ctx.resources.put(ctx.tenant, "account", account) if keep else account


def _partial_status(ctx: HandlerContext) -> int:
    status = ctx.variant.policy.extra.get("partial_status", 207)
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 299:
        raise ValueError(
            f"letmepost: extra['partial_status'] must be a 2xx status such as 207 or 200 "
            f'(got {status!r}); set the policy option extra={{"partial_status": 207}} (the '
            "idempotency marker in pytest, --set on the standalone server)"
        )
    return status


def _all_failed_status(ctx: HandlerContext, partial_status: int) -> int:
    """The status when every target failed (chosen: the partial status, 207): the envelope
    still reports each target. ``extra={"all_failed_status": 502}`` picks another."""
    status = ctx.variant.policy.extra.get("all_failed_status", partial_status)
    valid = isinstance(status, int) and not isinstance(status, bool)
    if not valid or not (200 <= status <= 299 or 400 <= status <= 599):
        raise ValueError(
            f"letmepost: extra['all_failed_status'] must be a 2xx, 4xx or 5xx status such as "
            f"207 or 502 (got {status!r}); set the policy option "
            'extra={"all_failed_status": 207} (the idempotency marker in pytest, --set on the '
            "standalone server)"
        )
    return int(status)


def _publish(ctx: HandlerContext, post_id: str, account_id: str) -> dict[str, Any]:
    """Publish to one target (one side effect) or describe why it failed."""
    account = _account(ctx, account_id)
    failure = ACCOUNT_STATES.get(str(account["state"]))
    scripted = ctx.target_fails(account_id)
    if scripted is not None:
        failure = _SCRIPTED[scripted]
    if failure is not None:
        code, retryable = failure
        error = {"code": code, "message": _MESSAGES[code], "retryable": retryable}
        return {"accountId": account_id, "status": "failed", "error": error}
    platform_post_id = ctx.resources.new_id("pp")
    ctx.side_effect(
        "post.published",
        "target",
        f"{post_id}/{account_id}",
        accountId=account_id,
        platformPostId=platform_post_id,
    )
    return {
        "accountId": account_id,
        "status": "published",
        "platformPostId": platform_post_id,
        "publishedAt": _iso(ctx),
    }


def _create_post(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    partial_status = _partial_status(ctx)
    post_id = ctx.resources.new_id("post")
    results = [_publish(ctx, post_id, str(t["accountId"])) for t in data["targets"]]
    published = sum(1 for r in results if r["status"] == "published")
    status = (
        "published"
        if published == len(results)
        else "failed"
        if published == 0
        else "partially_published"
    )
    post = {
        "id": post_id,
        "object": "post",
        "status": status,
        "text": data["text"],
        "createdAt": _iso(ctx),
        "summary": {
            "total": len(results),
            "published": published,
            "failed": len(results) - published,
        },
        "results": results,
    }
    ctx.resources.put(ctx.tenant, "post", post)
    for result in results:
        ctx.emit(f"post.{result['status']}", {"postId": post_id, **result})
    if status == "failed":
        return Reply(_all_failed_status(ctx, partial_status), post)
    return Reply(201 if status == "published" else partial_status, post)


def _get_post(ctx: HandlerContext) -> Reply:
    post = ctx.resources.get(ctx.tenant, "post", ctx.params["post_id"])
    if post is None:
        return ctx.error(404, "not_found", f"No post with id {ctx.params['post_id']!r}.")
    return Reply(200, post)


def _create_account(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    with ctx.resources.lock:
        account_id = str(data.get("id") or ctx.resources.new_id("acc"))
        if ctx.resources.exists(ctx.tenant, "account", account_id):
            return ctx.error(
                409,
                "account_exists",
                f"Account {account_id!r} exists; change its state with PATCH "
                f"/v1/accounts/{account_id}.",
            )
        account = {
            "id": account_id,
            "object": "account",
            "platform": data.get("platform"),
            "state": data.get("state", "connected"),
        }
        ctx.resources.put(ctx.tenant, "account", account)
    ctx.side_effect("account.created", "account", account_id, state=account["state"])
    return Reply(201, account)


def _update_account(ctx: HandlerContext) -> Reply:
    account_id = ctx.params["account_id"]
    with ctx.resources.lock:
        account = {**_account(ctx, account_id), **ctx.data}
        ctx.resources.put(ctx.tenant, "account", account)
    ctx.side_effect("account.updated", "account", account_id, state=account["state"])
    return Reply(200, account)


def _get_account(ctx: HandlerContext) -> Reply:
    return Reply(200, _account(ctx, ctx.params["account_id"], keep=False))


def _list_accounts(ctx: HandlerContext) -> Reply:
    return Reply(200, {"object": "list", "data": ctx.resources.all(ctx.tenant, "account")})


POST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "targets": {
            "type": "array",
            "minItems": 1,
            "maxItems": 25,
            "uniqueItems": True,
            "items": {
                "type": "object",
                "properties": {"accountId": _ACCOUNT_ID},
                "required": ["accountId"],
                "additionalProperties": False,
            },
        },
        "text": {"type": "string", "minLength": 1, "maxLength": 10000},
    },
    "required": ["targets", "text"],
    "additionalProperties": False,
}
_STATE = {"enum": sorted(ACCOUNT_STATES)}
_PLATFORM = {"type": "string", "minLength": 1, "maxLength": 64}
ACCOUNT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"id": _ACCOUNT_ID, "platform": _PLATFORM, "state": _STATE},
    "additionalProperties": False,
}
ACCOUNT_PATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"platform": _PLATFORM, "state": _STATE},
    "minProperties": 1,
    "additionalProperties": False,
}

VARIANT = Variant(
    name="letmepost",
    description=(
        "LetMePost: Idempotency-Key header on POST /v1/posts covers the whole multi-target "
        "batch; verbatim replay (also of a partial success); idempotency_conflict; 24 h."
    ),
    policy=Policy(
        key_header="Idempotency-Key",
        keyed_routes=("POST /v1/posts",),
        key_required_routes=(),
        scope=("credential", "endpoint"),
        fingerprint="raw",
        fingerprint_route=True,
        on_mismatch="reject",
        mismatch=Answer(
            409,
            "idempotency_conflict",
            "Idempotency-Key '{key}' was first used with a different request body; use a new "
            "key to publish something different.",
        ),
        on_in_flight="reject",
        in_flight=Answer(
            409,
            "idempotency_in_progress",
            "A request with Idempotency-Key '{key}' is still publishing; retry it later with "
            "the same key and body.",
        ),
        invalid_key=Answer(400, "invalid_idempotency_key", "Idempotency-Key is not valid: {key}."),
        missing_key=Answer(
            400, "idempotency_key_missing", "POST /v1/posts requires an Idempotency-Key header."
        ),
        cache_2xx=True,
        cache_4xx=True,
        cache_5xx=True,
        replay_headers=(),
        ttl=86400.0,
        validate_before_idempotency=True,
    ),
    routes=(
        Route("POST /v1/posts", _create_post, schema=POST_SCHEMA, name="create_post"),
        Route("GET /v1/posts/{post_id}", _get_post, name="get_post"),
        Route("POST /v1/accounts", _create_account, schema=ACCOUNT_SCHEMA, name="create_account"),
        Route("GET /v1/accounts", _list_accounts, name="list_accounts"),
        Route("GET /v1/accounts/{account_id}", _get_account, name="get_account"),
        Route(
            "PATCH /v1/accounts/{account_id}",
            _update_account,
            schema=ACCOUNT_PATCH_SCHEMA,
            name="update_account",
        ),
    ),
    error_shape=_error_shape,
    authenticate=_authenticate,
    unauthorized=Answer(
        401, "unauthorized", "Missing or malformed API key; send Authorization: Bearer lmp_..."
    ),
    validation=Answer(400, "validation_error", "The request body is invalid: {key}"),
    example_credential="lmp_test_8c1f3e5a7b9d2046",
    example=("POST", "/v1/posts", {"targets": [{"accountId": "acc_twitter"}], "text": "shipped"}),
)


# -- webhooks (docs/variants/letmepost.md, "Events") -------------------------------------------

from ..webhooks.spec import EventFacts, EventSpec  # noqa: E402


def _letmepost_envelope(facts: EventFacts) -> dict[str, Any]:
    """Chosen, camelCase like the API: ``{"id": "evt_…", "type", "createdAt", "data"}``; one
    event per target (``post.published`` or ``post.failed``)."""
    return {
        "id": facts.event_id,
        "type": facts.type,
        "createdAt": facts.created_iso,
        "data": dict(facts.obj),
    }


EVENTS = EventSpec(
    id_prefix="evt_",
    envelope=_letmepost_envelope,
    types=("post.published", "post.failed"),
    schedule=(30.0, 120.0, 600.0, 3600.0, 21600.0),
    signature_header="LetMePost-Signature",
)
