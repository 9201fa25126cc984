"""The idempotency guarantees as properties, for every variant's policy.

A Hypothesis state machine sends random sequences of keyed and unkeyed requests (changed bodies,
other routes, two tenants, invalid keys), jumps the clock short of and past the TTL, deletes the
resources records may be bound to, holds a claim in flight while a duplicate arrives, and makes
executions fail with a 5xx. A small reference model of the contract (scope -> fingerprint,
stored response, expiry, bound resource) predicts every answer; any divergence fails:

* a scoped key is executed at most once while its record lives (the model counts executions);
* a replay is the stored response byte for byte (plus the variant's replay headers);
* conflicts, in-flight answers, invalid-key answers and "gone" answers come exactly where the
  model says, and nowhere else.

The first machine drives :class:`~pytest_idempotency.engine.Engine` directly; the second goes
through the real server with a real HTTP client and the variant's own handlers (fewer examples).
Both are derandomized, so every CI run checks the same sequences.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from werkzeug.datastructures import Headers

from pytest_idempotency import (
    App,
    Clock,
    IdempotencyServer,
    IdempotentAPI,
    Policy,
    Variant,
    get_variant,
    variant_names,
)
from pytest_idempotency.consult import consultation
from pytest_idempotency.engine import Engine, EngineRequest, Execution, Outcome, extract_key
from pytest_idempotency.policy import Answer
from pytest_idempotency.store import Store, StoredResponse

#: Sequences per variant: 7 variants x 150 = 1,050 engine sequences, plus the HTTP ones.
ENGINE_EXAMPLES = 150
HTTP_EXAMPLES = 25
HOLD_TIMEOUT = 5.0
TIMEOUT = 0.5

START = 1_800_000_000.0


class ManualClock(Clock):
    """A clock that moves only when the test moves it."""

    def __init__(self) -> None:
        super().__init__()
        self.t = START

    def now(self) -> float:
        return self.t

    def reset(self) -> None:
        self.t = START

    def jump(self, seconds: float) -> None:
        self.t += seconds


# -- the reference model -------------------------------------------------------------------------


@dataclass
class Rec:
    """What the contract says is stored under one scoped key."""

    ident: Hashable
    claimed_at: float
    response: StoredResponse | None = None
    expiry: float | None = None
    resource: int | None = None

    @property
    def in_flight(self) -> bool:
        return self.response is None


@dataclass
class Expect:
    decision: str
    answer: Answer | None = None
    replay_of: Rec | None = None

    @property
    def executes(self) -> bool:
        return self.decision in ("new", "no_key", "not_applicable")


class Model:
    """The contract of one policy, written as plainly as possible."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.records: dict[tuple[Hashable, ...], Rec] = {}

    def scope(self, tenant: str, method: str, path: str, key: str) -> tuple[Hashable, ...]:
        parts: dict[str, Hashable] = {
            "credential": tenant,
            "method": method,
            "path": path,
            "endpoint": (method, path),
        }
        return (*(parts[p] for p in self.policy.scope), key)

    def ident(self, method: str, path: str, body_id: Hashable) -> Hashable:
        """Two requests are "the same" when their identities are equal."""
        if self.policy.fingerprint == "none":
            return None
        route = (method, path) if self.policy.fingerprint_route else None
        return (route, body_id)

    def live(self, scope: tuple[Hashable, ...], now: float, waited: bool = False) -> Rec | None:
        """The record under ``scope`` at ``now``; one a duplicate ``waited`` for while it was in
        flight is its answer whatever the clock did since (it never expires for that waiter)."""
        rec = self.records.get(scope)
        if rec is not None and not waited and rec.expiry is not None and now >= rec.expiry:
            del self.records[scope]
            return None
        return rec

    def predict(
        self,
        *,
        keyed_route: bool,
        key: str | None,
        key_valid: bool,
        required: bool,
        scope: tuple[Hashable, ...] | None,
        ident: Hashable,
        now: float,
        alive: Callable[[int], bool],
        waited: bool = False,
    ) -> Expect:
        policy = self.policy
        if not keyed_route:
            return Expect("not_applicable")
        if key is not None and not key_valid:
            return Expect("invalid_key", policy.invalid_key)
        if key is None:
            return Expect("no_key", policy.missing_key) if required else Expect("no_key")
        assert scope is not None
        rec = self.live(scope, now, waited)
        if rec is None:
            return Expect("new")
        if rec.in_flight:
            return Expect("in_flight", policy.in_flight)
        if rec.resource is not None and not alive(rec.resource):
            if not policy.gone_is_final:  # the key may start over after one "gone"
                del self.records[scope]
            return Expect("gone", policy.gone)
        if policy.on_mismatch == "reject" and policy.fingerprint != "none" and ident != rec.ident:
            return Expect("conflict", policy.mismatch)
        return Expect("replayed", replay_of=rec)

    def claim(self, scope: tuple[Hashable, ...], ident: Hashable, now: float) -> Rec:
        rec = Rec(ident, now)
        self.records[scope] = rec
        return rec

    def finish(
        self, scope: tuple[Hashable, ...], rec: Rec, response: StoredResponse, resource: int | None
    ) -> None:
        if not self.caches(response.status):
            if self.records.get(scope) is rec:
                del self.records[scope]
            return
        rec.response = response
        ttl = self.policy.ttl
        rec.expiry = None if ttl is None else rec.claimed_at + ttl
        rec.resource = resource if self.policy.expires_with_resource else None

    def caches(self, status: int) -> bool:
        policy = self.policy
        if 200 <= status < 300:
            return policy.cache_2xx
        if 400 <= status < 500:
            return policy.cache_4xx
        return status >= 500 and policy.cache_5xx

    def replayed(self, original: StoredResponse) -> StoredResponse:
        extra = self.policy.replay_headers
        names = {name.lower() for name, _ in extra}
        kept = tuple(h for h in original.headers if h[0].lower() not in names)
        return StoredResponse(original.status, kept + extra, original.body)


