"""The object a test holds: ``idempotent_api``.

It is a thin facade over one running server and its app: the URL, the clock, the fault plan,
the journal, assertions, portable knowledge of the variant's contract, and reset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import assertions as _a
from .app import App, State
from .clock import Clock
from .explore.report import ExplorationReport
from .faults import FaultPlan
from .fingerprint import form_pairs
from .journal import Exchange, Journal, SideEffect
from .policy import Policy, is_header_name
from .providers import get_variant, variant_names
from .server import IdempotencyServer
from .stubs import Stub, check_route
from .timeline import render_timeline
from .variant import Resources, Variant
from .webhooks import Webhooks, hub_for
from .webhooks.registry import hub_of

__all__ = ["CHECKS", "Contract", "IdempotentAPI", "credential_headers", "teardown_problems"]

#: Teardown checks, each with the marker option that turns it off.
CHECKS: dict[str, str] = {
    "assert_all_requests_were_expected": "unexpected",
    "assert_all_bodies_were_valid": "schema",
    "assert_fake_never_failed": "internal",
    "assert_all_faults_fired": "faults",
    "assert_all_deliveries_made": "webhooks",
}


@dataclass(frozen=True)
class Contract:
    """What a portable test needs to know about the variant in use."""

    variant: str
    key_header: str | None
    key_field: str | None
    key_format: str
    conflict_status: int | None
    conflict_code: str | None
    in_flight_status: int | None
    replay_marker: tuple[str, str] | None
    caches_5xx: bool
    ttl: float | None
    example_method: str
    example_path: str
    example_params: Mapping[str, Any]
    body_encoding: str
    #: How the credential travels: ``bearer``, ``basic`` or ``header``, and in which header.
    credential_scheme: str = "bearer"
    credential_header: str = "Authorization"
    #: Headers that carry the example credential (what ``headers()`` sends).
    credential_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, variant: Variant) -> Contract:
        policy = variant.policy
        method, path, params = variant.example
        return cls(
            variant=variant.name,
            key_header=policy.key_header,
            key_field=policy.key_field,
            key_format=policy.key_format,
            conflict_status=policy.mismatch.status if policy.on_mismatch == "reject" else None,
            conflict_code=policy.mismatch.code if policy.on_mismatch == "reject" else None,
            in_flight_status=policy.in_flight.status if policy.on_in_flight == "reject" else None,
            replay_marker=policy.replay_headers[0] if policy.replay_headers else None,
            caches_5xx=policy.cache_5xx,
            ttl=policy.ttl,
            example_method=method,
            example_path=path,
            example_params=dict(params),
            body_encoding=variant.body_encoding,
            credential_scheme=variant.credential_scheme.kind,
            credential_header=variant.credential_scheme.header,
            credential_headers=credential_headers(variant, None),
        )


def credential_headers(variant: Variant, credential: str | None) -> dict[str, str]:
    """The headers that send ``credential`` (default: the variant's example credential) the
    way the variant wants it (Bearer, Basic, or a named header such as ``X-API-Key``)."""
    token = credential if credential is not None else variant.example_credential
    return variant.credential_scheme.send(token) if token else {}


def _text_or_none(**given: object) -> None:
    """A ``TypeError`` naming the first of ``given`` that is neither a str nor ``None``."""
    for name, value in given.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, not {value!r:.60}")


def _header_text(what: str, value: str) -> None:
    """A ``ValueError`` when ``value`` holds CR, LF or another control character: a header
    built from it would end early and smuggle the rest in as a header of its own."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(
            f"the {what} {value[:40]!r} holds CR, LF or another control character, and a header "
            "cannot carry one (the rest would go out as a header of its own); use printable "
            "characters only"
        )


