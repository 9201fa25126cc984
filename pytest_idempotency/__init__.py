"""pytest-idempotency: the server side of a retry, offline.

A fake API on a real loopback socket that implements documented idempotency-key contracts,
breaks the network at the worst moment, jumps its clock, and tells whether a client's retries
caused exactly one side effect.
"""

from __future__ import annotations

from .api import Contract, IdempotentAPI
from .app import App
from .assertions import (
    assert_all_keyed,
    assert_exactly_once,
    assert_fresh,
    assert_never_saw,
    assert_replayed,
    assert_same_key_on_retries,
    assert_saw,
    assert_saw_header,
    assert_side_effect_counts,
    assert_side_effects,
)
from .clock import Clock
from .contract_file import variant_from_contract
from .explore import ExplorationError, ExplorationReport, Schedule
from .faults import FAULT_KINDS, FAULT_POINTS, POINTS, Fault, FaultError, FaultPlan
from .journal import Exchange, Journal, SideEffect
from .openapi import DescriptionError, variant_from_openapi
from .policy import Answer, Policy, PolicyError
from .providers import get_variant, register_variant, variant_names
from .server import IdempotencyServer
from .timeline import render_timeline
from .variant import (
    CredentialScheme,
    HandlerContext,
    Original,
    Reply,
    Resources,
    Route,
    Variant,
    bearer_tenant,
    default_create_handler,
    json_error_shape,
)

__all__ = [
    "FAULT_KINDS",
    "FAULT_POINTS",
    "POINTS",
    "Answer",
    "App",
    "Clock",
    "Contract",
    "CredentialScheme",
    "DescriptionError",
    "Exchange",
    "ExplorationError",
    "ExplorationReport",
    "Fault",
    "FaultError",
    "FaultPlan",
    "HandlerContext",
    "IdempotencyServer",
    "IdempotentAPI",
    "Journal",
    "Original",
    "Policy",
    "PolicyError",
    "Reply",
    "Resources",
    "Route",
    "Schedule",
    "SideEffect",
    "Variant",
    "assert_all_keyed",
    "assert_exactly_once",
    "assert_fresh",
    "assert_never_saw",
    "assert_replayed",
    "assert_same_key_on_retries",
    "assert_saw",
    "assert_saw_header",
    "assert_side_effect_counts",
    "assert_side_effects",
    "bearer_tenant",
    "default_create_handler",
    "get_variant",
    "json_error_shape",
    "register_variant",
    "render_timeline",
    "variant_from_contract",
    "variant_from_openapi",
    "variant_names",
]
