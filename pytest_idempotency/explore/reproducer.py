"""The text of a pytest test that replays one schedule with the scripted fault API."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..policy import Policy
from .menu import CRASH, PlannedFault

__all__ = ["ReplayContext", "render_reproducer"]

_LITERALS = (int, float, str, bool, type(None))
#: Faults the runner carries out itself (the reproducer uses the same helpers).
_RUNNER_FAULTS = (CRASH, "in_flight")


@dataclass(frozen=True)
class ReplayContext:
    """What a reproducer needs besides the faults: the variant, its overrides, the operation."""

    variant: str
    overrides: tuple[tuple[str, Any], ...]
    operation: str
    hold: float
    expected_effects: int
    patch_sleep: bool
    #: The operation is an ``async def`` function (the reproducer runs it with ``asyncio.run``).
    is_async: bool = False


def policy_overrides(policy: Policy, registered: Policy | None) -> tuple[tuple[str, Any], ...]:
    """Fields of ``policy`` that differ from the registered variant's, as literal options."""
    if registered is None:
        return ()
    out = []
    for f in dataclasses.fields(policy):
        mine, theirs = getattr(policy, f.name), getattr(registered, f.name)
        if mine != theirs and isinstance(mine, _LITERALS):
            out.append((f.name, mine))
    return tuple(out)


def operation_name(operation: Callable[..., Any]) -> str:
    module = getattr(operation, "__module__", None) or "your_module"
    qualname = getattr(operation, "__qualname__", None) or "operation"
    if "<locals>" in qualname or "<lambda>" in qualname:
        return ""
    return f"{module}:{qualname}"


def _fault_line(fault: PlannedFault, context: ReplayContext, policy: Policy) -> str:
    options = {"seq": fault.seq, **fault.options(policy, context.hold)}
    args = ", ".join([repr(fault.kind)] + [f"{k}={v!r}" for k, v in options.items()])
    where = f"  # {fault.describe()}"
    return f"    idempotent_api.faults.add({args}){where}"


def render_reproducer(
    index: int, faults: Sequence[PlannedFault], context: ReplayContext, policy: Policy
) -> str:
    """A test that scripts ``faults`` by request position and asserts the safe outcome: the
    operation returned with the no-fault run's side effects, or raised with none done."""
    marker = ", ".join(
        [f"variant={context.variant!r}", *(f"{k}={v!r}" for k, v in context.overrides)]
    )
    module, _, name = context.operation.partition(":")
    lines = ["import asyncio", ""] if context.is_async else []
    lines += ["import pytest", ""]
    if context.operation:
        lines += [f"from {module} import {name.split('.')[0]}", ""]
    lines += [
        "from pytest_idempotency.explore import crash_after, fake_sleep, in_flight",
        "",
        "",
        f"@pytest.mark.idempotency({marker})",
        f"def test_explored_schedule_{index}(idempotent_api):",
    ]
    if not context.operation:
        lines.append("    operation = ...  # the zero-argument operation you explored")
    else:
        lines.append(f"    operation = {name}")
    crash = next((f for f in faults if f.name == CRASH), None)
    lines += [_fault_line(f, context, policy) for f in faults if f.name not in _RUNNER_FAULTS]
    lines += ["    try:", *_body(faults, context, crash)]
    lines += [
        "    except Exception:  # raising is safe only when nothing was done",
        "        idempotent_api.assert_side_effects(0)",
        "    else:",
        f"        idempotent_api.assert_side_effects({context.expected_effects})",
    ]
    return "\n".join(lines) + "\n"


def _body(
    faults: Sequence[PlannedFault], context: ReplayContext, crash: PlannedFault | None
) -> list[str]:
    """The lines that run the operation under the runner's helpers, inside the ``try``."""
    if crash is not None:
        body = f"crash_after(idempotent_api, operation, seq={crash.seq})"
    else:
        body = "asyncio.run(operation())" if context.is_async else "operation()"
    contexts = ["fake_sleep(idempotent_api.clock)"] if context.patch_sleep else []
    contexts += [
        f"in_flight(idempotent_api, seq={f.seq}, attempt={f.attempt!r}, path={f.path!r})"
        for f in faults
        if f.name == "in_flight"
    ]
    if contexts:
        return [f"        with {', '.join(contexts)}:", f"            {body}"]
    return [f"        {body}"]
