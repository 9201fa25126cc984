"""Usage mistakes a reviewer met, each refused at once with the fix in its words: never a bare
``KeyError`` or ``AttributeError`` from deep inside, a pluggy traceback, an option silently
ignored, or a header built from a key with CR or LF in it."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_idempotency import Answer, ExplorationError, IdempotentAPI, register_variant
from pytest_idempotency.api import CHECKS
from pytest_idempotency.explore import ExplorationTypeError
from pytest_idempotency.overrides import coerce_policy_options
from pytest_idempotency.policy import PolicyError
from pytest_idempotency.providers import get_variant

PETSTORE = Path(__file__).parent / "data" / "petstore-3.0.yaml"
CHECK_NAMES = ", ".join(CHECKS)

# -- verify(disabled=...) ----------------------------------------------------------------------


@pytest.mark.parametrize("scripted", [False, True], ids=["quiet", "with-a-problem"])
def test_verify_with_an_unknown_check_name_lists_the_checks(
    idempotent_api: IdempotentAPI, scripted: bool
) -> None:
    if scripted:  # a problem to report: the name used to be looked up, a bare KeyError
        idempotent_api.faults.drop_response()
    with pytest.raises(ValueError, match="unknown check") as refused:
        idempotent_api.verify(disabled=["assert_all_faults_fire"])
    assert str(refused.value) == (
        "verify(disabled=...): unknown check(s) 'assert_all_faults_fire'; "
        f"the checks are {CHECK_NAMES}"
    )
    with pytest.raises(ValueError, match=r"unknown check\(s\) 'nope'"):
        idempotent_api.failure_message(["nope"])
    if scripted:
        idempotent_api.verify(disabled=["assert_all_faults_fired"])  # the right name still works
        idempotent_api.reset()  # the unfired fault would fail this test's teardown


def test_verify_with_a_bare_check_name_says_to_wrap_it_in_a_list(
    idempotent_api: IdempotentAPI,
) -> None:
    idempotent_api.faults.drop_response()
    with pytest.raises(TypeError) as refused:  # it was read letter by letter: KeyError 'a'
        idempotent_api.verify(disabled="assert_all_faults_fired")
    assert str(refused.value) == (
        "verify(disabled=...) takes a list of check names such as ['assert_all_faults_fired'], "
        f"not 'assert_all_faults_fired'; the checks are {CHECK_NAMES}"
    )
    with pytest.raises(TypeError, match=r"a check name is a str, not 3; the checks are"):
        idempotent_api.problems([3])  # type: ignore[list-item]
    idempotent_api.reset()


# -- register_variant --------------------------------------------------------------------------


def test_register_variant_with_a_name_says_it_takes_a_variant() -> None:
    with pytest.raises(TypeError) as refused:  # it was AttributeError: 'str' ... 'name'
        register_variant("acme")  # type: ignore[arg-type]
    assert str(refused.value) == (
        "register_variant() takes a Variant, not str 'acme': build one first, e.g. "
        "register_variant(Variant(name='acme', policy=..., routes=...)), or a copy of another: "
        "dataclasses.replace(get_variant('generic'), name=...)"
    )
    with pytest.raises(TypeError, match=r"choose it by name \(variant='phantom'\)$"):
        register_variant("phantom")  # type: ignore[arg-type]
    acme = dataclasses.replace(get_variant("generic"), name="acme-usage")
    with pytest.raises(TypeError, match=r"register_variant\(replace=...\) takes True or False"):
        register_variant(acme, replace="yes")  # type: ignore[arg-type]


# -- --idempotency-variant ---------------------------------------------------------------------


@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["default", "quiet"])
def test_an_unknown_idempotency_variant_option_is_one_usage_error_line(
    pytester: pytest.Pytester, quiet: list[str]
) -> None:
    pytester.makepyfile("def test_it(idempotent_api):\n    pass\n")
    result = pytester.runpytest_subprocess(*quiet, "--idempotency-variant", "nope", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert (
        "ERROR: --idempotency-variant=nope: unknown idempotency variant(s) nope; choose from "
        "generic, moda, whet, phantom, letmepost, stripe, ietf, 'seeds' or 'all'"
    ) in errors
    assert "Traceback" not in errors + result.stdout.str()
    assert "pluggy" not in errors + result.stdout.str()


def test_an_unknown_variant_in_the_ini_or_environment_names_where_it_came_from(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_it(idempotent_api):\n    pass\n")
    monkeypatch.setenv("PYTEST_IDEMPOTENCY_VARIANT", "generic,nope")
    result = pytester.runpytest_subprocess("-q", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: PYTEST_IDEMPOTENCY_VARIANT=generic,nope: unknown idempotency variant(s) nope"
        in (result.stderr.str())
    )
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nidempotency_variant = stripey\n"
    )
    result = pytester.runpytest_subprocess("-q", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: ini idempotency_variant = stripey: unknown idempotency variant(s) stripey" in (
        result.stderr.str()
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


# -- marker options that conflict or would be ignored ------------------------------------------

CONFLICTS = {
    'overlay="o.json"': "overlay= patches the document of openapi=, and no marker gives one, so "
    "the overlay would be ignored: add openapi='api.yaml' beside overlay= (or drop overlay=)",
    'openapi="api.yaml", variant="phantom"': "openapi= and variant= on one marker: openapi= serves "
    "that document instead of a named variant, so variant='phantom' would be ignored; drop "
    "variant= (policy options such as ttl=60 change the document's rules), or drop openapi= to "
    "serve the variant",
    'openapi="api.yaml", variants=["generic", "moda"]': "openapi= and variants= on one marker: "
    "openapi= serves that document instead of a named variant, so variants=*'moda'* would be "
    "ignored; drop variants= *",
    'variant="moda", overlay="o.json"': "overlay= patches the document of openapi=, and no "
    "marker gives one*",
}


def test_marker_options_that_conflict_or_would_be_ignored_are_usage_errors(
    pytester: pytest.Pytester,
) -> None:
    lines = ["import pytest", ""]
    for number, options in enumerate(CONFLICTS):
        lines += [f"@pytest.mark.idempotency({options})", f"def test_bad_{number}(idempotent_api):"]
        lines += ["    pass", ""]
    lines += ["def test_still_served(idempotent_api):", "    assert idempotent_api.url", ""]
    pytester.makepyfile("\n".join(lines))
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=len(CONFLICTS), passed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    assert "pytest.UsageError" not in result.stdout.str()  # the message alone, no traceback
    for words in CONFLICTS.values():
        result.stdout.fnmatch_lines([f"@pytest.mark.idempotency: {words}"])


def test_a_closer_marker_chooses_between_a_variant_and_a_document(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "api.yaml").write_bytes(PETSTORE.read_bytes())
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.idempotency(openapi="api.yaml", ttl=60)

        def test_the_module_document(idempotent_api):
            assert idempotent_api.name == "pet-store"
            assert idempotent_api.policy.ttl == 60

        @pytest.mark.idempotency(variant="phantom")
        def test_a_closer_variant(idempotent_api):
            assert idempotent_api.name == "phantom"  # it used to be the document, silently
            assert idempotent_api.policy.ttl == 60

        @pytest.mark.idempotency(variants=["generic", "moda"])
        def test_closer_variants(idempotent_api, idempotency_variant):
            assert idempotent_api.name == idempotency_variant

        @pytest.mark.idempotency(variant="phantom")
        class TestDocumentAgain:
            @pytest.mark.idempotency(openapi="api.yaml")
            def test_a_closer_document(self, idempotent_api):
                assert idempotent_api.name == "pet-store"
        """
    )
    # A default list of variants does not run a document's test once per name.
    result = pytester.runpytest("-p", "no:randomly", "-v", "--idempotency-variant=generic,ietf")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*::test_the_module_document PASSED*"])


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_idempotency", "serve", *args, "--port", "0"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("given", ["--openapi", "--contract"])
def test_serve_refuses_a_variant_that_a_file_would_replace(given: str) -> None:
    served = _serve("--variant", "phantom", given, str(PETSTORE))  # it served the file
    assert served.returncode == 2
    assert served.stdout == ""
    assert (
        f"pytest-idempotency: error: --variant phantom and {given}: {given} serves the API its "
        "file describes instead of a named variant, so --variant would be ignored; drop "
        f"--variant (--set NAME=VALUE changes the file's rules), or drop {given} to serve phantom"
    ) in served.stderr
    assert "Traceback" not in served.stderr


