"""The README's example is a real test: it runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_runs_as_written(pytester):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    pytester.makepyfile(test_readme_example=blocks[0])
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_readme_opens_with_the_two_commands():
    text = README.read_text()
    commands = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert commands is not None
    assert text.index("```bash") < text.index("\n\n", text.index("```bash"))
    lines = [line.split("#")[0].strip() for line in commands.group(1).splitlines()]
    assert lines == [
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest examples',
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest -n 2',
    ]
    assert (
        ".venv/bin/pytest -n 2\n"
        in (Path(__file__).resolve().parent.parent / ".ci/run").read_text()
    )
