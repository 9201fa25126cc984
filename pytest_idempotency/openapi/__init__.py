"""Reading a team's API description (OpenAPI 3.0 or 3.1, JSON or YAML) into an ordinary
:class:`~pytest_idempotency.variant.Variant`: routes, request schemas, credentials, error
bodies, generated stateful handlers and the idempotency declaration. The engine never learns
where a variant came from."""

from __future__ import annotations

from .build import variant_from_openapi
from .errors import DescriptionError

__all__ = ["DescriptionError", "variant_from_openapi"]
