"""What the fixture computes once (marker options, default variants, variants with policy
overrides) still follows every change a user makes: a variant registered by a later conftest,
a variant registered anew, another set of overrides."""

from __future__ import annotations

import textwrap

CONFTEST = """
import dataclasses
from pytest_idempotency import get_variant, register_variant

register_variant(dataclasses.replace(get_variant("generic"), name="late-one"), replace=True)
"""


def test_idempotency_variant_all_includes_a_variant_a_subfolder_conftest_registers(pytester):
    pytester.makepyfile(
        test_first="""
        def test_top(idempotent_api):
            assert idempotent_api.name != "late-one"
        """
    )
    sub = pytester.mkpydir("zsub")  # collected after test_first.py
    (sub / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (sub / "test_second.py").write_text(
        textwrap.dedent(
            """
            def test_sub(idempotent_api):
                assert idempotent_api.name
            """
        )
    )
    result = pytester.runpytest("--idempotency-variant=all", "-v")
    result.stdout.fnmatch_lines(["*zsub/test_second.py::test_sub[[]late-one[]] PASSED*"])
    result.stdout.no_fnmatch_line("*test_first.py::test_top[[]late-one[]]*")
    outcomes = result.parseoutcomes()
    assert set(outcomes) == {"passed"}, outcomes  # however many variants this process knows


def test_a_variant_with_the_same_overrides_is_built_once_and_other_overrides_get_their_own(
    pytester,
):
    pytester.makepyfile(
        """
        import pytest

        SEEN = []

        @pytest.mark.idempotency(ttl=60)
        @pytest.mark.parametrize("n", range(3))
        def test_same(idempotent_api, n):
            SEEN.append(idempotent_api.variant)
            assert idempotent_api.policy.ttl == 60

        @pytest.mark.idempotency(ttl=61)
        def test_other(idempotent_api):
            assert idempotent_api.policy.ttl == 61
            assert idempotent_api.variant is not SEEN[0]

        def test_built_once():
            assert len({id(v) for v in SEEN}) == 1
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=5)


def test_a_variant_registered_anew_between_tests_is_the_one_served(pytester):
    pytester.makepyfile(
        """
        import dataclasses
        import pytest
        from pytest_idempotency import get_variant, register_variant

        def _mine(ttl):
            base = get_variant("generic")
            return dataclasses.replace(base, name="mine", policy=base.policy.replace(ttl=ttl))

        register_variant(_mine(10), replace=True)

        @pytest.mark.idempotency(variant="mine", cache_5xx=True)
        def test_first(idempotent_api):
            assert idempotent_api.policy.ttl == 10
            register_variant(_mine(20), replace=True)

        @pytest.mark.idempotency(variant="mine", cache_5xx=True)
        def test_second(idempotent_api):
            assert idempotent_api.policy.ttl == 20
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)