# -- building requests from a policy -------------------------------------------------------------


def concrete(spec: str, variant: int = 1) -> tuple[str, str]:
    """``"POST /v1/posts/{id}"`` -> ``("POST", "/v1/posts/p1")``."""
    method, path = spec.split()
    method = "POST" if method == "*" else method
    if path == "*":
        return method, f"/v1/things{variant}"
    path = re.sub(r"\{[^}]+\}", f"p{variant}", path)
    if path.endswith("/*"):
        path = path[:-2] + f"/sub{variant}"
    return method, path


def routes_of(policy: Policy) -> list[tuple[str, str]]:
    """A few keyed routes (two paths of the first one), a key-required one, an unkeyed one."""
    specs = list(policy.keyed_routes[:2]) + list(policy.key_required_routes[:1])
    routes = [concrete(specs[0], 1), concrete(specs[0], 2)]
    routes += [concrete(spec) for spec in specs[1:]]
    for candidate in (("GET", "/v1/things1"), ("GET", "/read/p1"), ("HEAD", "/v1/things1")):
        if not policy.honours_key(*candidate):
            routes.append(candidate)
            break
    return list(dict.fromkeys(routes))


def keys_of(policy: Policy) -> tuple[list[str], list[str]]:
    """Valid keys (within the length limits) and invalid ones (too long, too short)."""
    size = max(policy.key_min_length, 8)
    valid = [f"key-{c}".ljust(size, c) for c in "abc"]
    assert all(policy.key_problem(k) is None for k in valid), valid
    invalid = ["k" * (policy.key_max_length + 1)]
    if policy.key_min_length > 1:
        invalid.append("k" * (policy.key_min_length - 1))
    return valid, invalid


DATA = ({"name": "alpha", "n": 1}, {"name": "beta", "n": 2})
#: The body of a record kept behind an injected 5xx, which the client never saw.
UNSEEN = b"<kept behind an injected 5xx>"


