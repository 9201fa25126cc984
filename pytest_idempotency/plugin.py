"""pytest glue: fixtures, the ``idempotency`` marker, options, variant parametrization,
timeline report sections and xdist. The only module that imports pytest."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .api import CHECKS, IdempotentAPI
from .app import App
from .policy import Policy, PolicyError, guessed
from .providers import SEED_VARIANTS, UnknownVariant, get_variant, variant_names
from .server import IdempotencyServer
from .variant import Variant

_API_KEY = pytest.StashKey[IdempotentAPI]()
_SEED_KEY = pytest.StashKey[int]()
_OPENAPI_KEY = pytest.StashKey[dict[tuple[str, str], Variant]]()
_OPTIONS_KEY = pytest.StashKey["MarkerOptions"]()
_DEFAULTS_KEY = pytest.StashKey[tuple[tuple[str, ...], list[str]]]()
_VARIANTS_KEY = pytest.StashKey[dict[tuple[int, str], tuple[Variant, Variant]]]()
_SHOWN_KEY = pytest.StashKey[bool]()
_MARKER_KEYS = {"variant", "variants", "openapi", "overlay", *CHECKS}
#: Every failure message that already ends with the timeline carries this line
#: (``assertions`` and ``IdempotentAPI.verify`` write it); such a failure gets no second copy.
_TIMELINE_HEADING = "What the fake server saw:"


@dataclass
class MarkerOptions:
    """The merged ``@pytest.mark.idempotency(...)`` options of one test."""

    variant: str | None = None
    variants: list[str] | None = None
    #: ``openapi="api.yaml"``: serve this document (relative to the test file), with ``overlay``.
    openapi: str | None = None
    overlay: str | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    disabled_checks: list[str] = field(default_factory=list)
    #: ``variant=`` given as a :class:`~pytest_idempotency.Variant` object (``variant`` is its name).
    variant_object: Variant | None = None


def _item_options(item: pytest.Item) -> MarkerOptions:
    """The item's merged marker options, computed once per test."""
    options = item.stash.get(_OPTIONS_KEY, None)
    if options is None:
        options = item.stash[_OPTIONS_KEY] = _marker_options(item)
    return options


def _marker_options(node: pytest.Item | Any) -> MarkerOptions:
    merged: dict[str, Any] = {}
    # iter_markers yields the closest first: apply the farthest first so closer ones win.
    for marker in reversed(list(node.iter_markers("idempotency"))):
        if marker.args:
            raise pytest.UsageError(
                "@pytest.mark.idempotency takes keyword options only, e.g. "
                "@pytest.mark.idempotency(variant='phantom', ttl=60)"
            )
        _one_choice_of_variant(merged, marker.kwargs)
        merged.update(marker.kwargs)
    if "overlay" in merged and "openapi" not in merged:
        raise _marker_error(
            "overlay= patches the document of openapi=, and no marker gives one, so the overlay "
            "would be ignored: add openapi='api.yaml' beside overlay= (or drop overlay=)"
        )
    options = MarkerOptions()
    for name, value in merged.items():
        if name == "variant" and isinstance(value, Variant):
            options.variant, options.variant_object = value.name, value
        elif name == "variant":
            options.variant = _marker_text(name, value, "a variant name such as 'phantom'")
        elif name == "variants":
            options.variants = _marker_variants(value)
        elif name in ("openapi", "overlay"):
            setattr(options, name, _marker_text(name, value, "a file name such as 'api.yaml'"))
        elif name in CHECKS:
            if not isinstance(value, bool):
                raise _marker_error(f"{name} takes True or False (got {value!r:.60})")
            if value is False:
                options.disabled_checks.append(name)
        else:
            options.policy[name] = value
    _check_option_names(options.policy)
    return options


_POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(Policy))


def _check_option_names(policy: dict[str, Any]) -> None:
    """A marker option that is neither the marker's own nor a policy field is a typo: say
    the closest known name, and every name the marker takes."""
    unknown = sorted(set(policy) - set(_POLICY_FIELDS))
    if not unknown:
        return
    raise _marker_error(
        f"unknown option {guessed(unknown, [*sorted(_MARKER_KEYS), *_POLICY_FIELDS], '=')}; "
        "the marker takes variant=, variants=, openapi=, overlay=, the checks "
        f"{', '.join(f'{c}=False' for c in CHECKS)}, and the policy options "
        f"{', '.join(_POLICY_FIELDS)}"
    )


@contextlib.contextmanager
def _setup_errors() -> Iterator[None]:
    """A usage error found while setting a test up fails that test with its message alone:
    the message names the fix, and a traceback through pytest's (and other plugins') fixture
    wrappers would only bury it."""
    try:
        yield
    except pytest.UsageError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


