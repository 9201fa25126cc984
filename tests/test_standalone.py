"""The standalone server as a process (``python -m pytest_idempotency serve``), driven only
over HTTP, admin API included, for every variant. Start-up is paid once: every process this
module needs is launched together, then each is used by all the tests of its kind."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from werkzeug.test import Client

from pytest_idempotency import get_variant, variant_names
from pytest_idempotency.admin import is_loopback_peer
from pytest_idempotency.cli import build_app, build_parser, main
from pytest_idempotency.fingerprint import form_pairs

VARIANTS = variant_names()
STARTUP_TIMEOUT = 20.0
FIRST_LINE = re.compile(r"pytest-idempotency: serving (\S+) on (http://127\.0\.0\.1:\d+)")
#: Make ``import pytest`` fail inside the server process.
NO_PYTEST = (
    "import sys\n"
    "sys.modules['pytest'] = None\n"
    "sys.modules['_pytest'] = None\n"
    "from pytest_idempotency.cli import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)

#: Extra processes, by label: the arguments after ``serve`` (or a script to run instead).
EXTRA: dict[str, tuple[str, ...]] = {
    "SIGTERM": ("--variant", "generic"),
    "SIGINT": ("--variant", "generic"),
    "overrides": (
        "--variant",
        "generic",
        "--seed",
        "9",
        "--set",
        "ttl=5",
        "--set",
        'replay_headers=[["X-Replayed", "true"]]',
    ),
    "no-pytest": ("--variant", "generic"),
}


class Served:
    """One running server process and an HTTP client for it."""

    def __init__(self, label: str, proc: subprocess.Popen[str]) -> None:
        self.label = label
        self.proc = proc
        self._line: str | None = None
        self._client: httpx.Client | None = None

    @property
    def first_line(self) -> str:
        if self._line is None:
            self._line = _first_line(self.proc, self.label)
        return self._line

    @property
    def url(self) -> str:
        found = FIRST_LINE.fullmatch(self.first_line)
        assert found is not None, f"unexpected first line: {self.first_line!r}"
        return found.group(2)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=5.0)
        return self._client

    def admin(self, method: str, call: str, body: Any = None, **params: Any) -> httpx.Response:
        return self.client.request(method, f"/__admin/{call}", json=body, params=params)

    def ok(self, method: str, call: str, body: Any = None, **params: Any) -> Any:
        response = self.admin(method, call, body, **params)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def reset(self, **body: Any) -> Any:
        return self.ok("POST", "reset", body)

    def exchanges(self, **params: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.ok("GET", "journal", **params)["exchanges"]
        return result

    def side_effects(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.ok("GET", "side-effects")["side_effects"]
        return result

    def close(self) -> str:
        """Stop the process (if it still runs) and return its stderr."""
        if self._client is not None:
            self._client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err or ""


def _launch(*args: str, script: str | None = None) -> subprocess.Popen[str]:
    command = (
        [sys.executable, "-c", script, "serve", *args]
        if script is not None
        else [sys.executable, "-m", "pytest_idempotency", "serve", *args]
    )
    return subprocess.Popen(
        [*command, "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(proc: subprocess.Popen[str], label: str) -> str:
    """The first stdout line, waited for on a reader thread (no sleeping, with a timeout)."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=STARTUP_TIMEOUT)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"{label}: no first line within {STARTUP_TIMEOUT} s") from None
    if not line:
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"{label}: exited {proc.returncode} before serving:\n{err}")
    return line.rstrip("\n")


class Fleet:
    """Every process of this module, launched at once so their start-ups overlap."""

    def __init__(self) -> None:
        self.servers: dict[str, Served] = {}
        for name in VARIANTS:
            self.servers[name] = Served(name, _launch("--variant", name))
        for label, args in EXTRA.items():
            script = NO_PYTEST if label == "no-pytest" else None
            self.servers[label] = Served(label, _launch(*args, script=script))

    def __getitem__(self, label: str) -> Served:
        return self.servers[label]

    def close(self) -> None:
        for served in self.servers.values():
            if served.proc.poll() is None:
                served.proc.terminate()  # all at once: they stop in parallel
        for served in self.servers.values():
            served.close()


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """Every server process of this module (stopped at the end)."""
    started = Fleet()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module", params=VARIANTS)
