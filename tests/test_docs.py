"""The documentation as a user meets it: no pointer into files an installed package lacks, the
README's failing example fails as shown, the async example runs, and the site's nav and build
settings cover every page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def _pages() -> list[Path]:
    """Every Markdown page a reader sees: the README and docs/, not the shipped source pages."""
    return [README, *(p for p in DOCS.rglob("*.md") if "sources" not in p.relative_to(DOCS).parts)]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_points_at_files_under_tests(page: Path) -> None:
    text = page.read_text()
    found = re.findall(r"[`(\[]\.{0,2}/?tests/[\w/.:-]*", text)
    assert not found, f"{page.name} points into tests/, which an installed package lacks: {found}"


def test_the_readme_shows_its_failure_under_the_client_that_has_the_bug(pytester) -> None:
    text = README.read_text()
    blocks = _python_blocks(text)
    assert len(blocks) >= 2, "the README shows a correct client and then the buggy one"
    buggy = blocks[1]
    assert "uuid.uuid4())))  # the bug" in buggy
    [shown] = re.findall(r"```\n(AssertionError: .*?)```", text, flags=re.S)
    assert text.index(buggy) < text.index(shown), "the failure is shown under the buggy client"
    pytester.makepyfile(test_readme_buggy=buggy)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    first, _, rest = shown.partition("\n")
    result.stdout.fnmatch_lines(
        [
            f"E       {first}",
            "E         - economy.adjusted adj_000001 by request #1 (key '*')",
            "E         - economy.adjusted adj_000002 by request #2 (key '*')",
            "E       They came under 2 different keys (*): does the client mint a new "
            "idempotency key per retry?",
            "E       ",
            "E       What the fake server saw:",
        ],
        consecutive=True,
    )
    assert "What the fake server saw:" in rest
    assert str(result.stdout).count("What the fake server saw:") == 1
    for decision in ("new       200     dropped", "new       200     response"):
        result.stdout.fnmatch_lines(
            [f"E       [12]  +*  POST /api/v1/economy/adjust  *{decision}*"]
        )


def test_the_async_example_of_the_reference_runs_as_written(pytester) -> None:
    text = (DOCS / "reference.md").read_text()
    section = text[text.index("## Async tests") : text.index("## Vocabulary")]
    assert "pytest-asyncio" in section
    assert "asyncio_default_fixture_loop_scope" in section
    [example] = _python_blocks(section)
    pytester.makepyfile(test_async_example=example)
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_readme_says_async_tests_need_pytest_asyncio_and_its_loop_scope() -> None:
    text = README.read_text()
    section = text[text.index("## Async tests") :]
    assert "pytest-asyncio" in section
    assert "asyncio_default_fixture_loop_scope = function" in section


def _nav_pages() -> list[str]:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = config[config.index("\nnav:") :]
    return re.findall(r":\s+([\w/.-]+\.md)\s*$", nav, flags=re.M)


def test_the_site_nav_lists_every_page_and_every_listed_page_exists() -> None:
    listed = _nav_pages()
    assert len(listed) == len(set(listed)), "a page is listed twice"
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert on_disk - set(listed) == set(), "pages missing from the nav of mkdocs.yml"
    assert set(listed) - on_disk == set(), "nav entries without a page"


def test_the_site_build_is_strict_and_ci_runs_it_with_the_docs_extra() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert "strict: true" in config
    assert "anchors: warn" in config
    assert "name: material" in config
    ci = (ROOT / ".ci" / "run").read_text()
    assert '".[dev,docs]"' in ci
    assert "mkdocs build --strict" in ci
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {re.split(r"[<>=]", d)[0] for d in extras["docs"]} == {"mkdocs", "mkdocs-material"}
    assert all(">=" in d for d in extras["docs"]), "lower bounds for the docs extra"


def test_the_examples_page_includes_files_that_exist() -> None:
    text = (DOCS / "examples.md").read_text()
    included = re.findall(r'--8<-- "([^"]+)"', text)
    assert included
    for name in included:
        assert (ROOT / name).is_file(), name
    shipped = {
        p.relative_to(ROOT).as_posix()
        for pattern in ("*.py", "*.yaml")
        for p in (ROOT / "examples").rglob(pattern)
    }
    assert shipped == set(included), "every example file is on the examples page"
