"""``whet``: Whet's Agent API (the "Idempotency" page).

Every mutating POST takes a body field ``idempotency_key`` of 16-128 characters; the scope is
(organization, endpoint, key). A replay returns the same ``run_id`` / ``pipeline_id`` / artifact
and repeats no side effect, also while the original run is still running (no 409). Keys are not
bound to the body: a valid other body replays the original, an invalid one gets
``validation_failed``. A record lives as long as its resource: after a delete the replay is 404
``not_found``. GET, PATCH and DELETE ignore the field. ``POST /fetch`` also has a response cache
on ``(url, intent)``.

Runs are ``running`` until the fake clock passes ``policy.extra["run_seconds"]`` (chosen: 120).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import Headers

from ..policy import Answer, Policy
from ..variant import HandlerContext, Reply, Route, Variant, bearer_tenant

__all__ = ["DEFAULT_FETCH_CACHE_SECONDS", "DEFAULT_RUN_SECONDS", "VARIANT", "organization_of"]

#: How long a run stays ``running`` on the fake clock (``extra={"run_seconds": ...}``).
DEFAULT_RUN_SECONDS = 120.0
#: How long a ``(url, intent)`` pair stays in the ``/fetch`` response cache.
DEFAULT_FETCH_CACHE_SECONDS = 3600.0

_KEY: dict[str, Any] = {"type": "string"}
_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}


def _schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": {**properties, "idempotency_key": _KEY},
    }


_FROM_INTENT = _schema(
    ["handle", "intent"], handle={"type": "string", "minLength": 1, "maxLength": 64}, intent=_TEXT
)
_DRAFT = {**_schema([], instructions={"type": "string"}), "type": ["object", "null"]}
_PUBLISH = _schema(["account_id"], account_id=_TEXT)
_CONNECT = _schema(["provider", "handle"], provider=_TEXT, handle=_TEXT)
_FETCH = _schema(["url", "intent"], url={"type": "string", "pattern": "^https?://"}, intent=_TEXT)
_PATCH: dict[str, Any] = {
    "type": "object",
    "properties": {"intent": _TEXT, "status": {"enum": ["active", "paused"]}},
    "anyOf": [{"required": ["intent"]}, {"required": ["status"]}],
}


def organization_of(headers: Headers) -> str | None:
    """The organization of ``Authorization: Bearer <org>.<secret>``: the part before the first
    dot (a token without a dot is its own organization); ``None`` when missing or malformed."""
    token = bearer_tenant(headers)
    if token is None:
        return None
    organization = token.partition(".")[0]
    return organization or None


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _view(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of a stored object: ``object`` first, then its public fields (the
    store's ``id`` and ``_internal`` fields are dropped)."""
    return {"object": kind, **{k: v for k, v in obj.items() if k != "id" and k[0] != "_"}}


def _option(ctx: HandlerContext, name: str, default: float) -> float:
    return float(ctx.variant.policy.extra.get(name, default))


def _missing(ctx: HandlerContext, what: str, obj_id: str) -> Reply:
    return ctx.error(404, "not_found", f"No {what} with id {obj_id!r} in this organization.")


def _invalid(ctx: HandlerContext, message: str) -> Reply:
    return ctx.error(422, "validation_failed", message)


def _getter(kind: str) -> Callable[[HandlerContext], Reply]:
    def get(ctx: HandlerContext) -> Reply:
        obj = ctx.resources.get(ctx.tenant, kind, ctx.params["id"])
        if obj is None:
            return _missing(ctx, kind, ctx.params["id"])
        return Reply(200, _view(kind, obj))

    return get


# -- pipelines and runs ----------------------------------------------------------------------------