def server(request: pytest.FixtureRequest, fleet: Fleet) -> Served:
    """The server process of one variant."""
    return fleet[str(request.param)]


@pytest.fixture
def generic(fleet: Fleet) -> Served:
    """The ``generic`` server process, reset."""
    served = fleet["generic"]
    served.reset(variant="generic", policy={})
    return served


# -- building a keyed request portably ---------------------------------------------------------


def keyed(name: str, key: str) -> dict[str, Any]:
    """``client.request(**keyed(...))`` for the example create of variant ``name``."""
    variant = get_variant(name)
    method, path, params = variant.example
    policy = variant.policy
    headers: dict[str, str] = {}
    if variant.example_credential:
        headers["Authorization"] = f"Bearer {variant.example_credential}"
    body: dict[str, Any] = dict(params)
    if policy.key_header is not None:
        headers[policy.key_header] = f'"{key}"' if policy.key_format == "sf-string" else key
    else:
        assert policy.key_field is not None
        body[policy.key_field] = key
    if variant.body_encoding == "form":
        return {"method": method, "url": path, "headers": headers, "data": dict(form_pairs(body))}
    return {"method": method, "url": path, "headers": headers, "json": body}


def _key(served: Served, what: str) -> str:
    return f"standalone-{served.label}-{what}-0001"


def _trail(served: Served) -> list[tuple[str | None, str]]:
    return [(e["decision"], e["wire"]) for e in served.exchanges()]


# -- every variant -----------------------------------------------------------------------------


def test_first_line_announces_variant_and_loopback_url(server: Served) -> None:
    found = FIRST_LINE.fullmatch(server.first_line)
    assert found is not None, server.first_line
    assert found.group(1) == server.label


def test_health_names_the_variant(server: Served) -> None:
    health = server.ok("GET", "health")
    assert health["variant"] == server.label
    assert health["url"] == server.url
    assert server.label in health["variants"]


def test_keyed_create_then_replay_has_one_side_effect(server: Served) -> None:
    server.reset()
    request = keyed(server.label, _key(server, "replay"))
    first = server.client.request(**request)
    second = server.client.request(**request)
    assert 200 <= first.status_code < 300, first.text
    assert (second.status_code, second.content) == (first.status_code, first.content)
    assert _trail(server) == [("new", "response"), ("replayed", "response")]
    effects = server.side_effects()
    assert len(effects) == 1, effects
    assert effects[0]["exchange_seq"] == 1
    assert effects[0]["key"] == _key(server, "replay")


def test_drop_fault_fails_first_attempt_and_retry_replays(server: Served) -> None:
    server.reset()
    key = _key(server, "drop")
    request = keyed(server.label, key)
    created = server.admin(
        "POST", "faults", {"kind": "drop", "method": request["method"], "path": request["url"]}
    )
    assert created.status_code == 201, created.text
    assert created.json()["fault"]["kind"] == "drop"
    with pytest.raises(httpx.TransportError):
        server.client.request(**request)
    retry = server.client.request(**request)
    assert 200 <= retry.status_code < 300, retry.text
    assert _trail(server) == [("new", "dropped"), ("replayed", "response")]
    assert len(server.side_effects()) == 1
    assert [f["fired"] for f in server.ok("GET", "faults")["faults"]] == [1]


def _ttl(name: str) -> float | str | None:
    try:
        return get_variant(name).policy.ttl
    except Exception as exc:  # a variant that cannot load fails in every test, not here
        return f"{type(exc).__name__}: {exc}"


#: Variants with a finite TTL, and those whose records live without one (unloadable: both).
FINITE_TTL = [n for n in VARIANTS if _ttl(n) is not None]
NO_TTL = [n for n in VARIANTS if not isinstance(_ttl(n), (int, float))]