def test_serve_still_refuses_an_overlay_without_a_document_and_an_unknown_variant() -> None:
    served = _serve("--overlay", "o.json")
    assert served.returncode == 2
    assert "error: --overlay changes an OpenAPI document: pass --openapi FILE too" in served.stderr
    served = _serve("--variant", "")
    assert served.returncode == 2
    assert "error: unknown variant ''; choose one of generic" in served.stderr


# -- explore() ---------------------------------------------------------------------------------


def _never_called() -> None:
    raise AssertionError("explore() ran the operation despite a bad argument")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"seed": "x"},
            TypeError,
            "seed must be an int (the session's --idempotency-seed when None), not 'x'",
        ),
        ({"seed": 1.5}, TypeError, "seed must be an int (*), not 1.5"),
        ({"seed": True}, TypeError, "seed must be an int (*), not True"),
        (
            {"max_faults": True},
            TypeError,
            "max_faults must be a whole number (an int) >= 0 (got True)",
        ),
        (
            {"max_faults": "2"},
            TypeError,
            "max_faults must be a whole number (an int) >= 0 (got '2')",
        ),
        ({"max_faults": -1}, ValueError, "max_faults must be a whole number >= 0 (got -1)"),
        (
            {"budget": False},
            TypeError,
            "budget must be a whole number (an int) >= 1 or None (got False)",
        ),
        ({"budget": 0}, ValueError, "budget must be a whole number >= 1 or None (got 0)"),
        ({"budget": -3}, ValueError, "budget must be a whole number >= 1 or None (got -3)"),
        (
            {"run_timeout": True},
            TypeError,
            "run_timeout must be a number of seconds > 0 *(got True)",
        ),
        ({"run_timeout": -1}, ValueError, "run_timeout must be seconds > 0 and at most * (got -1)"),
        ({"restarts": 1}, TypeError, "restarts must be True or False (got 1)"),
        ({"patch_sleep": "no"}, TypeError, "patch_sleep must be True or False (got 'no')"),
        ({"hazards": 1}, TypeError, "hazards= takes True, False or names from (*) (got 1)"),
        ({"faults": 5}, TypeError, "faults= takes a list of fault names such as ['drop'] (got 5)"),
        (
            {"faults": ["drop", 1]},
            TypeError,
            "faults= takes a list of fault names *(got ['drop', 1])",
        ),
    ],
)
def test_explore_refuses_a_bad_argument_naming_its_type(
    idempotent_api: IdempotentAPI, arguments: dict[str, object], error: type, message: str
) -> None:
    with pytest.raises(ExplorationError) as refused:
        idempotent_api.explore(_never_called, **arguments)  # type: ignore[arg-type]
    assert isinstance(refused.value, error)
    assert isinstance(refused.value, ExplorationTypeError) == (error is TypeError)
    assert re.fullmatch(re.escape(message).replace(r"\*", ".*"), str(refused.value)), refused.value


