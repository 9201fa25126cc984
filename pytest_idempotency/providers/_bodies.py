"""JSON-only endpoints: a form-encoded body is refused unless the variant accepts it.

The JSON APIs of the seed pages show only ``Content-Type: application/json`` bodies; a real
server of that kind answers a form body with its validation error, so the fake does too
(chosen). ``extra={"form_bodies": True}`` accepts form bodies (parsed as flat fields).
"""

from __future__ import annotations

from collections.abc import Callable

from ..variant import HandlerContext, Reply

__all__ = ["FORM", "json_only"]

FORM = "application/x-www-form-urlencoded"


def json_only(
    handler: Callable[[HandlerContext], Reply],
    status: int,
    code: str,
    *,
    type: str | None = None,
) -> Callable[[HandlerContext], Reply]:
    """``handler``, refusing a form-encoded body with ``status`` / ``code``."""

    def guarded(ctx: HandlerContext) -> Reply:
        media = ctx.content_type.split(";", 1)[0].strip().lower()
        if media == FORM and not ctx.variant.policy.extra.get("form_bodies", False):
            return ctx.error(
                status,
                code,
                f"{ctx.method} {ctx.path} takes a JSON body (Content-Type: application/json), "
                f"not {FORM}. Send the body as JSON; to accept form bodies set the policy "
                'option extra={"form_bodies": true} (the idempotency marker in pytest, '
                "--set on the standalone server).",
                type=type,
            )
        return handler(ctx)

    guarded.__name__ = getattr(handler, "__name__", "handler")
    guarded.__doc__ = handler.__doc__
    return guarded
