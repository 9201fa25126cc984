"""Whether a value the fake built fits the document's schema it was built from (the same
check a request body gets)."""

from __future__ import annotations

from typing import Any

from .. import schemas
from .document import Document
from .schema import response_schema

__all__ = ["fits"]


def fits(doc: Document, schema: Any, value: Any) -> bool:
    """Whether ``value`` is valid under ``schema`` (a node of ``doc``)."""
    try:
        return schemas.problem(response_schema(doc, schema), value) is None
    except Exception:
        return False
