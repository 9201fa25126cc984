"""The command line: ``pytest-idempotency serve --variant phantom`` (or ``python -m
pytest_idempotency serve ...``) runs the fake as a process for clients not under pytest.

The first line on stdout is ``pytest-idempotency: serving VARIANT on http://HOST:PORT``; the
admin API (see :mod:`pytest_idempotency.admin`) lives under ``/__admin/`` on the same port.
SIGINT and SIGTERM stop it cleanly with exit code 0. It never imports pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from .admin import Admin, is_loopback_peer
from .app import App
from .limits import (
    DEFAULT_JOURNAL_LIMIT,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_OBJECTS,
    DEFAULT_MAX_RECORDS,
    Limits,
)
from .overrides import load_variant
from .providers import variant_names
from .server import IdempotencyServer

__all__ = ["build_app", "build_parser", "main", "parse_overrides"]

PROG = "pytest-idempotency"
#: Allocations between collections of the youngest generation while serving (default 700).
GC_YOUNGEST = 20_000


class UsageError(Exception):
    """Bad command-line input; the message names the fix."""


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["ttl=60", "key_header=X-Key"]`` -> ``{"ttl": 60, "key_header": "X-Key"}``.

    Each value is read as JSON; a value that is not JSON is taken as a plain string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--set takes NAME=VALUE, e.g. --set ttl=60 (got {pair!r})")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a number 0-65535 (got {text!r})") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number 0-65535 (got {port})")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Fake idempotent APIs on a real socket, for clients in any language.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    serve = commands.add_parser(
        "serve",
        help="serve one variant until SIGINT or SIGTERM",
        description="Serve one variant of the fake API, with a JSON admin API under /__admin/. "
        "The first line on stdout is 'pytest-idempotency: serving VARIANT on URL'.",
    )
    serve.add_argument(
        "--variant",
        default=None,  # generic; None tells a --variant given beside --openapi/--contract
        metavar="NAME",
        help=f"the variant to serve: {', '.join(variant_names())} (default: generic)",
    )
    serve.add_argument(
        "--openapi",
        metavar="FILE",
        help="serve the API an OpenAPI 3.0/3.1 document (JSON, or YAML with the yaml extra) describes",
    )
    serve.add_argument(
        "--overlay",
        metavar="FILE",
        help="with --openapi: a JSON/YAML merge patch applied to the document first",
    )
    serve.add_argument(
        "--contract",
        metavar="FILE",
        help="serve the API a contract file (TOML or JSON) states; with --openapi, change it",
    )
    serve.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (it registers variants with register_variant); repeatable",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    serve.add_argument(
        "--port", type=_port, default=0, help="port to bind (default: 0, a free port)"
    )
    serve.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed for chaos faults (default: 0)"
    )
    serve.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="NAME=VALUE",
        help="override a policy option, VALUE read as JSON (repeatable): --set ttl=60",
    )
    serve.add_argument(
        "--allow-remote-admin",
        action="store_true",
        help="let peers that are not on loopback use the admin API (default: refused, 403)",
    )
    _add_limit_options(serve)
    commands.add_parser("variants", help="list the variants and what each does")
    return parser


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(
                f"a whole number >= {minimum} is wanted (got {text!r})"
            )
        return int(text)

    return parse


#: The longest timeout the command line takes, seconds (an hour; a longer one is a mistake).
MAX_TIMEOUT = 3600.0


def _seconds(text: str) -> float:
    """An argparse type: seconds, a number > 0 and at most :data:`MAX_TIMEOUT`."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"a number of seconds > 0 and at most {MAX_TIMEOUT:g} is wanted (got {text!r})"
        )
    return value


