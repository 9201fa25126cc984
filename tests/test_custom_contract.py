"""A team's own API is a first-class variant: a policy plus routes in a conftest, registered
with ``register_variant`` and selected with the marker, without touching the engine.

Each test writes a conftest and a test file and runs pytest on them, as a user would.
"""

from __future__ import annotations

import hypothesis.internal.observability  # noqa: F401  (kept loaded across in-process runs)
import pytest

from pytest_idempotency import Policy, Route, Variant, default_create_handler, register_variant

#: A hand-built contract: Acme's own policy, routes, schema and error envelope.
HAND_BUILT = """
    from pytest_idempotency import (
        Answer, Policy, Reply, Route, Variant, bearer_tenant, default_create_handler,
        register_variant,
    )

    def team_error(status, code, message, *, type, request_id):
        return Reply(status, {"errors": [{"code": code, "message": message}], "trace": request_id})

    register_variant(
        Variant(
            name="team-orders",
            policy=Policy(
                key_header="X-Request-Key",
                keyed_routes=("POST /orders",),
                mismatch=Answer(422, "key_reused", "Key {key} was used for another order."),
                in_flight=Answer(409, "busy", "Key {key} is being processed."),
                replay_headers=(("X-Replayed", "yes"),),
                validate_before_idempotency=True,
                ttl=600,
            ),
            routes=(
                Route(
                    "POST /orders",
                    default_create_handler("order", "ord"),
                    schema={
                        "type": "object",
                        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                        "required": ["sku", "qty"],
                    },
                ),
            ),
            error_shape=team_error,
            authenticate=lambda headers: bearer_tenant(headers, prefix="team_"),
            validation=Answer(400, "bad_order", "The order is invalid: {key}"),
            example_credential="team_key_1",
            example=("POST", "/orders", {"sku": "tea", "qty": 1}),
        ),
        replace=True,
    )
"""


def test_hand_built_policy_and_routes_are_selected_with_the_marker(pytester):
    pytester.makeconftest(HAND_BUILT)
    pytester.makepyfile(
        """
        import pytest, requests

        pytestmark = pytest.mark.idempotency(variant="team-orders")

        def test_replay_and_exactly_once(idempotent_api):
            url = idempotent_api.url_for("/orders")
            kwargs = idempotent_api.request_kwargs({"sku": "tea", "qty": 2}, key="k-1")
            first = requests.post(url, **kwargs)
            again = requests.post(url, **kwargs)
            assert first.status_code == 201 and first.json()["id"].startswith("ord_")
            assert again.headers["X-Replayed"] == "yes"
            assert again.content == first.content
            assert idempotent_api.exchanges[0].key == "k-1"  # read from X-Request-Key
            idempotent_api.assert_exactly_once()

        def test_custom_conflict_in_the_teams_envelope(idempotent_api):
            url = idempotent_api.url_for("/orders")
            requests.post(url, **idempotent_api.request_kwargs({"sku": "a", "qty": 1}, key="k"))
            reused = requests.post(
                url, **idempotent_api.request_kwargs({"sku": "b", "qty": 1}, key="k")
            )
            assert reused.status_code == 422
            assert reused.json()["errors"] == [
                {"code": "key_reused", "message": "Key k was used for another order."}
            ]

        def test_ttl_is_the_teams(idempotent_api):
            url = idempotent_api.url_for("/orders")
            requests.post(url, **idempotent_api.request_kwargs({"sku": "a", "qty": 1}, key="k"))
            idempotent_api.clock.advance(600)
            later = requests.post(
                url, **idempotent_api.request_kwargs({"sku": "b", "qty": 1}, key="k")
            )
            assert later.status_code == 201
            idempotent_api.assert_side_effects(2)

        def test_credentials_are_checked(idempotent_api):
            response = requests.post(
                idempotent_api.url_for("/orders"),
                json={"sku": "a", "qty": 1},
                headers={"Authorization": "Bearer someone-else"},
            )
            assert response.status_code == 401
            assert response.json()["errors"][0]["code"] == "unauthorized"
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)


def test_json_schema_rejection_uses_the_custom_error_shape_and_is_not_stored(pytester):
    pytester.makeconftest(HAND_BUILT)
    pytester.makepyfile(
        """
        import pytest, requests

        @pytest.mark.idempotency(variant="team-orders", assert_all_bodies_were_valid=False)
        def test_rejected(idempotent_api):
            url = idempotent_api.url_for("/orders")
            bad = requests.post(url, **idempotent_api.request_kwargs({"sku": "tea"}, key="k"))
            fixed = requests.post(
                url, **idempotent_api.request_kwargs({"sku": "tea", "qty": 1}, key="k")
            )
            assert bad.status_code == 400
            assert bad.json()["errors"] == [
                {"code": "bad_order", "message": "The order is invalid: (body): 'qty' is a "
                 "required property"}
            ]
            assert fixed.status_code == 201  # validated before the layer: the key is still free
            idempotent_api.assert_exactly_once()

        @pytest.mark.idempotency(variant="team-orders")
        def test_unexpected_invalid_body_fails_at_teardown(idempotent_api):
            url = idempotent_api.url_for("/orders")
            requests.post(url, **idempotent_api.request_kwargs({"qty": "two"}, key="k"))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]schema[]] #1 POST /orders: the body breaks the schema of 'team-orders'*",
            "*assert_all_bodies_were_valid=False*",
        ]
    )