@pytest.mark.parametrize("label", FINITE_TTL)
def test_clock_advance_past_ttl_runs_the_key_again(fleet: Fleet, label: str) -> None:
    server = fleet[label]
    ttl = get_variant(label).policy.ttl
    assert ttl is not None
    server.reset()
    request = keyed(server.label, _key(server, "ttl"))
    assert server.client.request(**request).status_code < 300
    before = server.ok("GET", "clock")["epoch"]
    moved = server.ok("POST", "clock", {"advance": ttl - 1})
    assert moved["epoch"] - before >= ttl - 1
    assert server.client.request(**request).status_code < 300
    server.ok("POST", "clock", {"advance": 2})
    assert server.client.request(**request).status_code < 300
    assert [d for d, _ in _trail(server)] == ["new", "replayed", "new"]
    assert [s["exchange_seq"] for s in server.side_effects()] == [1, 3]


@pytest.mark.parametrize("label", NO_TTL)
def test_clock_advance_never_expires_a_key_without_ttl(fleet: Fleet, label: str) -> None:
    server = fleet[label]
    assert get_variant(label).policy.ttl is None
    server.reset()
    request = keyed(server.label, _key(server, "no-ttl"))
    assert server.client.request(**request).status_code < 300
    server.ok("POST", "clock", {"days": 365})
    assert server.client.request(**request).status_code < 300
    assert [d for d, _ in _trail(server)] == ["new", "replayed"]
    assert len(server.side_effects()) == 1


def test_reset_clears_records_journal_side_effects_faults_and_clock(server: Served) -> None:
    server.reset()
    request = keyed(server.label, _key(server, "reset"))
    assert server.client.request(**request).status_code < 300
    server.ok("POST", "faults", {"kind": "error_before", "key": "never-sent-key-000"})
    server.ok("POST", "clock", {"advance": 60})
    health = server.reset()
    assert health["variant"] == server.label
    assert health["offset"] == 0.0
    assert server.exchanges() == []
    assert server.side_effects() == []
    assert server.ok("GET", "faults")["faults"] == []
    assert server.client.request(**request).status_code < 300
    assert _trail(server) == [("new", "response")]


# -- the admin API on one server ---------------------------------------------------------------

BAD_CALLS = [
    ("GET", "nope", None, 404, "the admin calls are"),
    ("POST", "health", None, 405, "takes GET"),
    ("POST", "clock", "not json", 400, "not JSON"),
    ("POST", "clock", [1, 2], 400, "must be a JSON object"),
    ("POST", "clock", {}, 400, '{"advance": SECONDS}'),
    ("POST", "clock", {"advance": -5}, 400, "advance must be a number >= 0"),
    ("POST", "clock", {"advance": "soon"}, 400, "advance must be a number"),
    ("POST", "clock", {"advnce": 1}, 400, "unknown field(s) advnce"),
    ("POST", "clock", '{"advance": NaN}', 400, "send a finite number"),
    ("POST", "clock", '{"advance": 1e400}', 400, "send a finite number"),
    ("POST", "clock", {"advance": 1e15}, 400, "stay within years 1970-8999"),
    ("POST", "clock", {"set": -5}, 400, "cannot go before 1970"),
    ("POST", "clock", {"set": "yesterday"}, 400, "ISO-8601"),
    ("POST", "clock", {"set": "2030-01-01T00:00:00"}, 400, "needs a UTC offset"),
    ("POST", "faults", {}, 400, "name the fault"),
    ("POST", "faults", {"kind": "explode"}, 400, "unknown fault kind 'explode'; use one of drop"),
    ("POST", "faults", {"kind": "drop", "times": 0}, 400, "times must be a whole number"),
    ("POST", "faults", {"kind": "drop", "colour": "red"}, 400, "unknown option(s) colour"),
    ("POST", "faults", {"kind": "drop", "seconds": 5}, 400, "seconds would be ignored by the drop"),
    ("POST", "faults", {"kind": "reset", "status": 503}, 400, "the reset fault takes method, path"),
    ("POST", "faults", {"kind": "drop", "key": 7}, 400, '"key" must be'),
    ("POST", "faults", {"kind": "chaos", "rate": 2}, 400, "between 0 and 1"),
    ("POST", "faults", {"kind": "partial_batch"}, 400, "partial_batch needs failures"),
    ("POST", "faults", {"kind": "slow", "seconds": 1e9}, 400, "seconds is at most 3600"),
    ("POST", "faults/99/release", None, 404, "GET /__admin/faults lists them"),
    ("POST", "reset", {"variant": "nope"}, 400, "choose one of generic"),
    ("POST", "reset", {"policy": {"ttl": "soon"}}, 400, "ttl must be a number or null"),
    ("POST", "reset", {"policy": {"colour": 1}}, 400, "unknown policy option(s) colour"),
    ("POST", "restart", {"keep_records": "yes"}, 400, "must be true or false"),
    ("GET", "journal?wait_for=x", None, 400, "wait_for must be a whole number"),
    ("GET", "journal?wait_for=1&timeout=nan", None, 400, "timeout must be seconds"),
    ("GET", "journal?decision=won", None, 400, "decision must be one of new"),
]


