"""pytest ergonomics: marker, options, parametrization, teardown checks, report sections."""

from __future__ import annotations

from pytest_idempotency import variant_names


def test_marker_selects_the_variant_and_overrides_policy_options(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.idempotency(variant="generic", ttl=60, cache_5xx=True)
        def test_it(idempotent_api):
            assert idempotent_api.name == "generic"
            assert idempotent_api.policy.ttl == 60
            assert idempotent_api.policy.cache_5xx is True
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_module_class_and_test_markers_merge_and_the_closest_wins(pytester):
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.idempotency(ttl=60, cache_5xx=True)

        @pytest.mark.idempotency(ttl=30, cache_4xx=False)
        class TestOrders:
            @pytest.mark.idempotency(ttl=1)
            def test_closest_wins(self, idempotent_api):
                assert idempotent_api.policy.ttl == 1
                assert idempotent_api.policy.cache_4xx is False
                assert idempotent_api.policy.cache_5xx is True

            def test_class_level(self, idempotent_api):
                assert idempotent_api.policy.ttl == 30

        def test_module_level(idempotent_api):
            assert idempotent_api.policy.ttl == 60
            assert idempotent_api.policy.cache_4xx is True
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_unknown_variant_is_a_usage_error_naming_the_choices(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.idempotency(variant="nope")
        def test_it(idempotent_api):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.idempotency: unknown idempotency variant 'nope'; "
            "choose one of generic, moda, whet, phantom, letmepost, stripe, ietf*"
        ]
    )


def test_unknown_policy_option_is_a_usage_error_listing_the_known_ones(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.idempotency(tll=60)
        def test_it(idempotent_api):
            pass

        @pytest.mark.idempotency(varient="moda")
        def test_other(idempotent_api):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "pytest.UsageError" not in out  # the message alone, no traceback
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.idempotency: unknown option tll= (did you mean ttl=?); the marker "
            "takes variant=, variants=, openapi=, overlay=, the checks "
            "assert_all_requests_were_expected=False, *, and the policy options key_header, *",
            "@pytest.mark.idempotency: unknown option varient= (did you mean variant=?);*",
        ]
    )