def checks_named(disabled: object, where: str = "verify(disabled=...)") -> tuple[str, ...]:
    """``disabled`` as teardown check names: an iterable of names from :data:`CHECKS`; a bare
    str or an item that is not a str is a ``TypeError``, an unknown name a ``ValueError``,
    each listing the names."""
    names = ", ".join(CHECKS)
    if isinstance(disabled, str) or not isinstance(disabled, Iterable):
        wrapped = (
            f"[{disabled!r:.60}]" if isinstance(disabled, str) else "['assert_all_faults_fired']"
        )
        raise TypeError(
            f"{where} takes a list of check names such as {wrapped}, not {disabled!r:.60}; "
            f"the checks are {names}"
        )
    given = tuple(disabled)
    for name in given:
        if not isinstance(name, str):
            raise TypeError(
                f"{where}: a check name is a str, not {name!r:.60}; the checks are {names}"
            )
    unknown = [name for name in given if name not in CHECKS]
    if unknown:
        raise ValueError(
            f"{where}: unknown check(s) {', '.join(repr(n)[:60] for n in unknown)}; "
            f"the checks are {names}"
        )
    return given


def teardown_problems(
    journal: Journal, faults: FaultPlan, disabled: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """``(check, text)`` of what the teardown checks find in ``journal`` and ``faults``, minus
    the ``disabled`` checks (by option name): the fixture's teardown and the admin API's verify
    call share it."""
    category_of = CHECKS
    check_of = {category: check for check, category in category_of.items()}
    off = {category_of[name] for name in checks_named(disabled, "disabled")}
    found = [
        (check_of[category], f"[{category}] {text}")
        for category, text in journal.problems
        if category not in off
    ]
    if "faults" not in off:
        found.extend(
            (check_of["faults"], f"[faults] scripted fault never fired: {fault.describe()}")
            for fault in faults.unfired()
        )
    return found


class IdempotentAPI:
    """A fake API on a real loopback socket, reset for the current test."""

    def __init__(self, server: IdempotencyServer, app: App) -> None:
        self.server = server
        self.app = app
        self._url: tuple[int, str] | None = None
        self._explorations: list[ExplorationReport] = []
        #: The state this facade's test ended with (``None`` while the test runs).
        self._ended: State | None = None

    def close(self) -> None:
        """End this facade (the fixture's teardown does it): what needs the server (url,
        clock, faults, requests, reset, ...) then raises ``RuntimeError``; the journal, the
        timeline and the assertions keep reading what this test's server saw."""
        if self._ended is None:
            self._ended = self.app.state
            self._ended.faults.end()  # a wait still going on one of its faults stops now

    def _live(self, what: str) -> State:
        """The running state, or a ``RuntimeError`` when this facade's test has ended."""
        if self._ended is not None:
            raise RuntimeError(
                f"idempotent_api.{what}: the test this idempotent_api belonged to has ended and "
                "its fake server has moved on; use the idempotent_api fixture of the running test"
            )
        return self.app.state

    # -- where and what ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        self._live("url")
        port = self.server.port
        if self._url is None or self._url[0] != port:  # built once per port, not per call
            self._url = (port, self.server.url)
        return self._url[1]

    def url_for(self, path: str) -> str:
        """``url_for("/v1/tasks")`` -> ``http://127.0.0.1:54321/v1/tasks``."""
        self._live("url_for()")
        if not isinstance(path, str):
            raise TypeError(f"url_for(path) takes a str such as '/v1/tasks', not {path!r:.60}")
        return self.server.url_for(path)

    @property
    def _state(self) -> State:
        return self.app.state if self._ended is None else self._ended

    @property
    def variant(self) -> Variant:
        return self._state.variant

    @property
    def name(self) -> str:
        """The variant's name (``generic``, ``phantom``, ...)."""
        return self._state.variant.name

    @property
    def policy(self) -> Policy:
        return self._state.variant.policy

    @property
    def contract(self) -> Contract:
        """Portable knowledge: where the key goes, the conflict status, the replay marker."""
        return Contract.of(self._state.variant)

    @property
    def clock(self) -> Clock:
        """The fake clock: ``idempotent_api.clock.advance(hours=24)``."""
        return self._live("clock").clock

    @property
    def faults(self) -> FaultPlan:
        """Scripted faults and chaos for this test."""
        return self._live("faults").faults

    @property
    def journal(self) -> Journal:
        """Every exchange of this test, in order."""
        return self._state.journal

    @property
    def exchanges(self) -> list[Exchange]:
        return self._state.journal.exchanges

    @property
    def side_effects(self) -> list[SideEffect]:
        """Every mutation the fake actually executed."""
        return self._state.journal.side_effects

    @property
    def resources(self) -> Resources:
        """The fake's data (tasks, posts, balances), to inspect or seed."""
        return self._state.resources

    @property
    def credential(self) -> str | None:
        """A credential the variant accepts (sent by :meth:`headers`)."""
        return self._state.variant.example_credential

    # -- building requests -------------------------------------------------------------------

    def headers(
        self,
        key: str | None = None,
        *,
        credential: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Headers for a request: the credential (sent as the variant wants it: Bearer, Basic
        or a named header), and the key when it travels in a header (each argument a str).

        For a variant whose key travels in the body, passing ``key`` raises ``ValueError``
        naming :meth:`request_kwargs`, which puts the key where the variant wants it."""
        _text_or_none(key=key, credential=credential)
        if extra is not None and not isinstance(extra, Mapping):
            raise TypeError(
                f"headers(extra=...) takes a mapping of header names to values, not {extra!r:.60}"
            )
        for what, text in (("key", key), ("credential", credential)):
            if text is not None:
                _header_text(what, text)
        for name, value in (extra or {}).items():
            if not is_header_name(name) or not isinstance(value, str):
                raise TypeError(
                    "headers(extra=...) takes header names (letters, digits and -) with str "
                    f"values, not {name!r:.40}: {value!r:.40}"
                )
            _header_text(f"value of extra header {name}", value)
        policy = self.policy
        if key is not None and policy.key_header is None:
            raise ValueError(
                f"variant {self.name!r} takes the idempotency key in the body field "
                f"{policy.key_field!r}, not in a header, so headers(key) cannot carry it; use "
                "idempotent_api.request_kwargs(params, key=key), which puts it in the body"
            )
        out = credential_headers(self.variant, credential)
        if key is not None and policy.key_header is not None:
            out[policy.key_header] = (
                '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
                if policy.key_format == "sf-string"
                else key
            )
        out.update(extra or {})
        return out

    def request_kwargs(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        credential: str | None = None,
    ) -> dict[str, Any]:
        """Keyword arguments for ``requests``/``httpx``: ``client.post(url, **kwargs)``.

        The key goes where the variant wants it (header or body field) and the body is
        encoded the way the variant expects (JSON, or form data for Stripe)."""
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(
                f"request_kwargs(params) takes a mapping of body fields, not {params!r:.60}"
            )
        _text_or_none(key=key, credential=credential)
        body = dict(params or {})
        policy = self.policy
        if key is not None and policy.key_header is None and policy.key_field is not None:
            body[policy.key_field] = key
        header_key = key if policy.key_header is not None else None
        headers = self.headers(header_key, credential=credential)
        if self.variant.body_encoding == "form":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return {"headers": headers, "data": dict(form_pairs(body))}
        return {"headers": headers, "json": body}

    def example(self) -> tuple[str, str, dict[str, Any]]:
        """``(method, url, params)`` of an operation that creates something in this variant."""
        method, path, params = self.variant.example
        return method, self.url_for(path), dict(params)

    # -- control -----------------------------------------------------------------------------

    def reset(self, variant: Variant | str | None = None, **policy: Any) -> None:
        """Fresh records, journal, resources, faults and clock; optionally another variant
        (a :class:`Variant` or a name: ``reset(variant="phantom")``) and policy overrides
        (``reset(ttl=60)``). An unknown name raises ``UnknownVariant`` listing the names."""
        self._live("reset()")
        if isinstance(variant, str):
            variant = get_variant(variant)
        elif variant is not None and not isinstance(variant, Variant):
            raise TypeError(
                f"reset(variant=...) takes a variant name such as 'phantom' or a Variant, "
                f"not {type(variant).__name__}; the names are {', '.join(variant_names())}"
            )
        chosen = variant or self.variant
        if policy:
            chosen = dataclasses.replace(chosen, policy=chosen.policy.replace(**policy))
        self.app.reset(chosen)

    def restart(self, keep_records: bool = True) -> None:
        """Restart the server now: in-flight requests are lost, open connections close,
        completed records survive (or vanish with ``keep_records=False``)."""
        self._live("restart()")
        if not isinstance(keep_records, bool):
            raise TypeError(f"restart(keep_records) takes True or False, not {keep_records!r:.60}")
        self.app.restart(keep_records=keep_records)
        self.server.close_connections()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:
        """Block until the server has received ``count`` requests in this test (``timeout``:
        real seconds, a finite number >= 0)."""
        self._live("wait_for_requests()").journal.wait_for_requests(
            count, timeout, where="idempotent_api.url"
        )

    def timeline(self) -> str:
        """The journal as a table."""
        return render_timeline(self._state.journal)

    # -- assertions --------------------------------------------------------------------------

    def assert_exactly_once(self, **filters: Any) -> None:
        """Exactly one side effect (filters: ``key``, ``path``, ``resource``, ``kind``)."""
        __tracebackhide__ = True
        _a.assert_exactly_once(self.journal, **filters)

    def assert_side_effects(self, count: int, **filters: Any) -> None:
        __tracebackhide__ = True
        _a.assert_side_effects(self.journal, count, **filters)

    def assert_side_effect_counts(self, expected: Mapping[str, int]) -> None:
        __tracebackhide__ = True
        _a.assert_side_effect_counts(self.journal, expected)

    def assert_same_key_on_retries(self, **filters: Any) -> None:
        __tracebackhide__ = True
        _a.assert_same_key_on_retries(self.journal, **filters)

    def assert_all_keyed(self) -> None:
        __tracebackhide__ = True
        _a.assert_all_keyed(self.journal)

    def assert_replayed(self, **which: Any) -> None:
        __tracebackhide__ = True
        _a.assert_replayed(self.journal, **which)

    def assert_fresh(self, **which: Any) -> None:
        __tracebackhide__ = True
        _a.assert_fresh(self.journal, **which)

    def assert_saw(self, decision: str, **which: Any) -> None:
        __tracebackhide__ = True
        _a.assert_saw(self.journal, decision, **which)

    def assert_never_saw(self, decisions: str | Iterable[str]) -> None:
        __tracebackhide__ = True
        _a.assert_never_saw(self.journal, decisions)

    def assert_saw_header(self, name: str, value: str | None = None, **which: Any) -> None:
        """The last request (``key=``, ``seq=``; ``every=True``: all of them) sent header
        ``name`` (with exactly ``value``)."""
        __tracebackhide__ = True
        _a.assert_saw_header(self.journal, name, value, **which)

    # -- teardown ----------------------------------------------------------------------------

    def problems(self, disabled: Iterable[str] = ()) -> list[tuple[str, str]]:
        """``(check, text)`` of what the teardown checks would report, minus the ``disabled``
        checks (by option name, e.g. ``assert_all_faults_fired``)."""
        disabled = checks_named(disabled, "problems(disabled=...)")
        found = teardown_problems(self.journal, self._state.faults, disabled)
        if (
            "assert_all_deliveries_made" not in disabled
            and hub_of(self._state.resources) is not None
        ):
            found.extend(
                ("assert_all_deliveries_made", f"[webhooks] {t}") for t in self._hub().problems()
            )
        return found

    def verify(self, disabled: Iterable[str] = ()) -> None:
        """Raise ``AssertionError`` listing what the server saw that the test did not expect."""
        __tracebackhide__ = True
        message = self.failure_message(disabled)
        if message is not None:
            raise AssertionError(message)

    def failure_message(self, disabled: Iterable[str] = (), *, timeline: bool = True) -> str | None:
        """What :meth:`verify` would raise (``None`` when the checks pass); without the
        timeline when ``timeline=False`` (it was already shown). An unknown check name in
        ``disabled`` is a ``ValueError`` listing the names (a bare str a ``TypeError``)."""
        disabled = checks_named(disabled, "verify(disabled=...)")
        quiet = not self.journal.problems and not self._state.faults.scripted
        if quiet and hub_of(self._state.resources) is None:
            return None  # the common case, without building anything
        found = self.problems(disabled)
        if not found:
            return None
        optouts = ", ".join(f"{check}=False" for check in sorted({check for check, _ in found}))
        message = (
            "pytest-idempotency: the fake server saw what the test did not expect:\n  - "
            + "\n  - ".join(text for _, text in found)
            + f"\nIf this is intended, opt out with @pytest.mark.idempotency({optouts})."
        )
        if timeline:
            message += f"\n\nWhat the fake server saw:\n{self.timeline()}"
        else:
            message += "\n(What the fake server saw is in this test's failure report.)"
        return message

    def release_all(self) -> None:
        """Release every held or slow request (after the test ended: nothing is left)."""
        self._state.faults.release_all()

    def __repr__(self) -> str:
        where = "ended" if self._ended is not None else f"at {self.url}"
        return f"<IdempotentAPI {self.name} {where}>"

    # -- exploring ---------------------------------------------------------------------------

    def explore(
        self,
        operation: Any,
        *,
        max_faults: int = 2,
        restarts: bool = False,
        hazards: bool | Iterable[str] = False,
        run_timeout: float = 5.0,
        patch_sleep: bool = True,
        budget: int | None = None,
        seed: int | None = None,
        faults: Iterable[str] | None = None,
    ) -> ExplorationReport:
        """Run ``operation`` (a zero-argument callable or ``async def``) under every fault
        schedule up to ``max_faults`` faults, each from fresh state, and return an
        :class:`~pytest_idempotency.explore.ExplorationReport` (``report.assert_safe()``).

        ``restarts=True`` also crashes the client after a commit and invokes it again;
        ``hazards=True`` (or ``("records_lost", "ttl")``) adds faults no client can defend
        against; ``run_timeout`` bounds each run (real seconds: then it is a ``hang``);
        ``patch_sleep`` makes the operation's sleeps advance the fake clock; ``budget`` caps
        the schedules run, sampled with ``seed`` (default: the session's
        ``--idempotency-seed``); ``faults`` names the menu entries to use (default: all).
        See docs/explore.md."""
        from .explore import explore

        self._live("explore()")
        report = explore(
            self,
            operation,
            max_faults=max_faults,
            restarts=restarts,
            hazards=hazards,
            run_timeout=run_timeout,
            patch_sleep=patch_sleep,
            budget=budget,
            seed=seed,
            faults=faults,
        )
        self.explorations.append(report)
        return report

    @property
    def explorations(self) -> list[ExplorationReport]:
        """The reports of the explorations run in this test, oldest first."""
        return self._explorations

    def stub(
        self,
        route: str,
        *,
        status: int = 200,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        nth: int = 1,
        times: int | None = None,
        side_effect: str | None = None,
    ) -> Stub:
        """Answer ``route`` (``"POST /v1/tasks"``) with ``status``, ``json`` and ``headers``
        instead of running its handler, from its ``nth`` call on, ``times`` times (``None``:
        every call). The answer goes through the idempotency layer (stored and replayed by the
        variant's cache rules) and records a side effect only if ``side_effect`` names its
        kind (``"task.created"``)."""
        self._live("stub()")
        check_route(self.variant, route)
        return self._state.stubs.add(
            route,
            status=status,
            json=json,
            headers=headers,
            nth=nth,
            times=times,
            side_effect=side_effect,
        )

    @property
    def webhooks(self) -> Webhooks:
        """Webhooks of this test: register receivers, deliver, fault, assert
        (``docs/webhooks.md``)."""
        self._live("webhooks")
        return self._hub()

    def _hub(self) -> Webhooks:
        state = self._state
        hub = hub_for(state.resources, state.clock, state.variant)
        hub.faults.seed = state.seed  # chaos without a seed follows --idempotency-seed
        return hub