@pytest.mark.parametrize(
    ("method", "call", "body", "status", "message"),
    BAD_CALLS,
    ids=[f"{m}-{c}-{s}-{i}" for i, (m, c, _, s, _) in enumerate(BAD_CALLS)],
)
def test_bad_admin_call_gets_4xx_naming_the_fix(
    generic: Served, method: str, call: str, body: Any, status: int, message: str
) -> None:
    content = body if isinstance(body, str) else None if body is None else json.dumps(body)
    response = generic.client.request(
        method,
        f"/__admin/{call}",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert generic.ok("GET", "health")["variant"] == "generic"


def test_reset_switches_variant_and_applies_policy_overrides(generic: Served) -> None:
    other = next(name for name in VARIANTS if name != "generic")
    assert generic.reset(variant=other)["variant"] == other
    assert generic.ok("GET", "variant")["name"] == other
    health = generic.reset(variant="generic", policy={"ttl": 5})
    assert (health["variant"], health["overrides"]) == ("generic", {"ttl": 5})
    assert generic.ok("GET", "variant")["ttl"] == 5.0
    request = keyed("generic", "switch-key-0001")
    generic.client.request(**request)
    generic.ok("POST", "clock", {"advance": 6})
    generic.client.request(**request)
    assert [d for d, _ in _trail(generic)] == ["new", "new"]


def test_hold_fault_waits_over_http_then_release_lets_it_finish(generic: Served) -> None:
    request = keyed("generic", "hold-key-0001")
    fault = generic.ok("POST", "faults", {"kind": "hold", "path": "/v1/things"})["fault"]
    results: queue.Queue[int] = queue.Queue()

    def send() -> None:
        with httpx.Client(base_url=generic.url, timeout=5.0) as other:
            results.put(other.request(**request).status_code)

    threading.Thread(target=send, daemon=True).start()
    held = generic.ok("POST", f"faults/{fault['id']}/wait", {"timeout": 5})
    assert held["fault"]["held"] == 1
    duplicate = generic.client.request(**request)
    assert duplicate.status_code == 409
    assert generic.ok("POST", "faults/release")["faults"][0]["released"] is True
    assert results.get(timeout=5) == 201
    assert [d for d, _ in _trail(generic)] == ["new", "in_flight"]
    assert len(generic.side_effects()) == 1


def test_wait_for_a_hold_that_never_comes_times_out_with_409(generic: Served) -> None:
    fault = generic.ok("POST", "faults", {"kind": "hold"})["fault"]
    response = generic.admin("POST", f"faults/{fault['id']}/wait", {"timeout": 0.05})
    assert response.status_code == 409
    assert "did the client send a matching request?" in response.json()["error"]


def test_restart_loses_in_flight_request_and_keeps_or_drops_records(generic: Served) -> None:
    done = keyed("generic", "restart-done-0001")
    assert generic.client.request(**done).status_code == 201
    generic.ok("POST", "faults", {"kind": "hold", "key": "restart-held-0001"})
    outcome: queue.Queue[str] = queue.Queue()

    def send() -> None:
        with httpx.Client(base_url=generic.url, timeout=5.0) as other:
            try:
                outcome.put(str(other.request(**keyed("generic", "restart-held-0001"))))
            except httpx.TransportError as exc:
                outcome.put(type(exc).__name__)

    threading.Thread(target=send, daemon=True).start()
    generic.ok("POST", "faults/1/wait", {"timeout": 5})
    restarted = generic.ok("POST", "restart", {"keep_records": True})
    assert restarted["lost"] == [{"key": "restart-held-0001", "request": 2}]
    assert outcome.get(timeout=5) in ("RemoteProtocolError", "ReadError")
    assert generic.client.request(**done).status_code == 201
    generic.ok("POST", "restart", {"keep_records": False})
    generic.client.request(**done)
    decisions = [e["decision"] for e in generic.exchanges(key="restart-done-0001")]
    assert decisions == ["new", "replayed", "new"]


def test_chaos_via_admin_fails_requests_and_reset_turns_it_off(generic: Served) -> None:
    spec = {"kind": "chaos", "rate": 1.0, "seed": 3, "kinds": ["error_before"], "statuses": [503]}
    chaos = generic.ok("POST", "faults", spec)["chaos"]
    assert chaos == {"rate": 1.0, "seed": 3, "kinds": ["error_before"], "statuses": [503]}
    assert generic.ok("GET", "faults")["chaos"] == chaos
    assert generic.client.request(**keyed("generic", "chaos-key-0001")).status_code == 503
    assert generic.exchanges()[0]["fault"] == "error_before"
    generic.reset()
    assert generic.ok("GET", "faults")["chaos"] is None
    assert generic.client.request(**keyed("generic", "chaos-key-0001")).status_code == 201


def test_reset_seed_becomes_the_default_chaos_seed(generic: Served) -> None:
    assert generic.reset(seed=42)["seed"] == 42
    assert generic.ok("POST", "faults", {"kind": "chaos", "rate": 0.5})["chaos"]["seed"] == 42
    assert generic.reset(seed=0)["seed"] == 0


def test_admin_body_over_1_mib_gets_413(generic: Served) -> None:
    response = generic.client.post("/__admin/clock", content=b" " * (1_048_576 + 1))
    assert response.status_code == 413
    assert "at most 1048576 bytes" in response.json()["error"]
    assert generic.ok("GET", "health")["variant"] == "generic"


def test_clock_set_takes_iso_8601_with_offset(generic: Served) -> None:
    moved = generic.ok("POST", "clock", {"set": "2030-01-02T03:04:05Z"})
    assert moved["now"].startswith("2030-01-02T03:04:0")
    assert moved["now"].endswith("+00:00")


def test_journal_filters_by_key_and_waits_for_requests(generic: Served) -> None:
    generic.client.request(**keyed("generic", "journal-a-0001"))
    generic.client.request(**keyed("generic", "journal-b-0001"))
    only_b = generic.exchanges(key="journal-b-0001", wait_for=2)
    assert [(e["seq"], e["key"], e["decision"]) for e in only_b] == [(2, "journal-b-0001", "new")]
    late = generic.admin("GET", "journal", wait_for=3, timeout=0.05)
    assert late.status_code == 409
    assert "3 request(s)" in late.json()["error"]


def test_timeline_is_the_journal_as_text(generic: Served) -> None:
    generic.client.request(**keyed("generic", "timeline-key-0001"))
    text = generic.ok("GET", "timeline")["timeline"]
    assert "POST /v1/things" in text
    assert "timeline-key-0001" in text
    assert text.endswith("1 request(s), 1 side effect(s)")


# -- the process -------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly_with_exit_0(fleet: Fleet, signum: signal.Signals) -> None:
    served = fleet[signum.name]
    assert served.ok("GET", "health")["variant"] == "generic"  # a keep-alive connection is open
    served.ok("POST", "faults", {"kind": "hold"})
    request = keyed("generic", "signal-key-0001")
    threading.Thread(target=_quiet_request, args=(served.url, request), daemon=True).start()
    served.ok("POST", "faults/1/wait", {"timeout": 5})
    served.proc.send_signal(signum)
    assert served.proc.wait(timeout=10) == 0
    err = served.close()
    assert "Traceback" not in err
    assert f"stopped on {signum.name}" in err


def _quiet_request(url: str, request: dict[str, Any]) -> None:
    with contextlib.suppress(httpx.HTTPError), httpx.Client(base_url=url, timeout=5.0) as c:
        c.request(**request)


def test_command_line_overrides_and_seed_reach_the_server(fleet: Fleet) -> None:
    served = fleet["overrides"]
    health = served.ok("GET", "health")
    assert health["seed"] == 9
    assert health["overrides"] == {"ttl": 5, "replay_headers": [["X-Replayed", "true"]]}
    request = keyed("generic", "override-key-0001")
    served.client.request(**request)
    replay = served.client.request(**request)
    assert replay.headers["X-Replayed"] == "true"
    served.ok("POST", "clock", {"advance": 6})
    served.client.request(**request)
    assert [d for d, _ in _trail(served)] == ["new", "replayed", "new"]


def test_serves_with_pytest_unimportable(fleet: Fleet) -> None:
    served = fleet["no-pytest"]
    assert served.ok("GET", "health")["variant"] == "generic"
    assert served.client.request(**keyed("generic", "no-pytest-key-0001")).status_code == 201
    assert len(served.side_effects()) == 1


# -- in-process: argument errors and the remote-admin check ------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--variant", "nope"], "unknown variant 'nope'; choose one of generic"),
        (["serve", "--set", "ttl"], "--set takes NAME=VALUE"),
        (["serve", "--set", "ttl=soon"], "ttl must be a number or null"),
        (["serve", "--set", "colour=1"], "unknown policy option(s) colour"),
        (["serve", "--set", "on_mismatch=maybe"], 'on_mismatch must be one of "reject"'),
    ],
)
def test_bad_command_line_exits_2_naming_the_fix(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_variants_command_lists_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["variants"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == variant_names()  # built-in ones, then any registered in this process
    assert listed[: len(VARIANTS)] == VARIANTS


def test_bad_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--port", "70000"])
    assert exited.value.code == 2
    assert "a port is a number 0-65535" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--header-timeout", "--body-timeout", "--idle-timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf", "3601"])
def test_a_timeout_that_is_not_a_usable_number_of_seconds_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", flag, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: a number of seconds > 0 and at most 3600 is wanted" in err
    assert "Traceback" not in err


def test_port_in_use_exits_1_naming_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    assert "choose another --host or --port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("203.0.113.7", False),
        ("::ffff:203.0.113.7", False),
        ("2001:db8::1", False),
        ("", False),
        (None, False),
        ("not-an-address", False),
    ],
)
def test_loopback_peer_check(address: str | None, loopback: bool) -> None:
    assert is_loopback_peer(address) is loopback


@pytest.mark.parametrize(
    ("flags", "peer", "status"),
    [
        ([], "127.0.0.1", 200),
        ([], "203.0.113.7", 403),
        (["--allow-remote-admin"], "203.0.113.7", 200),
    ],
)
def test_admin_refuses_non_loopback_peer_unless_allowed(
    flags: list[str], peer: str, status: int
) -> None:
    args = build_parser().parse_args(["serve", "--variant", "generic", *flags])
    app, _ = build_app(args)  # nothing is bound: the WSGI app is called directly
    response = Client(app).get("/__admin/health", environ_base={"REMOTE_ADDR": peer})
    assert response.status_code == status
    if status == 403:
        assert "--allow-remote-admin" in response.get_json()["error"]
    else:
        assert response.get_json()["variant"] == "generic"
