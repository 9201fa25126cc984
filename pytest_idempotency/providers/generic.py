"""``generic``: the smallest useful contract, for trying the plugin and for custom APIs.

A header key ``Idempotency-Key`` on every ``POST``; any ``POST`` creates a resource (an id plus
the echoed JSON body) that ``GET`` of ``<path>/<id>`` returns; 24 h TTL; a reused key with
another body gets 409 ``idempotency_key_reused``; a duplicate in flight gets 409
``idempotency_key_in_use``; 2xx and 4xx are replayed, 5xx are not.
"""

from __future__ import annotations

from ..policy import Policy
from ..variant import HandlerContext, Reply, Route, Variant, default_create_handler

__all__ = ["VARIANT"]

_create = default_create_handler("object", "obj")


def _read(ctx: HandlerContext) -> Reply:
    obj_id = ctx.path.rstrip("/").rsplit("/", 1)[-1]
    for kind in ("object",):
        found = ctx.resources.get(ctx.tenant, kind, obj_id)
        if found is not None:
            return Reply(200, found)
    return ctx.error(404, "not_found", f"No object with id {obj_id!r}.")


VARIANT = Variant(
    name="generic",
    description="Header Idempotency-Key on every POST; any POST creates; 24 h TTL; 409 on reuse.",
    policy=Policy(
        key_header="Idempotency-Key",
        keyed_routes=("POST *",),
        scope=("credential",),
        fingerprint="canonical",
        fingerprint_route=True,
        ttl=86400.0,
    ),
    routes=(
        Route("POST *", _create, name="create"),
        Route("GET *", _read, name="read"),
    ),
    example_credential=None,
)
