"""Shared test setup.

The HTTP clients, PyYAML (which a marker's ``openapi=`` imports inside an inner run) and
hypothesis' observability hook (which its end-of-run summary imports) are imported here so
that in-process ``pytester`` runs never unload and re-import them: that breaks class
identities (inside ``requests``; PyYAML's errors then escape its own ``except``) and costs
about 1.5 s per inner run."""

from __future__ import annotations

import aiohttp  # noqa: F401
import httpx  # noqa: F401
import hypothesis.internal.observability  # noqa: F401
import pytest
import requests  # noqa: F401
import urllib3  # noqa: F401
import yaml  # noqa: F401

from pytest_idempotency import providers


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """``pytester`` with an ini that keeps inner runs as strict as ours, and without the CI
    variables: under them pytest prints each failure's whole message again in the short summary,
    which tests that count what a failure prints must not see."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    return pytester


@pytest.fixture(autouse=True)
def _restore_variant_registry():
    """In-process pytester runs register variants in this process: forget them afterwards."""
    saved = dict(providers._registered)
    yield
    providers._registered.clear()
    providers._registered.update(saved)