def test_variants_on_the_marker_parametrize_with_the_name_in_the_test_id(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.idempotency(variants=["generic", "phantom"])
        def test_it(idempotent_api, idempotency_variant):
            assert idempotent_api.name == idempotency_variant
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_it[[]generic[]] PASSED*", "*test_it[[]phantom[]] PASSED*"])


def test_option_all_runs_every_test_against_every_variant(pytester):
    pytester.makepyfile(
        """
        def test_it(idempotent_api, idempotency_variant):
            assert idempotent_api.name == idempotency_variant
        """
    )
    result = pytester.runpytest("--idempotency-variant=all", "-v")
    result.assert_outcomes(passed=len(variant_names()))
    result.stdout.fnmatch_lines([f"*test_it[[]{name}[]] PASSED*" for name in variant_names()])


def test_option_seeds_means_the_four_documented_providers(pytester):
    pytester.makepyfile(
        """
        def test_it(idempotent_api, idempotency_variant):
            assert idempotent_api.name == idempotency_variant
        """
    )
    result = pytester.runpytest("--idempotency-variant=seeds", "-v")
    result.assert_outcomes(passed=4)
    for name in ("moda", "whet", "phantom", "letmepost"):
        result.stdout.fnmatch_lines([f"*test_it[[]{name}[]] PASSED*"])


def test_an_explicit_variant_on_the_marker_beats_the_option(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.idempotency(variant="generic")
        def test_it(idempotent_api):
            assert idempotent_api.name == "generic"
        """
    )
    pytester.runpytest("--idempotency-variant=all").assert_outcomes(passed=1)


def test_options_appear_in_help_under_their_own_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "fake idempotent APIs (pytest-idempotency):",
            "  --idempotency-variant=NAME",
            "*variant for tests that do not choose one*",
        ]
    )
    result.stdout.fnmatch_lines(["  --idempotency-seed=N*seed for chaos faults*"])


def test_every_fixture_shows_a_docstring_in_pytest_fixtures(pytester):
    pytester.makepyfile("def test_it(): pass")
    result = pytester.runpytest("--fixtures")
    for name, words in [
        ("idempotent_api", "the fake API reset for"),
        ("idempotency_server", "one threaded"),
        ("idempotency_listen_address", "the fake binds"),
        ("idempotency_variant", "The variant name this test runs against"),
    ]:
        result.stdout.fnmatch_lines([f"{name}*", f"*{words}*"])


def test_report_header_prints_the_seed_to_reproduce_a_run(pytester):
    pytester.makepyfile("def test_it(): pass")
    result = pytester.runpytest("--idempotency-seed=4242")
    result.stdout.fnmatch_lines(
        [
            "pytest-idempotency: default variant generic, chaos seed 4242 "
            "(reproduce with --idempotency-seed=4242)"
        ]
    )


def test_the_seed_reaches_chaos_so_a_run_reproduces(pytester):
    pytester.makepyfile(
        """
        def test_it(idempotent_api):
            assert idempotent_api.faults.chaos(rate=0.5) == 99
        """
    )
    pytester.runpytest("--idempotency-seed=99").assert_outcomes(passed=1)


def test_a_failing_test_gets_the_timeline_as_its_own_report_section(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_it(idempotent_api):
            requests.post(idempotent_api.url + "/v1/things", json={"a": 1},
                          headers={"Idempotency-Key": "k-1"})
            assert False, "client bug"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- idempotency timeline (generic) -*",
            "#  clock    request          key  body      decision  status  wire      effects",
            "-  -------  ---------------  ---  --------  --------  ------  --------  --------------",
            "1  +0.000s  POST /v1/things  k-1  *  new       201     response  object.created",
            "",
            "1 request(s), 1 side effect(s)",
        ],
        consecutive=True,
    )


# -- teardown checks ---------------------------------------------------------------------------


def test_an_unexpected_request_fails_the_test_at_teardown_with_a_non_retryable_answer(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_it(idempotent_api):
            r = requests.delete(idempotent_api.url + "/v1/things/1")
            assert r.status_code == 405
            assert r.headers["X-Pytest-Idempotency-Error"] == "unexpected-request"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "pytest-idempotency: the fake server saw what the test did not expect:",
            "  - [unexpected] #1 DELETE /v1/things/1: DELETE is not allowed on this path; "
            "routes here: POST *, GET *",
            "If this is intended, opt out with "
            "@pytest.mark.idempotency(assert_all_requests_were_expected=False).",
        ],
        consecutive=True,
    )


def test_assert_all_requests_were_expected_false_turns_that_check_off(pytester):
    pytester.makepyfile(
        """
        import pytest, requests

        @pytest.mark.idempotency(assert_all_requests_were_expected=False)
        def test_it(idempotent_api):
            assert requests.delete(idempotent_api.url + "/v1/things/1").status_code == 405
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_scripted_fault_that_never_fired_fails_the_test(pytester):
    pytester.makepyfile(
        """
        import pytest

        def test_forgotten(idempotent_api):
            idempotent_api.faults.drop_response(path="/v1/things")

        @pytest.mark.idempotency(assert_all_faults_fired=False)
        def test_opted_out(idempotent_api):
            idempotent_api.faults.drop_response(path="/v1/things")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  - [faults] scripted fault never fired: drop(/v1/things, times=1, fired 0)",
            "If this is intended, opt out with "
            "@pytest.mark.idempotency(assert_all_faults_fired=False).",
        ],
        consecutive=True,
    )


_CUSTOM = """
import pytest
from pytest_idempotency import Policy, Reply, Route, Variant, register_variant

def boom(ctx):
    raise ZeroDivisionError("bad handler")

def create(ctx):
    ctx.side_effect("order.created", "order", "ord_1")
    return Reply(201, {"id": "ord_1"})

register_variant(Variant(
    name="orders",
    policy=Policy(keyed_routes=("POST /orders",)),
    routes=(
        Route("POST /orders", create, schema={"type": "object", "required": ["sku"]}),
        Route("POST /boom", boom),
    ),
), replace=True)
"""


def test_a_body_that_breaks_the_schema_and_an_error_inside_the_fake_fail_at_teardown(pytester):
    pytester.makeconftest(_CUSTOM)
    pytester.makepyfile(
        """
        import pytest, requests

        pytestmark = pytest.mark.idempotency(variant="orders")

        def test_schema(idempotent_api):
            r = requests.post(idempotent_api.url + "/orders", json={},
                              headers={"Idempotency-Key": "k"})
            assert r.status_code == 400
            assert r.json()["error"]["code"] == "validation_failed"
            assert idempotent_api.side_effects == []

        def test_internal(idempotent_api):
            r = requests.post(idempotent_api.url + "/boom", json={})
            assert r.status_code == 400
            assert r.headers["X-Pytest-Idempotency-Error"] == "internal-error"

        @pytest.mark.idempotency(assert_all_bodies_were_valid=False)
        def test_schema_opted_out(idempotent_api):
            r = requests.post(idempotent_api.url + "/orders", json={},
                              headers={"Idempotency-Key": "k"})
            assert r.status_code == 400

        @pytest.mark.idempotency(assert_fake_never_failed=False)
        def test_internal_opted_out(idempotent_api):
            assert requests.post(idempotent_api.url + "/boom", json={}).status_code == 400
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "  - [schema] #1 POST /orders: the body breaks the schema of 'orders': "
            "(body): 'sku' is a required property",
            "If this is intended, opt out with "
            "@pytest.mark.idempotency(assert_all_bodies_were_valid=False).",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "  - [internal] #1 POST /boom: the fake raised ZeroDivisionError: bad handler",
            "If this is intended, opt out with "
            "@pytest.mark.idempotency(assert_fake_never_failed=False).",
        ],
        consecutive=True,
    )


def test_a_held_request_is_released_at_teardown_so_no_test_hangs(pytester):
    pytester.makepyfile(
        """
        import threading, requests

        def test_it(idempotent_api):
            idempotent_api.faults.hold()
            t = threading.Thread(target=requests.post, daemon=True,
                args=(idempotent_api.url + "/x",),
                kwargs={"json": {}, "headers": {"Idempotency-Key": "k"}})
            t.start()
            idempotent_api.faults.scripted[0].wait_until_held()
            # returns without releasing: teardown must release it

        def test_next(idempotent_api):
            r = requests.post(idempotent_api.url + "/x", json={},
                              headers={"Idempotency-Key": "k"})
            assert r.status_code == 201
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=2)