#: The options that each choose what the test serves; a marker gives at most one of them.
_CHOICES = ("variant", "variants", "openapi")


def _one_choice_of_variant(merged: dict[str, Any], closer: dict[str, Any]) -> None:
    """``variant=``, ``variants=`` and ``openapi=`` (with its ``overlay=``) are one choice: a
    closer marker's replaces a farther one's, whichever each uses (a test's
    ``variant='stripe'`` used to lose to its class's ``variants=[...]``, and to its module's
    ``openapi=``, without a word); one marker naming two of them is a usage error."""
    given = [name for name in _CHOICES if name in closer]
    if given == ["variant", "variants"]:
        raise _marker_error(
            "variant= and variants= on one marker: give variant='phantom' for one variant or "
            "variants=['generic', 'phantom'] to run the test under each"
        )
    if len(given) > 1:
        raise _marker_error(
            f"openapi= and {given[0]}= on one marker: openapi= serves that document instead of "
            f"a named variant, so {given[0]}={closer[given[0]]!r:.60} would be ignored; drop "
            f"{given[0]}= (policy options such as ttl=60 change the document's rules), or drop "
            "openapi= to serve the variant"
        )
    if given:
        for name in (*_CHOICES, "overlay"):  # a farther overlay= patched a farther document
            merged.pop(name, None)


def _marker_error(text: str) -> pytest.UsageError:
    return pytest.UsageError(f"@pytest.mark.idempotency: {text}")


def _marker_text(name: str, value: Any, example: str) -> str:
    if isinstance(value, os.PathLike) and name != "variant":
        return os.fspath(value)  # type: ignore[no-any-return]
    if not isinstance(value, str) or not value:
        raise _marker_error(f"{name}= takes {example} (got {value!r:.60})")
    return value