def _rate(text: str) -> float:
    """An argparse type: bytes a second, a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"a number of bytes a second > 0 is wanted (got {text!r})")
    return value


#: The standalone server's timeouts: option, the ``Limits`` field it sets, what it times.
_TIMEOUTS = (
    (
        "--header-timeout",
        "header_timeout",
        "to send a whole request head once it started; past it 408",
    ),
    ("--body-timeout", "body_timeout", "of silence while a body is being sent; past it 408"),
    ("--idle-timeout", "idle_timeout", "an idle keep-alive connection stays open"),
)


#: The standalone server's memory bounds: option, default, what it bounds.
_BOUNDS = (
    (
        "--max-records",
        DEFAULT_MAX_RECORDS,
        "idempotency records kept at most; past it a new key gets 507 until a reset",
    ),
    (
        "--max-objects",
        DEFAULT_MAX_OBJECTS,
        "created resources kept at most; past it the oldest are forgotten and counted",
    ),
    (
        "--max-bytes",
        DEFAULT_MAX_BYTES,
        "bytes the records (request and response bodies) and, separately, the resources keep "
        "at most, as the counts above",
    ),
)


def _add_limit_options(serve: argparse.ArgumentParser) -> None:
    """Limits of the standalone server (see docs/standalone.md, "Limits")."""
    serve.add_argument(
        "--journal-limit",
        type=_whole_number(0),
        default=DEFAULT_JOURNAL_LIMIT,
        metavar="N",
        help=f"exchanges the journal keeps; older ones are dropped and counted, 0 keeps all "
        f"(default: {DEFAULT_JOURNAL_LIMIT})",
    )
    for flag, default, text in _BOUNDS:
        serve.add_argument(
            flag,
            type=_whole_number(0),
            default=default,
            metavar="N",
            help=f"{text}; 0 keeps all (default: {default})",
        )
    serve.add_argument(
        "--max-connections",
        type=_whole_number(1),
        default=Limits().max_connections,
        metavar="N",
        help="connections served at once; the next one gets 503 and is closed "
        f"(default: {Limits().max_connections})",
    )
    for flag, name, text in _TIMEOUTS:
        default = getattr(Limits(), name)
        serve.add_argument(
            flag,
            type=_seconds,
            default=default,
            metavar="S",
            help=f"seconds {text} (default: {default:g})",
        )
    rate = Limits().min_body_rate
    serve.add_argument(
        "--min-body-rate",
        type=_rate,
        default=rate,
        metavar="B",
        help="slowest average rate, bytes a second, a body may arrive at once --body-timeout "
        f"has passed; slower, 408 (default: {rate:g})",
    )


def _limits(args: argparse.Namespace) -> Limits:
    """The wire limits the command line asks for (the defaults for what it leaves out)."""
    defaults = Limits()
    return Limits(
        max_connections=getattr(args, "max_connections", None) or defaults.max_connections,
        min_body_rate=getattr(args, "min_body_rate", defaults.min_body_rate),
        **{name: getattr(args, name, getattr(defaults, name)) for _, name, _ in _TIMEOUTS},
    )


def _wait_for_a_signal() -> None:
    """Sleep until a signal handler raises :class:`_Stop`. The kernel may hand SIGTERM to any
    thread; Python runs its handler in the main thread only when that thread next runs, so
    the main thread wakes every half second rather than blocking for ever (a signal caught by
    a serving thread used to leave the server running)."""
    while True:
        time.sleep(0.5)


class _Stop(Exception):
    """Raised in the main thread by the first SIGINT or SIGTERM."""


def _install_signal_handlers() -> dict[int, Any]:
    """Turn the first SIGINT or SIGTERM into :class:`_Stop`; return the previous handlers."""
    fired = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired.is_set():
            return  # already stopping: a second signal must not interrupt the cleanup
        fired.set()
        raise _Stop(signal.Signals(signum).name)

    return {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"{PROG}: {text}", file=sys.stderr, flush=True)


def build_app(args: argparse.Namespace) -> tuple[App, Admin]:
    """The app and its admin API for parsed ``serve`` arguments (nothing is bound yet)."""
    overrides = parse_overrides(args.overrides)
    for module in args.plugin:
        _import_plugin(module)
    try:
        name = _described_variant(args) or (args.variant if args.variant is not None else "generic")
        variant = load_variant(name, overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except (RecursionError, MemoryError) as exc:  # a last net: readers refuse these themselves
        raise UsageError(
            f"the described API is too deeply nested or too large to read "
            f"({type(exc).__name__}); flatten or split the document"
        ) from None
    journal_limit = getattr(args, "journal_limit", DEFAULT_JOURNAL_LIMIT) or None
    args.variant = name
    admin = Admin(
        allow_remote=args.allow_remote_admin,
        variant_name=args.variant,
        overrides=overrides,
        journal_limit=journal_limit,
        max_records=getattr(args, "max_records", DEFAULT_MAX_RECORDS) or None,
        max_objects=getattr(args, "max_objects", DEFAULT_MAX_OBJECTS) or None,
        max_bytes=getattr(args, "max_bytes", DEFAULT_MAX_BYTES) or None,
    )
    try:
        app = App(variant, seed=args.seed, admin=admin)  # route schemas are checked here
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return app, admin


def _import_plugin(module: str) -> None:
    """Import a module that registers variants; any failure is a :class:`UsageError`."""
    import importlib

    try:
        importlib.import_module(module)
    except Exception as exc:
        raise UsageError(
            f"--plugin {module}: cannot import it ({type(exc).__name__}: {exc}); "
            "name an importable module (check PYTHONPATH)"
        ) from None


def _described_variant(args: argparse.Namespace) -> str | None:
    """Register the variant of ``--openapi``/``--contract`` (so the admin API's reset finds
    it by name) and return its name; ``None`` when neither is given."""
    from .contract_file import variant_from_contract
    from .openapi import variant_from_openapi
    from .providers import register_variant

    if args.overlay and not args.openapi:
        raise UsageError("--overlay changes an OpenAPI document: pass --openapi FILE too")
    if not args.openapi and not args.contract:
        return None
    if args.variant is not None:
        given = "--openapi" if args.openapi else "--contract"
        raise UsageError(
            f"--variant {args.variant} and {given}: {given} serves the API its file describes "
            f"instead of a named variant, so --variant would be ignored; drop --variant (--set "
            f"NAME=VALUE changes the file's rules), or drop {given} to serve {args.variant}"
        )
    variant = None
    if args.openapi:
        variant = variant_from_openapi(args.openapi, overlay=args.overlay)
    if args.contract:
        variant = variant_from_contract(args.contract, base=variant)
    assert variant is not None
    register_variant(variant, replace=True)
    return variant.name


def serve(args: argparse.Namespace) -> int:
    app, admin = build_app(args)
    variant = app.variant
    server = IdempotencyServer(app, args.host, args.port, limits=_limits(args))
    try:
        server.start()
    except (OSError, OverflowError, SystemExit) as exc:
        # werkzeug explains a failed bind on stderr itself, then raises SystemExit(1).
        detail = "" if isinstance(exc, SystemExit) else f" ({exc})"
        _say(f"cannot listen on {args.host}:{args.port}{detail}; choose another --host or --port")
        return 1
    admin.server = server
    # What start-up built (modules, variants, routes) lives as long as the process: keep it out
    # of the collector's full passes, which otherwise walk it again and again under load.
    gc.freeze()
    # A request leaves few reference cycles: collecting the youngest generation every 700
    # allocations (the default) costs a keyed create about 5 us of its CPU for nothing.
    gc.set_threshold(GC_YOUNGEST, 20, 20)
    stopped = "stopped"
    previous: dict[int, Any] = {}
    try:
        previous = _install_signal_handlers()
        print(f"{PROG}: serving {variant.name} on {server.url}", flush=True)
        if not is_loopback_peer(args.host) and not args.allow_remote_admin:
            _say("the admin API answers loopback peers only (see --allow-remote-admin)")
        _say(f"admin API at {server.url}/__admin/health; stop with Ctrl-C or SIGTERM")
        _wait_for_a_signal()
    except _Stop as exc:
        stopped = f"stopped on {exc}"
    finally:
        app.state.faults.end(lost=True)
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    _say(stopped)
    return 0


def _list_variants() -> int:
    from .providers import get_variant

    for name in variant_names():
        try:
            description = get_variant(name).description
        except Exception as exc:
            description = f"(cannot be loaded: {type(exc).__name__}: {exc})"
        print(f"{name:10} {description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pytest-idempotency``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "variants":
            return _list_variants()
        return serve(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        _say(f"error: {exc}")
        return 2