def test_policy_derived_from_a_preset_keeps_the_presets_rules(pytester):
    pytester.makeconftest(
        """
        from pytest_idempotency import Route, Variant, default_create_handler, get_variant
        from pytest_idempotency import register_variant

        stripe = get_variant("stripe")
        register_variant(
            Variant(
                name="stripe-like",
                policy=stripe.policy.replace(ttl=3600),
                routes=(Route("POST /v1/tickets", default_create_handler("ticket", "tkt")),),
                error_shape=stripe.error_shape,
                authenticate=stripe.authenticate,
                example_credential="sk_test_team",
                body_encoding="form",
            ),
            replace=True,
        )
        """
    )
    pytester.makepyfile(
        """
        import pytest, requests

        @pytest.mark.idempotency(variant="stripe-like")
        def test_stripe_rules_on_the_teams_route(idempotent_api):
            url = idempotent_api.url_for("/v1/tickets")
            first = requests.post(url, **idempotent_api.request_kwargs({"title": "a"}, key="k"))
            again = requests.post(url, **idempotent_api.request_kwargs({"title": "a"}, key="k"))
            other = requests.post(url, **idempotent_api.request_kwargs({"title": "b"}, key="k"))
            assert first.status_code == 201
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.headers["Idempotency-Key"] == "k"
            assert other.status_code == 400
            assert other.json()["error"]["type"] == "idempotency_error"
            assert idempotent_api.policy.ttl == 3600
            idempotent_api.assert_exactly_once()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_registered_variant_joins_lists_and_the_command_line_option(pytester):
    pytester.makeconftest(HAND_BUILT)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.idempotency(variants=["generic", "team-orders"])
        def test_listed(idempotent_api):
            assert idempotent_api.name in ("generic", "team-orders")

        def test_from_the_option(idempotent_api):
            assert idempotent_api.name == "team-orders"
            assert idempotent_api.contract.key_header == "X-Request-Key"
        """
    )
    result = pytester.runpytest("--idempotency-variant=team-orders", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_listed[[]team-orders[]] PASSED*"])


def test_registering_a_taken_name_is_refused_naming_the_fix():
    variant = Variant(
        name="stripe",
        policy=Policy(),
        routes=(Route("POST /things", default_create_handler()),),
    )

    with pytest.raises(ValueError, match="pick another name or pass replace=True"):
        register_variant(variant)