def _marker_variants(value: Any) -> list[str]:
    """``variants=``: a list of names, or one str of comma-separated names; never empty."""
    if not isinstance(value, (str, list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _marker_error(
            "variants= takes a list of variant names such as ['generic', 'phantom'], or "
            f"'all' / 'seeds' (got {value!r:.60})"
        )
    names = _expand(value if isinstance(value, str) else list(value))
    if not names:
        raise _marker_error(
            f"variants={value!r:.60} names no variant, so the test would never run; "
            "name at least one, e.g. variants=['generic']"
        )
    return names


def _expand(spec: str | list[str]) -> list[str]:
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for name in names:
        if name == "all":
            out.extend(variant_names())
        elif name == "seeds":
            out.extend(SEED_VARIANTS)
        elif name:
            out.append(name)
    unknown = [n for n in out if n not in variant_names()]
    if unknown:
        raise pytest.UsageError(
            f"unknown idempotency variant(s) {', '.join(unknown)}; "
            f"choose from {', '.join(variant_names())}, 'seeds' or 'all'"
        )
    return list(dict.fromkeys(out))


# -- options -----------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("idempotency", "fake idempotent APIs (pytest-idempotency)")
    group.addoption(
        "--idempotency-variant",
        action="store",
        dest="idempotency_variant",
        default=None,
        metavar="NAME",
        help="variant for tests that do not choose one: a name, a comma-separated list, "
        "'seeds' (the four documented providers) or 'all'. A list parametrizes each test. "
        "Default: generic.",
    )
    group.addoption(
        "--idempotency-seed",
        action="store",
        dest="idempotency_seed",
        type=int,
        default=None,
        metavar="N",
        help="seed for chaos faults; printed in the report header to reproduce a run.",
    )
    parser.addini(
        "idempotency_variant", "default variant for idempotent_api (like --idempotency-variant)"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "idempotency(variant=NAME, variants=[...], **policy_overrides, "
        "assert_all_requests_were_expected=True, assert_all_bodies_were_valid=True, "
        "assert_fake_never_failed=True, assert_all_faults_fired=True): "
        "configure the idempotent_api fake for this test.",
    )
    seed = config.getoption("idempotency_seed")
    workerinput = getattr(config, "workerinput", None)
    if seed is None and workerinput is not None and "idempotency_seed" in workerinput:
        seed = int(workerinput["idempotency_seed"])
    if seed is None:
        env = os.environ.get("PYTEST_IDEMPOTENCY_SEED")
        seed = _env_number("PYTEST_IDEMPOTENCY_SEED", env, None) if env else None
        seed = seed if seed is not None else random.SystemRandom().randrange(1, 2**31)
    config.stash[_SEED_KEY] = seed
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistSeed(seed), "idempotency-xdist-seed")


class _XdistSeed:
    def __init__(self, seed: int) -> None:
        self.seed = seed

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["idempotency_seed"] = self.seed


def _default_variants(config: pytest.Config) -> list[str]:
    # Kept while the registry is unchanged ("all" grows when a conftest registers a variant);
    # only a valid choice is kept, so a name registered later may still fix a bad one.
    known = tuple(variant_names())
    cached = config.stash.get(_DEFAULTS_KEY, None)
    if cached is not None and cached[0] == known:
        return cached[1]
    sources = (
        ("--idempotency-variant={}", config.getoption("idempotency_variant")),
        ("ini idempotency_variant = {}", config.getini("idempotency_variant")),
        ("PYTEST_IDEMPOTENCY_VARIANT={}", os.environ.get("PYTEST_IDEMPOTENCY_VARIANT")),
    )
    source, spec = next(((s, v) for s, v in sources if v), ("{}", "generic"))
    try:
        found = _expand(str(spec))
    except pytest.UsageError as exc:
        raise pytest.UsageError(f"{source.format(str(spec)[:80])}: {exc}") from None
    config.stash[_DEFAULTS_KEY] = (known, found)
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """A bad ``--idempotency-variant`` (or ini value, or environment variable) stops the run
    here with one ``ERROR:`` line, before collection turns it into a traceback per module."""
    _default_variants(session.config)


def _with_overrides(config: pytest.Config, base: Variant, policy: dict[str, Any]) -> Variant:
    """``base`` with the marker's policy overrides, built once per session for each base and
    distinct set of overrides (a variant registered anew is another base)."""
    if not policy:
        return base
    cache = config.stash.setdefault(_VARIANTS_KEY, {})
    # Keyed by identity: the entry keeps ``base`` alive, so its id is not reused.
    key = (id(base), repr(sorted(policy.items())))
    found = cache.get(key)
    if found is None:
        found = cache[key] = (base, base.with_policy(**policy))
    return found[1]


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.stash[_SEED_KEY]
    variants = ",".join(_default_variants(config))
    return (
        f"pytest-idempotency: default variant {variants}, chaos seed {seed} "
        f"(reproduce with --idempotency-seed={seed})"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "idempotent_api" not in metafunc.fixturenames:
        return
    try:
        options = _marker_options(metafunc.definition)
    except pytest.UsageError:
        return  # the test's setup raises it again: that test errors, the run goes on
    if options.variants is not None:
        names = options.variants
    elif options.variant is not None or options.openapi is not None:
        return  # one variant, or the document: a list of defaults would serve it once each
    else:
        names = _default_variants(metafunc.config)
        if len(names) == 1:
            return
    metafunc.parametrize("idempotency_variant", names, indirect=True, ids=names)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if not report.failed:
        return report
    api = item.stash.get(_API_KEY, None)
    if api is None:
        return report
    # Say the timeline once per test: not when the failure's message already ends with it
    # (the assertions and the teardown checks write it there), not after an earlier phase
    # showed it.
    if not item.stash.get(_SHOWN_KEY, False):
        if not _carries_timeline(call):
            report.sections.append((f"idempotency timeline ({api.name})", api.timeline()))
        for exploration in api.explorations:
            report.sections.append((f"idempotency exploration ({api.name})", exploration.table()))
    item.stash[_SHOWN_KEY] = True
    return report


def _carries_timeline(call: pytest.CallInfo[None]) -> bool:
    excinfo = call.excinfo
    return excinfo is not None and _TIMELINE_HEADING in str(excinfo.value)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def idempotency_listen_address() -> tuple[str, int]:
    """Session-scoped ``(host, port)`` the fake binds: ``("127.0.0.1", 0)`` (an ephemeral port).

    Override in a conftest, or set ``PYTEST_IDEMPOTENCY_HOST`` / ``PYTEST_IDEMPOTENCY_PORT``."""
    host = os.environ.get("PYTEST_IDEMPOTENCY_HOST", "127.0.0.1")
    with _setup_errors():
        port = _env_number(
            "PYTEST_IDEMPOTENCY_PORT", os.environ.get("PYTEST_IDEMPOTENCY_PORT"), 65535
        )
    return host, port or 0


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    fix = (
        "under xdist every worker starts its own server: leave PYTEST_IDEMPOTENCY_PORT unset "
        "(or 0) so each takes a free port"
        if worker and port
        else "choose another PYTEST_IDEMPOTENCY_HOST / PYTEST_IDEMPOTENCY_PORT, or unset them"
    )
    return f"the fake server cannot listen on {host}:{port} ({exc.strerror or exc}); {fix}"


def _env_number(name: str, text: str | None, most: int | None) -> int | None:
    """The whole number in environment variable ``name`` (``None`` when unset or empty);
    anything else is a ``pytest.UsageError`` naming the variable."""
    if not text:
        return None
    stripped = text.strip()
    digits = stripped[1:] if most is None and stripped.startswith("-") else stripped
    if digits.isascii() and digits.isdigit() and len(digits) <= 18:
        number = int(stripped)
        if most is None or number <= most:
            return number
    wanted = f"a port from 0 to {most}" if most is not None else "a whole number"
    raise pytest.UsageError(f"{name}={text[:40]!r}: the variable must be {wanted}; fix or unset it")


@pytest.fixture(scope="session")
def idempotency_server(
    idempotency_listen_address: tuple[str, int], pytestconfig: pytest.Config
) -> Iterator[IdempotencyServer]:
    """Session-scoped :class:`~pytest_idempotency.server.IdempotencyServer`: one threaded
    loopback server per session (per xdist worker), started once and reset per test."""
    host, port = idempotency_listen_address
    app = App(get_variant("generic"), seed=pytestconfig.stash[_SEED_KEY])
    server = IdempotencyServer(app, host, port)
    with _setup_errors():
        try:
            server.start()
        except OSError as exc:  # a port in use (a fixed port under xdist), a host not a host
            raise pytest.UsageError(_cannot_listen(host, port, exc)) from None
    try:
        yield server
    finally:
        app.state.faults.end()
        server.stop()


def _openapi_variant(request: pytest.FixtureRequest, options: MarkerOptions) -> Variant:
    """The variant of the marker's ``openapi=`` document, read once per file and overlay."""
    from .openapi import DescriptionError, variant_from_openapi

    def place(name: str) -> Path:
        given = Path(name)
        return given if given.is_absolute() else Path(request.node.path).parent / given

    assert options.openapi is not None
    document = place(options.openapi)
    overlay = place(options.overlay) if options.overlay is not None else None
    cache_key = (str(document), str(overlay))
    cache = request.config.stash.setdefault(_OPENAPI_KEY, {})
    if cache_key not in cache:
        try:
            cache[cache_key] = variant_from_openapi(document, overlay=overlay)
        except DescriptionError as exc:
            raise pytest.UsageError(f"@pytest.mark.idempotency(openapi=...): {exc}") from None
    return cache[cache_key]


@pytest.fixture
def idempotency_variant(request: pytest.FixtureRequest) -> str:
    """The variant name this test runs against (``str``): the parametrized one, else the
    marker's ``variant=``, else ``--idempotency-variant``, else ``generic``."""
    param = getattr(request, "param", None)
    if param is not None:
        return str(param)
    with _setup_errors():
        options = _item_options(request.node)
        if options.variant is not None:
            return options.variant
        return _default_variants(request.config)[0]


def _served_variant(request: pytest.FixtureRequest, options: MarkerOptions, name: str) -> Variant:
    """The variant the test serves: the marker's document or object, else the named one,
    with the marker's policy options."""
    try:
        chosen = options.variant_object  # variant=Variant(...) on the marker
        if options.openapi is not None:
            base = _openapi_variant(request, options)
        elif chosen is not None and chosen.name == name:
            base = chosen
        else:
            base = get_variant(name)
        return _with_overrides(request.config, base, options.policy)
    except (UnknownVariant, PolicyError) as exc:
        raise pytest.UsageError(f"@pytest.mark.idempotency: {exc}") from None


@pytest.fixture
def idempotent_api(
    request: pytest.FixtureRequest,
    idempotency_server: IdempotencyServer,
    idempotency_variant: str,
) -> Iterator[IdempotentAPI]:
    """Function-scoped :class:`~pytest_idempotency.api.IdempotentAPI`: the fake API reset for
    this test (records, journal, side effects, faults, clock), serving the chosen variant with
    the marker's policy overrides. At teardown it releases held requests and fails the test
    on unexpected requests, invalid bodies, errors inside the fake and unfired faults (each
    check can be turned off on the marker)."""
    item = request.node
    with _setup_errors():
        options = _item_options(item)
        variant = _served_variant(request, options, idempotency_variant)
    app: App = idempotency_server.app
    app.reset(variant, seed=request.config.stash[_SEED_KEY])
    api = IdempotentAPI(idempotency_server, app)
    item.stash[_API_KEY] = api
    try:
        yield api
    finally:
        api.release_all()
    # After a failed test body the timeline is already on screen: the checks say only what
    # they found. Outside any ``except``, so the message is printed once, unchained.
    try:
        message = api.failure_message(
            options.disabled_checks, timeline=not item.stash.get(_SHOWN_KEY, False)
        )
    finally:
        api.close()  # from here on, what needs the server says the test has ended
    if message is not None:
        item.stash[_SHOWN_KEY] = True
        pytest.fail(message, pytrace=False)