def _from_intent(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    res, org, now = ctx.resources, ctx.tenant, ctx.clock.now()
    pipeline_id, run_id, post_id = res.new_id("pl"), res.new_id("run"), res.new_id("post")
    seconds = _option(ctx, "run_seconds", DEFAULT_RUN_SECONDS)
    run = {"id": run_id, "run_id": run_id, "pipeline_id": pipeline_id, "_started": now}
    run["_finishes"] = now + seconds
    post = {"id": post_id, "post_id": post_id, "pipeline_id": pipeline_id, "status": "new"}
    post["title"] = f"Idea for {data['handle']}"
    pipeline = {
        "id": pipeline_id,
        "pipeline_id": pipeline_id,
        "run_id": run_id,
        "handle": data["handle"],
        "intent": data["intent"],
        "status": "active",
        "created_at": _iso(now),
        "updated_at": _iso(now),
    }
    res.put(org, "run", run)
    res.put(org, "post", post)
    res.put(org, "pipeline", pipeline)
    ctx.side_effect("pipeline.created", "pipeline", pipeline_id, run_id=run_id)
    ctx.bind_record_to("pipeline", pipeline_id)
    return Reply(201, _view("pipeline", pipeline))


def _get_run(ctx: HandlerContext) -> Reply:
    run = ctx.resources.get(ctx.tenant, "run", ctx.params["id"])
    if run is None:
        return _missing(ctx, "run", ctx.params["id"])
    done = ctx.clock.now() >= run["_finishes"]
    view = _view("run", run)
    view.update(
        status="succeeded" if done else "running",
        started_at=_iso(run["_started"]),
        finished_at=_iso(run["_finishes"]) if done else None,
    )
    return Reply(200, view)


def _inbox(ctx: HandlerContext) -> Reply:
    pipeline_id = ctx.params["id"]
    if not ctx.resources.exists(ctx.tenant, "pipeline", pipeline_id):
        return _missing(ctx, "pipeline", pipeline_id)
    posts = [
        _view("post", p)
        for p in ctx.resources.all(ctx.tenant, "post")
        if p["pipeline_id"] == pipeline_id
    ]
    return Reply(200, {"object": "list", "pipeline_id": pipeline_id, "data": posts})


def _patch_pipeline(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    with ctx.resources.lock:
        pipeline = ctx.resources.get(ctx.tenant, "pipeline", ctx.params["id"])
        if pipeline is None:
            return _missing(ctx, "pipeline", ctx.params["id"])
        pipeline.update({k: data[k] for k in ("intent", "status") if k in data})
        pipeline["updated_at"] = _iso(ctx.clock.now())
        view = _view("pipeline", pipeline)
    ctx.side_effect("pipeline.updated", "pipeline", pipeline["id"])
    return Reply(200, view)


def _delete_pipeline(ctx: HandlerContext) -> Reply:
    """Deletes the pipeline with its runs, posts and artifacts."""
    pipeline_id, res, org = ctx.params["id"], ctx.resources, ctx.tenant
    with res.lock:
        if not res.delete(org, "pipeline", pipeline_id):
            return _missing(ctx, "pipeline", pipeline_id)
        for kind in ("run", "post", "artifact"):
            for obj in res.all(org, kind):
                if obj["pipeline_id"] == pipeline_id:
                    res.delete(org, kind, obj["id"])
    ctx.side_effect("pipeline.deleted", "pipeline", pipeline_id)
    return Reply(200, {"object": "pipeline", "pipeline_id": pipeline_id, "deleted": True})


# -- posts, artifacts, accounts, fetch -------------------------------------------------------------


def _draft(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data or {}
    res, org = ctx.resources, ctx.tenant
    with res.lock:
        post = res.get(org, "post", ctx.params["id"])
        if post is None:
            return _missing(ctx, "post", ctx.params["id"])
        artifact_id = res.new_id("art")
        artifact = {
            "id": artifact_id,
            "artifact_id": artifact_id,
            "post_id": post["post_id"],
            "pipeline_id": post["pipeline_id"],
            "status": "draft",
            "text": f"Draft of {post['title']}. {data.get('instructions', '')}".strip(),
            "created_at": _iso(ctx.clock.now()),
        }
        res.put(org, "artifact", artifact)
        post["status"] = "drafted"
    ctx.side_effect("artifact.drafted", "artifact", artifact_id, post_id=post["post_id"])
    ctx.bind_record_to("artifact", artifact_id)
    return Reply(201, _view("artifact", artifact))


def _publish(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    res, org, artifact_id = ctx.resources, ctx.tenant, ctx.params["id"]
    with res.lock:
        artifact = res.get(org, "artifact", artifact_id)
        if artifact is None:
            return _missing(ctx, "artifact", artifact_id)
        account = res.get(org, "account", data["account_id"])
        if account is None:
            return _invalid(
                ctx,
                f"account_id {data['account_id']!r} is not a connected account of this "
                "organization; connect it first with POST /accounts/connect.",
            )
        if artifact["status"] == "published":
            return _invalid(
                ctx,
                f"artifact {artifact_id!r} is already published; replay the original "
                "idempotency_key to read the publication.",
            )
        artifact.update(
            status="published",
            account_id=account["account_id"],
            published_at=_iso(ctx.clock.now()),
            url=f"https://{account['provider']}.example/{account['handle']}/{artifact_id}",
        )
        view = _view("artifact", artifact)
    ctx.side_effect("artifact.published", "artifact", artifact_id, account_id=account["id"])
    ctx.bind_record_to("artifact", artifact_id)
    return Reply(200, view)


def _connect(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    res, org = ctx.resources, ctx.tenant
    with res.lock:
        for account in res.all(org, "account"):
            if (account["provider"], account["handle"]) == (data["provider"], data["handle"]):
                return _invalid(
                    ctx,
                    f"{data['provider']} account {data['handle']!r} is already connected as "
                    f"{account['account_id']!r}; disconnect it first or reuse that account_id.",
                )
        account_id = res.new_id("acct")
        account = {
            "id": account_id,
            "account_id": account_id,
            "provider": data["provider"],
            "handle": data["handle"],
            "status": "connected",
        }
        res.put(org, "account", account)
    ctx.side_effect("account.connected", "account", account_id)
    ctx.bind_record_to("account", account_id)
    return Reply(201, _view("account", account))


def _disconnect(ctx: HandlerContext) -> Reply:
    account_id = ctx.params["id"]
    if not ctx.resources.delete(ctx.tenant, "account", account_id):
        return _missing(ctx, "account", account_id)
    ctx.side_effect("account.disconnected", "account", account_id)
    return Reply(200, {"object": "account", "account_id": account_id, "deleted": True})


def _fetch(ctx: HandlerContext) -> Reply:
    """Fetch ``url`` for ``intent``; a repeat ``(url, intent)`` is served from the cache."""
    data: dict[str, Any] = ctx.data
    res, org, now = ctx.resources, ctx.tenant, ctx.clock.now()
    pair = hashlib.sha256(f"{data['url']}\n{data['intent']}".encode()).hexdigest()
    ttl = _option(ctx, "fetch_cache_seconds", DEFAULT_FETCH_CACHE_SECONDS)
    with res.lock:
        cached = res.get(org, "fetch_cache", pair)
        fetched = None if cached is None else res.get(org, "fetch", cached["fetch_id"])
        if cached is None or fetched is None or now >= cached["_at"] + ttl:
            fetch_id = res.new_id("fet")
            fetched = {
                "id": fetch_id,
                "fetch_id": fetch_id,
                "url": data["url"],
                "intent": data["intent"],
                "content": f"Contents of {data['url']} relevant to: {data['intent']}",
                "fetched_at": _iso(now),
            }
            res.put(org, "fetch", fetched)
            res.put(org, "fetch_cache", {"id": pair, "fetch_id": fetch_id, "_at": now})
            ctx.side_effect("fetch.performed", "fetch", fetch_id, url=data["url"])
    ctx.bind_record_to("fetch", fetched["id"])
    return Reply(200, _view("fetch", fetched))


VARIANT = Variant(
    name="whet",
    description="Body idempotency_key (16-128 chars) on every mutating POST; scope (org, "
    "endpoint, key); replays while running; lives as long as the resource.",
    policy=Policy(
        key_header=None,
        key_field="idempotency_key",
        key_min_length=16,
        key_max_length=128,
        keyed_routes=(
            "POST /pipelines/from-intent",
            "POST /posts/{id}/draft",
            "POST /artifacts/{id}/publish",
            "POST /accounts/connect",
            "POST /fetch",
        ),
        scope=("credential", "endpoint"),
        fingerprint="none",
        on_mismatch="replay",
        on_in_flight="wait",
        in_flight=Answer(
            409,
            "idempotency_request_in_progress",
            "A request with idempotency_key '{key}' is still being processed; retry with the "
            "same key.",
        ),
        invalid_key=Answer(
            422,
            "validation_failed",
            "idempotency_key is invalid: {key}. A UUIDv4 without dashes (32 hex characters) "
            "is the recommended shape.",
        ),
        cache_2xx=True,
        cache_4xx=False,
        cache_5xx=False,
        error_after_keeps_record=True,
        ttl=None,
        expires_with_resource=True,
        gone=Answer(
            404,
            "not_found",
            "The resource created with idempotency_key '{key}' was deleted; the key no "
            "longer replays. Start a new attempt with a new key.",
        ),
        validate_before_idempotency=True,
        extra={
            "run_seconds": DEFAULT_RUN_SECONDS,
            "fetch_cache_seconds": DEFAULT_FETCH_CACHE_SECONDS,
        },
    ),
    routes=(
        Route("POST /pipelines/from-intent", _from_intent, schema=_FROM_INTENT),
        Route("GET /pipelines/{id}", _getter("pipeline")),
        Route("PATCH /pipelines/{id}", _patch_pipeline, schema=_PATCH),
        Route("DELETE /pipelines/{id}", _delete_pipeline),
        Route("GET /pipelines/{id}/inbox", _inbox),
        Route("GET /runs/{id}", _get_run),
        Route("POST /posts/{id}/draft", _draft, schema=_DRAFT),
        Route("GET /artifacts/{id}", _getter("artifact")),
        Route("POST /artifacts/{id}/publish", _publish, schema=_PUBLISH),
        Route("POST /accounts/connect", _connect, schema=_CONNECT),
        Route("DELETE /accounts/{id}", _disconnect),
        Route("POST /fetch", _fetch, schema=_FETCH),
    ),
    authenticate=organization_of,
    unauthorized=Answer(
        401,
        "unauthorized",
        "Missing or malformed bearer token: send 'Authorization: Bearer <WHET_TOKEN>'.",
    ),
    validation=Answer(422, "validation_failed", "The request body is invalid: {key}"),
    example_credential="org_example.whet_token_1",
    example=(
        "POST",
        "/pipelines/from-intent",
        {"handle": "growth_dr", "intent": "Track for analytical drafts, daily."},
    ),
)
