"""Every python block of docs/webhooks.md is a real test module and passes as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"


def test_every_recipe_in_docs_webhooks_runs_as_written(pytester: pytest.Pytester) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 6
    pytester.makepyfile(**{f"test_recipe_{i}": block for i, block in enumerate(blocks)})
    result = pytester.runpytest_inprocess("-p", "no:randomly")
    result.assert_outcomes(passed=len(blocks))
