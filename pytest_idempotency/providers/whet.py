"""``whet``: Whet's Agent API (the "Idempotency" page).

Every mutating POST takes a body field ``idempotency_key`` of 16-128 characters; the scope is
(organization, endpoint, key). A replay returns the same ``run_id`` / ``pipeline_id`` / artifact
and repeats no side effect, also while the original run is still running (no 409): a duplicate of
a ``from-intent`` request still in flight answers at once with the ids reserved for the original.
Keys are not bound to the body, but the endpoint's invariants are checked for a new body before
the replay (the engine consults the handler): a valid other body replays the original, one that
breaks an invariant gets ``validation_failed``. A record lives as long as its resource: after a
delete the replay is 404 ``not_found``. GET, PATCH and DELETE ignore the field. ``POST /fetch``
also has a response cache on ``(url, intent)``.

Runs are ``running`` until the fake clock passes ``policy.extra["run_seconds"]`` (chosen: 120).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import Headers

from ..consult import Consultation, consultation
from ..fingerprint import parse_body
from ..journal import Exchange
from ..policy import Answer, Policy
from ..variant import HandlerContext, Reply, Route, Variant, bearer_tenant
from ._bodies import json_only

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


def _original(question: Consultation) -> dict[str, Any]:
    """The body the record's own request sent (validated before it was claimed)."""
    record = question.record
    try:
        data = parse_body(record.body, record.content_type)
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {}


_PASS = Reply(204)


def _json(handler: Callable[[HandlerContext], Reply]) -> Callable[[HandlerContext], Reply]:
    return json_only(handler, 422, "validation_failed")


def _getter(kind: str) -> Callable[[HandlerContext], Reply]:
    def get(ctx: HandlerContext) -> Reply:
        obj = ctx.resources.get(ctx.tenant, kind, ctx.params["id"])
        if obj is None:
            return _missing(ctx, kind, ctx.params["id"])
        return Reply(200, _view(kind, obj))

    return get


# -- pipelines and runs ----------------------------------------------------------------------------


def _exchange(ctx: HandlerContext, seq: int) -> Exchange:
    """Request ``#seq`` of this test (the one that claimed a record)."""
    if seq == ctx.exchange.seq:
        return ctx.exchange
    found = [e for e in ctx.journal.exchanges if e.seq == seq]
    return found[0] if found else ctx.exchange


def _reserve(ctx: HandlerContext, seq: int) -> dict[str, Any]:
    """The ids of the pipeline that request ``#seq`` creates, reserved for its claim: an
    in-flight duplicate and the request itself read the same ones (and the same start time,
    the request's arrival on the fake clock)."""
    res = ctx.resources
    with res.lock:
        reserved: dict[int, dict[str, Any]] = res.state.setdefault("whet.reserved", {})
        ids = reserved.get(seq)
        if ids is None:
            ids = {"pl": res.new_id("pl"), "run": res.new_id("run"), "post": res.new_id("post")}
            ids["at"] = _exchange(ctx, seq).at
            ids["seconds"] = _option(ctx, "run_seconds", DEFAULT_RUN_SECONDS)
            ids["org"] = ctx.tenant
            reserved[seq] = ids
        return ids


def _pipeline(ids: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ids["pl"],
        "pipeline_id": ids["pl"],
        "run_id": ids["run"],
        "handle": data.get("handle"),
        "intent": data.get("intent"),
        "status": "active",
        "created_at": _iso(ids["at"]),
        "updated_at": _iso(ids["at"]),
    }


def _from_intent(ctx: HandlerContext) -> Reply:
    question = consultation()
    if question is not None:
        if question.mode == "revalidate":
            return _PASS  # no invariant beyond the schema: a valid other body replays
        record = question.record
        if _exchange(ctx, record.owner_seq).path != ctx.path:
            question.decline()  # a key shared with another endpoint (a wider scope): wait
            return _PASS
        ids = _reserve(ctx, record.owner_seq)
        return Reply(201, _view("pipeline", _pipeline(ids, _original(question))))
    data: dict[str, Any] = ctx.data
    res, org = ctx.resources, ctx.tenant
    ids = _reserve(ctx, ctx.exchange.seq)
    pipeline_id, run_id, post_id = ids["pl"], ids["run"], ids["post"]
    run = {"id": run_id, "run_id": run_id, "pipeline_id": pipeline_id, "_started": ids["at"]}
    run["_finishes"] = ids["at"] + ids["seconds"]
    post = {"id": post_id, "post_id": post_id, "pipeline_id": pipeline_id, "status": "new"}
    post["title"] = f"Idea for {data['handle']}"
    pipeline = _pipeline(ids, data)
    res.put(org, "run", run)
    res.put(org, "post", post)
    res.put(org, "pipeline", pipeline)
    ids["created"] = True
    ctx.side_effect("pipeline.created", "pipeline", pipeline_id, run_id=run_id)
    ctx.emit("run.started", {**_view("run", run), "id": run_id, "status": "running"})
    ctx.emit(
        "run.succeeded",
        {**_view("run", run), "id": run_id, "status": "succeeded"},
        after=ids["seconds"],
    )
    ctx.bind_record_to("pipeline", pipeline_id)
    return Reply(201, _view("pipeline", pipeline))


