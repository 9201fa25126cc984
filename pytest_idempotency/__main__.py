"""``python -m pytest_idempotency serve --variant phantom``: the standalone server."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