def body_for(policy: Policy, data_id: int, spaced: bool, key: str | None) -> tuple[bytes, Any]:
    data: dict[str, Any] = dict(DATA[data_id])
    if policy.key_header is None and policy.key_field is not None and key is not None:
        data[policy.key_field] = key
    if spaced:  # same parameters, other bytes (and key order)
        return json.dumps(dict(reversed(list(data.items()))), indent=1).encode(), data
    return json.dumps(data, separators=(",", ":")).encode(), data


def header_values(policy: Policy, key: str | None) -> list[str]:
    if policy.key_header is None or key is None:
        return []
    return [f'"{key}"' if policy.key_format == "sf-string" else key]


def body_identity(policy: Policy, body: bytes, data_id: int) -> Hashable:
    return body if policy.fingerprint == "raw" else data_id


STATUSES = {"ok": 201, "client_error": 422, "server_error": 500}


# -- the engine machine --------------------------------------------------------------------------


def engine_machine(policy: Policy) -> type[RuleBasedStateMachine]:
    routes = routes_of(policy)
    keyed = [r for r in routes if policy.honours_key(*r)]
    valid_keys, invalid_keys = keys_of(policy)
    ttl = policy.ttl
    jumps = [1.0, 3600.0, 10.0**7] if ttl is None else [1.0, ttl / 2, ttl - 1, ttl, ttl + 1]

    class EngineMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = ManualClock()
            self.engine = Engine(policy, Store(self.clock))
            self.model = Model(policy)
            self.executions = 0
            self.alive: set[int] = set()
            self.seq = 0

        # -- plumbing -----------------------------------------------------------------------

        def request(
            self, tenant: str, route: tuple[str, str], key: str | None, data_id: int, spaced: bool
        ) -> tuple[EngineRequest, dict[str, Any]]:
            method, path = route
            keyed_route = policy.honours_key(method, path)
            body, data = body_for(policy, data_id, spaced, key)
            self.seq += 1
            found, problem = (
                extract_key(policy, header_values(policy, key), data)
                if keyed_route
                else (None, None)
            )
            req = EngineRequest(
                method, path, tenant, found, problem, body, "application/json", self.seq
            )
            facts = {
                "keyed_route": keyed_route,
                "key": key if keyed_route else None,
                "key_valid": key in valid_keys,
                "required": policy.requires_key(method, path),
                "scope": self.model.scope(tenant, method, path, key)
                if keyed_route and key is not None
                else None,
                "ident": self.model.ident(method, path, body_identity(policy, body, data_id)),
            }
            return req, facts

        def executor(
            self,
            outcome: str,
            started: threading.Event | None = None,
            go: threading.Event | None = None,
        ) -> tuple[Callable[[], Execution], list[StoredResponse]]:
            produced: list[StoredResponse] = []

            def execute() -> Execution:
                question = consultation()
                if question is not None:  # a handler with no invariants and no reserved ids
                    if question.mode == "provisional":
                        question.decline()
                    return Execution(StoredResponse(204, (), b""))
                self.executions += 1
                number = self.executions
                if started is not None and go is not None:
                    started.set()
                    assert go.wait(HOLD_TIMEOUT), "the held execution was never released"
                status = STATUSES[outcome]
                body = json.dumps({"execution": number, "status": status}).encode()
                response = StoredResponse(status, (("X-Execution", str(number)),), body)
                produced.append(response)
                if status < 300:
                    self.alive.add(number)
                    return Execution(response, lambda: number in self.alive)
                return Execution(response)

            return execute, produced

        @staticmethod
        def render(answer: Answer, detail: str | None) -> StoredResponse:
            return StoredResponse(
                answer.status, (("X-Answer", answer.code),), answer.render_message(detail).encode()
            )

        def expect(self, facts: dict[str, Any]) -> Expect:
            return self.model.predict(now=self.clock.now(), alive=self.alive.__contains__, **facts)

        def check(
            self,
            expect: Expect,
            outcome: Outcome,
            produced: list[StoredResponse],
        ) -> None:
            """``produced`` holds what this request's own handler produced (if it ran)."""
            assert outcome.decision == expect.decision, (outcome, expect)
            ran = len(produced)
            assert ran == (1 if expect.executes and expect.answer is None else 0), (outcome, ran)
            response = outcome.response
            headers = list(response.headers)
            if expect.answer is not None:
                assert response.status == expect.answer.status
                assert headers == [("X-Answer", expect.answer.code)]
            elif expect.decision == "replayed":
                assert expect.replay_of is not None
                assert expect.replay_of.response is not None
                stored = self.model.replayed(expect.replay_of.response)
                assert response.status == stored.status
                assert response.body == stored.body  # byte-identical
                assert tuple(headers) == stored.headers
            else:
                assert produced
                assert (response.status, response.body) == (produced[0].status, produced[0].body)

        def settle(self, facts: dict[str, Any], rec: Rec | None, outcome: Outcome) -> None:
            """Tell the model what the execution of a ``new`` request produced."""
            if rec is None or facts["scope"] is None:
                return
            response = outcome.response
            resource = int(response.headers[0][1]) if response.status < 300 else None
            self.model.finish(facts["scope"], rec, response, resource)

        # -- rules --------------------------------------------------------------------------

        @rule(
            tenant=st.sampled_from(["tenant_a", "tenant_b"]),
            route=st.sampled_from(routes),
            key=st.sampled_from([*valid_keys, *invalid_keys, None]),
            data_id=st.sampled_from([0, 1]),
            spaced=st.booleans(),
            outcome=st.sampled_from(list(STATUSES)),
        )
        def send(
            self,
            tenant: str,
            route: tuple[str, str],
            key: str | None,
            data_id: int,
            spaced: bool,
            outcome: str,
        ) -> None:
            req, facts = self.request(tenant, route, key, data_id, spaced)
            expect = self.expect(facts)
            rec = (
                self.model.claim(facts["scope"], facts["ident"], self.clock.now())
                if expect.decision == "new"
                else None
            )
            execute, produced = self.executor(outcome)
            result = self.engine.process(req, execute, self.render)
            self.check(expect, result, produced)
            self.settle(facts, rec, result)

        @rule(
            tenant=st.sampled_from(["tenant_a", "tenant_b"]),
            first_route=st.sampled_from(keyed),
            second_route=st.sampled_from(keyed),
            key=st.sampled_from(valid_keys),
            first_body=st.sampled_from([0, 1]),
            second_body=st.sampled_from([0, 1]),
            outcome=st.sampled_from(list(STATUSES)),
            jump_while_held=st.sampled_from([0.0, *jumps]),
        )
        def duplicate_while_in_flight(
            self,
            tenant: str,
            first_route: tuple[str, str],
            second_route: tuple[str, str],
            key: str,
            first_body: int,
            second_body: int,
            outcome: str,
            jump_while_held: float,
        ) -> None:
            req_a, facts_a = self.request(tenant, first_route, key, first_body, False)
            expect_a = self.expect(facts_a)
            if expect_a.decision != "new":  # nothing to hold: an ordinary request
                execute, produced = self.executor(outcome)
                result = self.engine.process(req_a, execute, self.render)
                self.check(expect_a, result, produced)
                self.settle(facts_a, None, result)
                return
            rec_a = self.model.claim(facts_a["scope"], facts_a["ident"], self.clock.now())
            started, go = threading.Event(), threading.Event()
            execute_a, produced_a = self.executor(outcome, started, go)
            results: dict[str, Outcome] = {}

            def first_request() -> None:
                try:
                    results["a"] = self.engine.process(req_a, execute_a, self.render)
                finally:
                    started.set()  # also when it never reached its handler

            first = threading.Thread(target=first_request)
            first.start()
            try:
                assert started.wait(HOLD_TIMEOUT), "the first request never started executing"
                if "a" in results:  # it answered without executing: compare now
                    self.check(expect_a, results["a"], produced_a)
                self.clock.jump(jump_while_held)
                req_b, facts_b = self.request(tenant, second_route, key, second_body, False)
                same_scope = facts_b["scope"] == facts_a["scope"]
                waits = same_scope and policy.on_in_flight in ("wait", "provisional")
                if not waits:
                    expect_b = self.expect(facts_b)
                    rec_b = (
                        self.model.claim(facts_b["scope"], facts_b["ident"], self.clock.now())
                        if expect_b.decision == "new"
                        else None
                    )
                    execute_b, produced_b = self.executor("ok")
                    result_b = self.engine.process(req_b, execute_b, self.render)
                    self.check(expect_b, result_b, produced_b)
                    self.settle(facts_b, rec_b, result_b)
                else:
                    execute_b, produced_b = self.executor("ok")
                    second = threading.Thread(
                        target=lambda: results.__setitem__(
                            "b", self.engine.process(req_b, execute_b, self.render)
                        )
                    )
                    second.start()
            finally:
                go.set()
                first.join(HOLD_TIMEOUT)
            assert not first.is_alive()
            self.check(expect_a, results["a"], produced_a)
            self.settle(facts_a, rec_a, results["a"])
            if waits:
                second.join(HOLD_TIMEOUT)
                assert not second.is_alive(), "the waiting duplicate never finished"
                # It waited for the original, so the contract answers it as if it came after,
                # with the original's record even if the clock passed its TTL meanwhile.
                expect_b = self.model.predict(
                    now=self.clock.now(), alive=self.alive.__contains__, waited=True, **facts_b
                )
                rec_b = (
                    self.model.claim(facts_b["scope"], facts_b["ident"], self.clock.now())
                    if expect_b.decision == "new"
                    else None
                )
                self.check(expect_b, results["b"], produced_b)
                self.settle(facts_b, rec_b, results["b"])

        @rule(seconds=st.sampled_from(jumps))
        def jump_clock(self, seconds: float) -> None:
            self.clock.jump(seconds)

        @rule(data=st.data())
        def delete_a_resource(self, data: st.DataObject) -> None:
            if self.alive:
                self.alive.discard(data.draw(st.sampled_from(sorted(self.alive))))

    EngineMachine.__name__ = EngineMachine.__qualname__ = "EngineMachine"
    return EngineMachine


