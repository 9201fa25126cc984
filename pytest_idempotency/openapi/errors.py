"""The one error every reader of a description raises: where in the document, and the fix."""

from __future__ import annotations

__all__ = ["DescriptionError", "pointer", "refuse_all"]

#: How many refusals one error lists (the rest are counted).
LISTED = 50


class DescriptionError(ValueError):
    """A document or contract file the fake cannot serve; the message names the place (a JSON
    pointer) and the fix."""

    def __init__(self, source: str, where: str, problem: str, fix: str) -> None:
        self.source, self.where, self.problem, self.fix = source, where, problem, fix
        #: Every refusal when one error reports several (else just this one).
        self.errors: tuple[DescriptionError, ...] = (self,)
        super().__init__(f"{source}: at {where or '/'}: {problem}. Fix: {fix}")


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from its parts: ``pointer("paths", "/a", "post")``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def refuse_all(errors: list[DescriptionError]) -> None:
    """Raise nothing for no errors, the error itself for one, else one error listing them all
    (the first :data:`LISTED`, then a count); ``.errors`` holds every one."""
    if not errors:
        return
    if len(errors) == 1:
        raise errors[0]
    fixes = {e.fix for e in errors}
    each = "" if len(fixes) == 1 else ". Fix: {}"
    lines = [f"\n  at {e.where or '/'}: {e.problem}{each.format(e.fix)}" for e in errors[:LISTED]]
    if len(errors) > LISTED:
        lines.append(f"\n  ... and {len(errors) - LISTED} more")
    error = DescriptionError(
        errors[0].source,
        errors[0].where,
        f"{len(errors)} places the fake cannot serve:{''.join(lines)}\n",
        fixes.pop() if len(fixes) == 1 else "fix each place as its line says",
    )
    error.errors = tuple(errors)
    raise error