def test_explore_says_what_an_operation_that_is_not_callable_should_be(
    idempotent_api: IdempotentAPI,
) -> None:
    with pytest.raises(TypeError, match="explore\\(\\) takes a zero-argument callable or async"):
        idempotent_api.explore("client.create()")  # type: ignore[arg-type]


# -- Answer ------------------------------------------------------------------------------------


def test_an_answer_status_must_be_an_int_http_status() -> None:
    with pytest.raises(TypeError) as refused:
        Answer("409", "key_reused", "Reused.")  # type: ignore[arg-type]
    assert str(refused.value) == (
        "Answer status must be an int HTTP status such as 409, not '409': "
        "write Answer(409, 'key_reused', ...)"
    )
    with pytest.raises(TypeError, match="Answer status must be an int HTTP status"):
        Answer(True, "c", "m")  # type: ignore[arg-type]
    for status in (99, 600, 0, -409):
        with pytest.raises(ValueError, match="from 100 to 599") as out_of_range:
            Answer(status, "c", "m")
        assert str(out_of_range.value) == (
            f"Answer status must be an HTTP status from 100 to 599 (got {status}); "
            "write e.g. Answer(409, 'idempotency_key_reused', '...')"
        )
    assert Answer(100, "c", "m").status == 100
    assert Answer(599, "c", "m").status == 599


def test_an_answer_from_json_names_the_policy_field_of_its_status() -> None:
    with pytest.raises(PolicyError) as refused:
        coerce_policy_options({"mismatch": {"status": 700, "code": "c", "message": "m"}})
    assert str(refused.value).startswith(
        "mismatch.status must be an HTTP status from 100 to 599 (got 700)"
    )


