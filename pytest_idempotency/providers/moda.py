"""``moda``: Moda's task API (docs.moda.app, "Idempotency").

The key is the body field ``idempotency_key``, honoured on ``POST /v1/tasks`` only; keys are per
API key. The same key with a byte-identical body returns the same task envelope (no replay
marker: the id matches); another body gets 409 ``idempotency_conflict``. An
``Idempotency-Key`` header is ignored. ``POST /v1/brand-kits`` is not idempotent;
``POST /v1/uploads`` dedupes by content hash (``was_duplicate: true``). The TTL is unspecified
by Moda: the fake keeps records 24 h (chosen; ``ttl=`` overrides it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from typing import Any

from ..policy import Answer, Policy
from ..variant import HandlerContext, Reply, Route, Variant, bearer_tenant, json_error_shape
from ._bodies import json_only

__all__ = ["VARIANT", "moda_error_shape"]

_TASK_FIELDS = (
    "prompt",
    "format",
    "number_of_slides",
    "callback_url",
    "brand_kit_id",
    "attachments",
)

_TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string", "minLength": 1},
        "format": {
            "type": "object",
            "properties": {
                "category": {"type": "string", "minLength": 1},
                "width": {"type": "integer", "minimum": 1},
                "height": {"type": "integer", "minimum": 1},
            },
        },
        "number_of_slides": {"type": "integer", "minimum": 1},
        "callback_url": {"type": "string", "pattern": "^https?://", "maxLength": 2048},
        "brand_kit_id": {"type": "string", "minLength": 1},
        "attachments": {"type": "array", "items": {"type": "string"}},
        "idempotency_key": {"type": ["string", "null"]},
    },
}

_BRAND_KIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://"},
        "name": {"type": "string"},
    },
}

_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["filename", "content_base64"],
    "properties": {
        "filename": {"type": "string", "minLength": 1},
        "content_base64": {"type": "string"},
        "content_type": {"type": "string"},
    },
}


def moda_error_shape(
    status: int, code: str, message: str, *, type: str | None, request_id: str
) -> Reply:
    """Moda's envelope: ``{"error": {"type", "code", "message", "request_id"}}`` with a
    UUID-shaped ``request_id`` (the page shows ``"019d8996-…"``)."""
    digits = re.sub(r"\D", "", request_id) or "0"
    uuid_like = f"019d8996-0000-7000-8000-{int(digits):012x}"
    return json_error_shape(status, code, message, type=type or "api_error", request_id=uuid_like)


def _now(ctx: HandlerContext) -> str:
    return ctx.clock.now_datetime().isoformat().replace("+00:00", "Z")


def _create_task(ctx: HandlerContext) -> Reply:
    data: dict[str, Any] = ctx.data
    task: dict[str, Any] = {
        "id": ctx.resources.new_id("task"),
        "object": "task",
        "kind": "generate",
        "status": "queued",
        **{name: data[name] for name in _TASK_FIELDS if name in data},
        "idempotency_key": ctx.key,
        "created_at": _now(ctx),
    }
    ctx.resources.put(ctx.tenant, "task", task)
    ctx.side_effect("task.created", "task", task["id"])
    ctx.emit("task.created", task)
    ctx.emit("task.completed", task, after=TASK_SECONDS, changes={"status": "completed"})
    return Reply(201, task)


def _get_task(ctx: HandlerContext) -> Reply:
    task = ctx.resources.get(ctx.tenant, "task", ctx.params["id"])
    if task is None:
        return ctx.error(
            404, "task_not_found", f"No task with id {ctx.params['id']!r}.", type="not_found"
        )
    return Reply(200, task)


def _create_brand_kit(ctx: HandlerContext) -> Reply:
    """Not idempotent: every call starts a new brand-kit-extract task."""
    data: dict[str, Any] = ctx.data
    kit_id = ctx.resources.new_id("bk")
    task = {
        "id": ctx.resources.new_id("task"),
        "object": "task",
        "kind": "brand_kit_extract",
        "status": "queued",
        "brand_kit_id": kit_id,
        "idempotency_key": None,
        "created_at": _now(ctx),
    }
    kit = {
        "id": kit_id,
        "object": "brand_kit",
        "url": data["url"],
        "name": data.get("name"),
        "status": "extracting",
        "extract_task_id": task["id"],
        "created_at": task["created_at"],
    }
    ctx.resources.put(ctx.tenant, "task", task)
    ctx.resources.put(ctx.tenant, "brand_kit", kit)
    ctx.side_effect("brand_kit_extract.created", "brand_kit", kit_id, task_id=task["id"])
    return Reply(202, kit)


def _create_upload(ctx: HandlerContext) -> Reply:
    """Dedupes by content hash (per API key): a repeat says ``was_duplicate: true``."""
    data: dict[str, Any] = ctx.data
    try:
        content = base64.b64decode(data["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        return ctx.error(
            422,
            "validation_error",
            "content_base64 is not valid base64; encode the file bytes with standard base64.",
            type="invalid_request",
        )
    digest = hashlib.sha256(content).hexdigest()
    with ctx.resources.lock:
        existing = ctx.resources.get(ctx.tenant, "upload_by_hash", digest)
        if existing is not None:
            upload = ctx.resources.get(ctx.tenant, "upload", existing["upload_id"])
            return Reply(200, {**(upload or {}), "was_duplicate": True})
        upload = {
            "id": ctx.resources.new_id("upl"),
            "object": "upload",
            "filename": data["filename"],
            "content_type": data.get("content_type", "application/octet-stream"),
            "size": len(content),
            "sha256": digest,
            "created_at": _now(ctx),
        }
        ctx.resources.put(ctx.tenant, "upload", upload)
        ctx.resources.put(ctx.tenant, "upload_by_hash", {"id": digest, "upload_id": upload["id"]})
    ctx.side_effect("upload.created", "upload", upload["id"], sha256=digest)
    return Reply(201, {**upload, "was_duplicate": False})


_INVALID = "invalid_request"


def _json(handler: Callable[[HandlerContext], Reply]) -> Callable[[HandlerContext], Reply]:
    return json_only(handler, 422, "validation_error", type=_INVALID)


VARIANT = Variant(
    name="moda",
    description="Body field idempotency_key on POST /v1/tasks only; per API key; "
    "409 idempotency_conflict on another body; no replay marker.",
    policy=Policy(
        key_header=None,
        key_field="idempotency_key",
        key_min_length=1,
        key_max_length=255,
        keyed_routes=("POST /v1/tasks",),
        scope=("credential",),
        fingerprint="raw",
        fingerprint_route=True,
        on_mismatch="reject",
        mismatch=Answer(
            409,
            "idempotency_conflict",
            "An existing task is associated with idempotency_key '{key}' but with a "
            "different request body.",
            type="conflict",
        ),
        on_in_flight="wait",
        in_flight=Answer(
            409,
            "idempotency_in_progress",
            "A task with idempotency_key '{key}' is still being created; retry with the "
            "same key and body.",
            type="conflict",
        ),
        invalid_key=Answer(
            422,
            "validation_error",
            "idempotency_key is invalid: {key}. Send a non-empty printable ASCII string.",
            type=_INVALID,
        ),
        cache_2xx=True,
        cache_4xx=False,
        cache_5xx=False,
        error_after_keeps_record=True,
        replay_headers=(),
        ttl=86400.0,
        validate_before_idempotency=True,
        null_key="absent",
    ),
    routes=(
        Route("POST /v1/tasks", _json(_create_task), schema=_TASK_SCHEMA, name="create_task"),
        Route("GET /v1/tasks/{id}", _get_task, name="get_task"),
        Route(
            "POST /v1/brand-kits",
            _json(_create_brand_kit),
            schema=_BRAND_KIT_SCHEMA,
            name="brand_kit",
        ),
        Route("POST /v1/uploads", _json(_create_upload), schema=_UPLOAD_SCHEMA, name="upload"),
    ),
    error_shape=moda_error_shape,
    authenticate=bearer_tenant,
    unauthorized=Answer(
        401,
        "invalid_api_key",
        "Missing or malformed API key: send 'Authorization: Bearer <your Moda API key>'.",
        type="authentication",
    ),
    not_found=Answer(404, "not_found", "No route for {key}.", type="not_found"),
    method_not_allowed=Answer(
        405, "method_not_allowed", "Method not allowed: {key}.", type=_INVALID
    ),
    validation=Answer(422, "validation_error", "The request body is invalid: {key}", type=_INVALID),
    too_large=Answer(
        413, "request_too_large", "The request body is too large: {key}", type=_INVALID
    ),
    example_credential="moda_test_key_a",
    example=(
        "POST",
        "/v1/tasks",
        {
            "prompt": "Weekly focus-time deck",
            "format": {"category": "slides", "width": 1920, "height": 1080},
            "number_of_slides": 10,
        },
    ),
)


# -- webhooks (docs/variants/moda.md, "Events") ------------------------------------------------

from ..webhooks.spec import EventFacts, EventSpec  # noqa: E402

#: Seconds on the fake clock from task creation to ``task.completed`` (chosen).
TASK_SECONDS = 30.0


def _moda_envelope(facts: EventFacts) -> dict[str, Any]:
    """Chosen: ``{"id": "evt_…", "object": "event", "type", "created_at", "data": task}``."""
    return {
        "id": facts.event_id,
        "object": "event",
        "type": facts.type,
        "created_at": facts.created_iso,
        "data": dict(facts.obj),
    }


EVENTS = EventSpec(
    id_prefix="evt_",
    envelope=_moda_envelope,
    types=("task.created", "task.completed"),
    schedule=(10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0),
    signature_header="Moda-Signature",
    destination_field="callback_url",
)
