"""Where the real OpenAPI documents live: ``../shared/specs/`` beside the checkout (CI has it
there); ``PYTEST_IDEMPOTENCY_SPECS`` names another folder."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def specs_dir() -> Path:
    given = os.environ.get("PYTEST_IDEMPOTENCY_SPECS")
    folder = Path(given) if given else ROOT.parent / "shared" / "specs"
    if not (folder / "adyen-checkout-v71.json").is_file():
        raise AssertionError(
            f"the real OpenAPI documents are missing from {folder}: check out the shared folder "
            "beside the repository (../shared/specs) or set PYTEST_IDEMPOTENCY_SPECS"
        )
    return folder


def spec(name: str) -> Path:
    return specs_dir() / name