def test_a_document_fault_error_with_an_impossible_status_names_its_place() -> None:
    from pytest_idempotency import DescriptionError, variant_from_openapi

    fault_error = {"status": 700, "code": "boom", "message": "Boom {key}."}
    with pytest.raises(DescriptionError) as refused:  # it was a bare ValueError, no place
        variant_from_openapi(PETSTORE, fault_error=fault_error)
    assert refused.value.where == "/x-idempotency/fault_error"
    assert refused.value.problem == (
        "Answer status must be an HTTP status from 100 to 599 (got 700); "
        "write e.g. Answer(409, 'idempotency_key_reused', '...')"
    )


# -- keys and credentials that would break a header --------------------------------------------


@pytest.mark.parametrize("key", ["k-1\r\nX-Evil: 1", "k-1\nX", "k\r", "k\x00", "k\x7f", "k\tx"])
def test_a_key_with_cr_lf_or_a_control_character_cannot_build_a_header(
    idempotent_api: IdempotentAPI, key: str
) -> None:
    expected = (
        f"the key {key!r} holds CR, LF or another control character, and a header cannot carry "
        "one (the rest would go out as a header of its own); use printable characters only"
    )
    with pytest.raises(ValueError, match=r"^the key ") as refused:
        idempotent_api.headers(key=key)
    assert str(refused.value) == expected
    with pytest.raises(ValueError, match=r"^the key ") as refused:
        idempotent_api.request_kwargs({"title": "x"}, key=key)
    assert str(refused.value) == expected


@pytest.mark.idempotency(variant="ietf")
def test_a_quoted_sf_string_key_cannot_carry_cr_lf_either(idempotent_api: IdempotentAPI) -> None:
    with pytest.raises(ValueError, match=r"^the key 'a\\r\\nb' holds CR, LF"):
        idempotent_api.headers(key="a\r\nb")
    assert idempotent_api.headers(key='a "b"')["Idempotency-Key"] == '"a \\"b\\""'


@pytest.mark.idempotency(variant="moda")
def test_a_key_in_the_body_may_hold_any_text(idempotent_api: IdempotentAPI) -> None:
    kwargs = idempotent_api.request_kwargs({"title": "x"}, key="line one\nline two")
    assert kwargs["json"]["idempotency_key"] == "line one\nline two"  # JSON carries it


def test_a_credential_or_extra_header_with_cr_lf_is_refused_too(
    idempotent_api: IdempotentAPI,
) -> None:
    with pytest.raises(ValueError, match=r"^the credential 'sk\\r\\nX-Evil: 1' holds CR, LF"):
        idempotent_api.headers(credential="sk\r\nX-Evil: 1")
    with pytest.raises(ValueError, match=r"^the value of extra header X-Trace 't\\n' holds CR"):
        idempotent_api.headers(extra={"X-Trace": "t\n"})
    with pytest.raises(TypeError, match=r"takes header names \(letters, digits and -\) with str"):
        idempotent_api.headers(extra={"X Trace": "t"})
    assert idempotent_api.headers(key="k-1", extra={"X-Trace": "t"})["X-Trace"] == "t"


# -- misspelt policy options, and a port the fake cannot take -----------------------------------


def test_a_misspelt_policy_option_names_the_closest_field_wherever_it_is_given() -> None:
    policy = get_variant("generic").policy
    with pytest.raises(PolicyError, match=r"unknown policy option\(s\) tll \(did you mean ttl\?\)"):
        policy.replace(tll=60)
    with pytest.raises(PolicyError, match=r"in_flite \(did you mean in_flight\?\), zzz;"):
        coerce_policy_options({"in_flite": "wait", "zzz": 1})  # /__admin/reset, --set, files


def test_a_port_already_taken_fails_each_test_with_the_message_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("PYTEST_IDEMPOTENCY_PORT", str(taken.getsockname()[1]))
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # its fix is another's
        pytester.makepyfile("def test_it(idempotent_api):\n    pass\n")
        result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert "pytest.UsageError" not in result.stdout.str()  # the message alone, no traceback
    result.stdout.fnmatch_lines(
        ["the fake server cannot listen on 127.0.0.1:* (*); choose another PYTEST_IDEMPOTENCY_*"]
    )