def _reserved_run(ctx: HandlerContext, run_id: str) -> dict[str, Any] | None:
    """A run whose request is still in flight: its id was handed out, it runs already (a
    request that ended without creating it, e.g. lost in a restart, leaves no run)."""
    reserved: dict[int, dict[str, Any]] = ctx.resources.state.get("whet.reserved", {})
    for seq, ids in list(reserved.items()):
        if ids.get("created") or _exchange(ctx, seq).finished.is_set():
            continue
        if ids["run"] == run_id and ids["org"] == ctx.tenant:
            run = {"id": run_id, "run_id": run_id, "pipeline_id": ids["pl"]}
            return {**run, "_started": ids["at"], "_finishes": ids["at"] + ids["seconds"]}
    return None


def _get_run(ctx: HandlerContext) -> Reply:
    run = ctx.resources.get(ctx.tenant, "run", ctx.params["id"])
    if run is None:
        run = _reserved_run(ctx, ctx.params["id"])
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
    question = consultation()
    if question is not None and question.mode == "provisional":
        question.decline()  # a publication has no id to reserve: the duplicate waits
        return _PASS
    data: dict[str, Any] = ctx.data
    if question is not None and data["account_id"] == _original(question).get("account_id"):
        return _PASS  # the same publication: replay it
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
        if question is not None:
            return _PASS
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
    question = consultation()
    if question is not None and question.mode == "provisional":
        question.decline()  # the duplicate waits for the original's account
        return _PASS
    data: dict[str, Any] = ctx.data
    res, org = ctx.resources, ctx.tenant
    pair = (data["provider"], data["handle"])
    if question is not None:
        original = _original(question)
        if pair == (original.get("provider"), original.get("handle")):
            return _PASS
    with res.lock:
        for account in res.all(org, "account"):
            if (account["provider"], account["handle"]) == pair:
                return _invalid(
                    ctx,
                    f"{data['provider']} account {data['handle']!r} is already connected as "
                    f"{account['account_id']!r}; disconnect it first or reuse that account_id.",
                )
        if question is not None:
            return _PASS  # a fresh request would connect it: keys are not bound to the body
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


def _refetch(ctx: HandlerContext, question: Consultation) -> Reply:
    """A key reused on ``/fetch``: the same ``(url, intent)`` replays; another one is refused
    (chosen) rather than answered with the first url's content, unless
    ``extra={"fetch_key_other_url": "replay"}``."""
    if question.mode == "provisional":
        question.decline()
        return _PASS
    data: dict[str, Any] = ctx.data
    original = _original(question)
    first = (original.get("url"), original.get("intent"))
    mode = ctx.variant.policy.extra.get("fetch_key_other_url", "reject")
    if (data["url"], data["intent"]) == first or mode == "replay":
        return _PASS
    return _invalid(
        ctx,
        f"idempotency_key {ctx.key!r} was first used to fetch {first[0]!r} for intent "
        f"{first[1]!r}; this request fetches {data['url']!r} for intent {data['intent']!r}. "
        "Send a new idempotency_key (or none: repeat (url, intent) pairs hit the response "
        "cache anyway).",
    )


def _fetch(ctx: HandlerContext) -> Reply:
    """Fetch ``url`` for ``intent``; a repeat ``(url, intent)`` is served from the cache."""
    question = consultation()
    if question is not None:
        return _refetch(ctx, question)
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
        on_mismatch="revalidate",
        on_in_flight="provisional",
        consulted_routes=(
            "POST /pipelines/from-intent",
            "POST /artifacts/{id}/publish",
            "POST /accounts/connect",
            "POST /fetch",
        ),
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
        Route("POST /pipelines/from-intent", _json(_from_intent), schema=_FROM_INTENT),
        Route("GET /pipelines/{id}", _getter("pipeline")),
        Route("PATCH /pipelines/{id}", _json(_patch_pipeline), schema=_PATCH),
        Route("DELETE /pipelines/{id}", _delete_pipeline),
        Route("GET /pipelines/{id}/inbox", _inbox),
        Route("GET /runs/{id}", _get_run),
        Route("POST /posts/{id}/draft", _json(_draft), schema=_DRAFT),
        Route("GET /artifacts/{id}", _getter("artifact")),
        Route("POST /artifacts/{id}/publish", _json(_publish), schema=_PUBLISH),
        Route("POST /accounts/connect", _json(_connect), schema=_CONNECT),
        Route("DELETE /accounts/{id}", _disconnect),
        Route("POST /fetch", _json(_fetch), schema=_FETCH),
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


# -- webhooks (docs/variants/whet.md, "Events") ------------------------------------------------

from ..webhooks.spec import EventFacts, EventSpec  # noqa: E402


def _whet_envelope(facts: EventFacts) -> dict[str, Any]:
    """Chosen: ``{"id": "evt_…", "object": "event", "type", "created_at", "data": run}``."""
    return {
        "id": facts.event_id,
        "object": "event",
        "type": facts.type,
        "created_at": facts.created_iso,
        "data": {k: v for k, v in facts.obj.items() if k != "id"},
    }


EVENTS = EventSpec(
    id_prefix="evt_",
    envelope=_whet_envelope,
    types=("run.started", "run.succeeded"),
    schedule=(30.0, 120.0, 600.0, 3600.0, 21600.0),
    signature_header="Whet-Signature",
)