ENGINE_SETTINGS = settings(
    max_examples=ENGINE_EXAMPLES,
    stateful_step_count=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("name", variant_names())
def test_engine_follows_the_contract_model(name: str) -> None:
    run_state_machine_as_test(engine_machine(get_variant(name).policy), settings=ENGINE_SETTINGS)


# -- the same contract through the real server ---------------------------------------------------


def _other_credential(variant: Variant, first: str) -> str:
    """A second credential of the same shape that the variant takes for another tenant: the
    last letters or digits of one segment changed (the organization's, for Whet)."""
    tenant = variant.authenticate(Headers([("Authorization", f"Bearer {first}")]))
    for found in reversed(list(re.finditer(r"[A-Za-z0-9]+", first))):
        chars = list(first)
        for index in range(max(found.start(), found.end() - 4), found.end()):
            chars[index] = "7" if chars[index].isdigit() else "q"
        other = "".join(chars)
        got = variant.authenticate(Headers([("Authorization", f"Bearer {other}")]))
        if got is not None and got != tenant:
            return other
    raise AssertionError(f"{variant.name}: no second credential shaped like {first!r}")


def _changed_params(variant: Variant) -> dict[str, Any] | None:
    """The example's parameters with one text field changed (still valid), if there is one."""
    method, path, params = variant.example
    route, _, _ = variant.find_route(method, path)
    for name, value in params.items():
        if not isinstance(value, str):
            continue
        changed = {**params, name: value + " (changed)"}
        if route is None or route.schema is None:
            return changed
        validator = jsonschema.validators.validator_for(route.schema)(route.schema)
        if validator.is_valid(changed):
            return changed
    return None


def http_machine(variant: Variant, server: IdempotencyServer) -> type[RuleBasedStateMachine]:
    policy = variant.policy
    app: App = server.app
    valid_keys, _ = keys_of(policy)
    first = variant.example_credential or "tenant_token_a1"
    credentials = [first, _other_credential(variant, first)]
    bodies = [dict(variant.example[2])]
    changed = _changed_params(variant)
    if changed is not None:
        bodies.append(changed)
    ttl = policy.ttl
    jumps = [1.0, 3600.0] if ttl is None else [1.0, ttl - 1, ttl]
    provisional = policy.on_in_flight == "provisional" and policy.consults(*variant.example[:2])

    class HttpMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            app.reset(variant)
            self.api = IdempotentAPI(server, app)
            self.clock = app.clock
            assert isinstance(self.clock, ManualClock)
            self.model = Model(policy)

        def teardown(self) -> None:
            self.api.release_all()

        def call(self, who: int, key: str | None, body: int, timeout: float) -> requests.Response:
            method, url, _ = self.api.example()
            kwargs = self.api.request_kwargs(bodies[body], key=key, credential=credentials[who])
            return requests.request(method, url, timeout=timeout, **kwargs)

        def facts(self, who: int, key: str | None, body: int) -> dict[str, Any]:
            method, path, _ = variant.example
            tenant = variant.authenticate(
                Headers([("Authorization", f"Bearer {credentials[who]}")])
            )
            return {
                "keyed_route": policy.honours_key(method, path),
                "key": key,
                "key_valid": True,
                "required": policy.requires_key(method, path),
                "scope": None if key is None else self.model.scope(str(tenant), method, path, key),
                "ident": self.model.ident(method, path, body),
            }

        def expect(self, facts: dict[str, Any]) -> tuple[Expect, Rec | None]:
            expect = self.model.predict(now=self.clock.now(), alive=lambda _: True, **facts)
            rec = None
            if expect.decision == "new":
                rec = self.model.claim(facts["scope"], facts["ident"], self.clock.now())
            return expect, rec

        def check(
            self,
            expect: Expect,
            rec: Rec | None,
            facts: dict[str, Any],
            response: requests.Response,
            seq: int,
            kept: bool = False,
        ) -> None:
            exchange = self.api.journal[seq - 1]
            assert exchange.decision == expect.decision, self.api.timeline()
            if not expect.executes or expect.answer is not None:
                assert exchange.side_effects == [], self.api.timeline()
            elif response.status_code < 300:
                assert exchange.side_effects, self.api.timeline()
            if expect.answer is not None:
                assert response.status_code == expect.answer.status, response.text
            if expect.decision == "replayed":
                assert expect.replay_of is not None
                stored = expect.replay_of.response
                assert stored is not None
                if stored.body == UNSEEN:  # kept behind an injected 5xx: learn it at its replay
                    assert 200 <= response.status_code < 300, response.text
                    stored = StoredResponse(response.status_code, (), response.content)
                    expect.replay_of.response = stored
                assert response.status_code == stored.status
                assert response.content == stored.body  # byte-identical
                for name, value in policy.replay_headers:
                    assert response.headers.get(name) == value
            if rec is not None and facts["scope"] is not None:
                stored = StoredResponse(response.status_code, (), response.content)
                if kept:  # error_after_keeps_record: the record keeps the handler's answer
                    stored = StoredResponse(200, (), UNSEEN)
                self.model.finish(facts["scope"], rec, stored, None)

        @rule(
            who=st.sampled_from([0, 1]),
            key=st.sampled_from([*valid_keys[:2], None]),
            body=st.sampled_from(range(len(bodies))),
            fail=st.booleans(),
        )
        def send(self, who: int, key: str | None, body: int, fail: bool) -> None:
            if fail:  # the handler runs, then the answer is a 500
                self.api.faults.error_after_commit(500, key=key)
            facts = self.facts(who, key, body)
            expect, rec = self.expect(facts)
            response = self.call(who, key, body, TIMEOUT)
            kept = fail and policy.error_after_keeps_record
            self.check(expect, rec, facts, response, len(self.api.journal), kept)

        @rule(
            who=st.sampled_from([0, 1]),
            key=st.sampled_from(valid_keys[:2]),
            first_body=st.sampled_from(range(len(bodies))),
            second_body=st.sampled_from(range(len(bodies))),
        )
        def duplicate_while_in_flight(
            self, who: int, key: str, first_body: int, second_body: int
        ) -> None:
            facts_a = self.facts(who, key, first_body)
            now = self.clock.now()
            if self.model.predict(now=now, alive=lambda _: True, **facts_a).decision != "new":
                return  # nothing would be held: the send rule covers that request
            expect_a, rec_a = self.expect(facts_a)
            fault = self.api.faults.hold(key=key)
            answers: dict[str, requests.Response] = {}

            def send_in_background(name: str, body: int) -> threading.Thread:
                thread = threading.Thread(
                    target=lambda: answers.__setitem__(
                        name, self.call(who, key, body, HOLD_TIMEOUT)
                    )
                )
                thread.start()
                return thread

            first = send_in_background("a", first_body)
            second: threading.Thread | None = None
            try:
                fault.wait_until_held(HOLD_TIMEOUT)
                seq_a = len(self.api.journal)
                facts_b = self.facts(who, key, second_body)
                if provisional:  # Whet: answered at once, with what the original will answer
                    answers["b"] = self.call(who, key, second_body, TIMEOUT)
                elif policy.on_in_flight == "wait":  # it blocks until the original is done
                    second = send_in_background("b", second_body)
                    self.api.wait_for_requests(seq_a + 1, HOLD_TIMEOUT)
                else:
                    expect_b, rec_b = self.expect(facts_b)
                    answers["b"] = self.call(who, key, second_body, TIMEOUT)
                    self.check(expect_b, rec_b, facts_b, answers["b"], seq_a + 1)
            finally:
                fault.release()
                first.join(HOLD_TIMEOUT)
            assert not first.is_alive(), "the held request never finished"
            self.check(expect_a, rec_a, facts_a, answers["a"], seq_a)
            if provisional:
                duplicate = self.api.journal[seq_a]
                assert (duplicate.decision, duplicate.replay_of) == ("replayed", seq_a)
                assert duplicate.side_effects == [], self.api.timeline()
                assert answers["b"].content == answers["a"].content, self.api.timeline()
            if second is not None:
                second.join(HOLD_TIMEOUT)
                assert not second.is_alive(), "the waiting duplicate never finished"
                # It waited for the original: the contract answers it as if it came after.
                expect_b, rec_b = self.expect(facts_b)
                self.check(expect_b, rec_b, facts_b, answers["b"], seq_a + 1)

        @rule(seconds=st.sampled_from(jumps))
        def jump_clock(self, seconds: float) -> None:
            self.clock.jump(seconds)

    HttpMachine.__name__ = HttpMachine.__qualname__ = "HttpMachine"
    return HttpMachine


HTTP_SETTINGS = settings(
    max_examples=HTTP_EXAMPLES,
    stateful_step_count=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def manual_server() -> Iterator[IdempotencyServer]:
    """A server of its own whose clock only moves when a machine moves it."""
    server = IdempotencyServer(App(get_variant("generic"), clock=ManualClock()))
    server.start()
    try:
        yield server
    finally:
        server.app.state.faults.release_all()
        server.stop()


@pytest.mark.parametrize("name", variant_names())
def test_server_follows_the_contract_model(name: str, manual_server: IdempotencyServer) -> None:
    run_state_machine_as_test(
        http_machine(get_variant(name), manual_server), settings=HTTP_SETTINGS
    )
