"""The one error every reader of a description raises: where in the document, and the fix."""

from __future__ import annotations

__all__ = ["DescriptionError", "pointer"]


class DescriptionError(ValueError):
    """A document or contract file the fake cannot serve; the message names the place (a JSON
    pointer) and the fix."""

    def __init__(self, source: str, where: str, problem: str, fix: str) -> None:
        self.source, self.where, self.problem, self.fix = source, where, problem, fix
        super().__init__(f"{source}: at {where or '/'}: {problem}. Fix: {fix}")


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from its parts: ``pointer("paths", "/a", "post")``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
