"""What every admin call shares: the error that answers a bad call, and the check of a body's
fields (the admin API and its webhook and journal rooms use them alike)."""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_WAIT", "AdminError", "Payload", "only"]

#: Longest a ``wait`` call may block, in seconds.
MAX_WAIT = 60.0

#: An admin call's answer: its status and its JSON payload.
Payload = tuple[int, Any]


class AdminError(Exception):
    """A bad admin call: the status to answer and a message naming the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def only(body: dict[str, Any], allowed: tuple[str, ...], example: str) -> None:
    """Refuse (400) a body with a field this call does not take, naming the ones it does."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise AdminError(
            400,
            f"unknown field(s) {', '.join(unknown)}; this call takes {', '.join(allowed)}, "
            f"e.g. {example}",
        )
