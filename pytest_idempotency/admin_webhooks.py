"""Admin calls for webhooks (``/__admin/webhooks/...``): register receivers, list events and
deliveries, deliver what is due, redeliver, script delivery faults, drain.

A receiver in any language registers its loopback URL, makes the fake emit (by calling the
fake API), then moves the clock (``POST /__admin/clock``) or calls ``webhooks/deliver``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .admin_calls import AdminError, Payload, only
from .policy import is_header_name
from .webhooks import DELIVERY_FAULT_KINDS, Webhooks, hub_for
from .webhooks import scheduler as scheduler_module
from .webhooks.destinations import url_problem
from .webhooks.hub import MAX_ID_PREFIX, MAX_SCHEDULE
from .webhooks.scheduler import Endpoint, Job

if TYPE_CHECKING:
    from werkzeug.wrappers import Request

    from .admin import Admin
    from .app import App

__all__ = ["ROUTES"]


def _fail(status: int, message: str) -> Exception:
    return AdminError(status, message)


def _hub(app: App) -> Webhooks:
    state = app.state
    hub = hub_for(state.resources, state.clock, state.variant)
    hub.faults.seed = state.seed  # chaos without a seed follows --seed
    return hub


def _only(body: dict[str, Any], allowed: tuple[str, ...], example: str) -> None:
    only(body, allowed, example)


def _typed(body: dict[str, Any], name: str, kinds: tuple[type, ...], wanted: str) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
        raise _fail(400, f'"{name}" must be {wanted} (got {json.dumps(value)})')
    return value


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "receiver": endpoint.describe(),
        "events": list(endpoint.events) if endpoint.events is not None else None,
        "signed": endpoint.secret is not None,
        "route": endpoint.route,
    }


def _job(job: Job) -> dict[str, Any]:
    return {
        "event_id": job.event.id,
        "event_type": job.event.type,
        "endpoint": job.endpoint.id,
        "state": job.state,
        "attempts": job.attempts,
        "due": job.due,
        "fault": job.fault.kind if job.fault is not None else None,
    }


def _endpoints_get(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    hub = _hub(app)
    return 200, {
        "endpoints": [_endpoint(e) for e in hub.endpoints],
        "dropped_endpoints": hub.dropped_endpoints,
    }


def _endpoints_post(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    example = '{"url": "http://127.0.0.1:8000/webhooks", "events": ["task.*"]}'
    _only(body, ("url", "events", "secret", "callback_url"), example)
    url = _typed(body, "url", (str,), "a loopback URL such as http://127.0.0.1:8000/hook")
    if url is None:
        raise _fail(400, f'"url" is required: the receiver\'s loopback URL, e.g. {example}')
    events = _typed(body, "events", (list,), 'a list of event types such as ["task.*"]')
    if events is not None and not all(isinstance(e, str) for e in events):
        raise _fail(400, f'"events" must be a list of strings (got {json.dumps(events)})')
    options: dict[str, Any] = {"kind": "url", "events": events}
    if "secret" in body:
        options["secret"] = _typed(body, "secret", (str,), 'a string such as "whsec_…" or null')
    callback = _typed(body, "callback_url", (str,), "the callback URL the fake should reroute")
    for name, value in (("url", url), ("callback_url", callback)):
        problem = None if value is None else url_problem(value)
        if problem is not None:
            shown = json.dumps(value[:60]) + ("..." if len(value) > 60 else "")
            raise _fail(400, f'"{name}" {shown} {problem}')
    hub = _hub(app)
    try:
        if callback is not None:
            endpoint = hub.route(callback, url, **options)
        else:
            endpoint = hub.register(url, **options)
    except ValueError as exc:
        raise _fail(400, str(exc)) from None
    return 201, {"endpoint": _endpoint(endpoint)}


def _events(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    hub = _hub(app)
    return 200, {
        "events": [
            {"id": e.id, "type": e.type, "created": e.created, **{"body": e.json()}}
            for e in hub.events
        ],
        "skipped": [{"event_id": eid, "callback_url": url} for eid, url in hub.skipped],
        "dropped_events": hub.dropped_events,
        "dropped_skipped": hub.dropped_skipped,
        "dropped_scheduled": hub.dropped_scheduled,
    }


def _deliveries(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    hub = _hub(app)
    return 200, {
        "deliveries": [a.as_dict() for a in hub.deliveries],
        "jobs": [_job(j) for j in hub.jobs],
        "dropped_jobs": hub.scheduler.dropped_jobs,
        "dropped_deliveries": hub.journal.dropped,
        "dropped_queued": hub.scheduler.dropped_queued,
        "dropped_endpoints": hub.dropped_endpoints,
        "due_now": hub.due_now(),
        "problems": hub.problems(),
        "timeline": hub.timeline(),
    }


def _deliver(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    _only(body, (), "{}")
    # Bounded like a clock move: a slow receiver leaves "due_now" above 0; call again.
    made = _hub(app).deliver_due(budget=scheduler_module.CLOCK_BUDGET)
    return 200, {"made": made, **_deliveries(admin, app, request, {})[1]}


def _redeliver(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    example = '{"event_id": "evt_000001AZuB", "times": 2, "concurrently": true}'
    _only(body, ("event_id", "times", "concurrently"), example)
    event_id = _typed(body, "event_id", (str,), "an event id from GET /__admin/webhooks/events")
    if event_id is None:
        raise _fail(400, f'"event_id" is required, e.g. {example}')
    times = _typed(body, "times", (int,), "a whole number >= 1")
    concurrently = body.get("concurrently", False)
    if not isinstance(concurrently, bool):
        raise _fail(400, f'"concurrently" must be true or false (got {json.dumps(concurrently)})')
    hub = _hub(app)
    try:
        made = hub.deliver_again(event_id, 1 if times is None else times, concurrently=concurrently)
    except KeyError as exc:
        raise _fail(404, str(exc.args[0])) from None
    except ValueError as exc:
        raise _fail(400, str(exc)) from None
    return 200, {"made": made, "deliveries": [a.as_dict() for a in hub.deliveries]}


def _faults_get(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    plan = _hub(app).faults
    return 200, {
        "faults": [f.as_dict() for f in plan.scripted],
        "unfired": [f.describe() for f in plan.unfired()],
        "kinds": DELIVERY_FAULT_KINDS,
        "dropped_faults": plan.dropped,
    }


_FAULT_FIELDS = ("kind", "event_type", "event_id", "times", "copies", "seconds")


def _faults_post(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    plan = _hub(app).faults
    kind = body.get("kind")
    if kind == "chaos":
        _only(body, ("kind", "rate", "seed", "kinds"), '{"kind": "chaos", "rate": 0.5, "seed": 7}')
        rate = _typed(body, "rate", (int, float), "a number from 0 to 1")
        seed = _typed(body, "seed", (int,), "a whole number such as 7")
        kinds = _typed(body, "kinds", (list,), 'a list of kinds such as ["duplicate"]')
        used = plan.chaos(0.3 if rate is None else rate, seed=seed, kinds=kinds)
        return 201, {"chaos": {"rate": 0.3 if rate is None else rate, "seed": used}}
    _only(body, _FAULT_FIELDS, '{"kind": "concurrent", "event_type": "task.completed"}')
    if not isinstance(kind, str):
        raise _fail(400, f'"kind" is required: one of {", ".join(DELIVERY_FAULT_KINDS)}, chaos')
    for name in ("event_type", "event_id"):
        _typed(body, name, (str,), "a string")
    for name in ("times", "copies"):
        _typed(body, name, (int,), "a whole number >= 1")
    _typed(body, "seconds", (int, float), "seconds >= 0")
    spec = {k: v for k, v in body.items() if k != "kind" and v is not None}
    fault = plan.add(kind, **spec)
    return 201, {"fault": fault.as_dict()}


def _faults_delete(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    _hub(app).faults.clear()
    return 200, {"faults": []}


def _drain(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    _only(body, ("event_type",), '{"event_type": "task.completed"}')
    event_type = _typed(body, "event_type", (str,), "an event type such as task.completed")
    return 200, {"drained": _hub(app).drain(event_type)}


def _trigger(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    _only(body, ("resource_id", "event_type"), '{"resource_id": "task_000001"}')
    resource_id = _typed(body, "resource_id", (str,), "a resource id such as task_000001")
    event_type = _typed(body, "event_type", (str,), "an event type such as task.completed")
    fired = _hub(app).trigger(resource_id, event_type)
    return 200, {"events": [{"id": e.id, "type": e.type} for e in fired]}


_CONFIG_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "schedule": ((list,), "a list of seconds such as [1, 5, 30]"),
    "timeout": ((int, float), "seconds, e.g. 2"),
    "secret": ((str,), 'a string such as "whsec_test" (or null for unsigned)'),
    "signature_header": ((str,), 'a header name such as "Stripe-Signature" (or null)'),
    "id_prefix": ((str,), 'a prefix such as "evt_"'),
    "after": ((dict,), 'an object such as {"task.completed": 5}'),
}


#: Settings that ``null`` turns off (the others always have a value).
_NULLABLE = ("secret", "signature_header")


#: The longest delay a schedule or an ``after`` may name, and the longest delivery timeout,
#: seconds (chosen: past them the clock's arithmetic or the socket's timeout overflows).
_MAX_DELAY = 10 * 365 * 86400
_MAX_TIMEOUT = 3600


def _seconds(value: object, most: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= most


def _check_settings(changes: dict[str, Any]) -> None:
    """Values that would break later deliveries are refused now, naming the field."""
    schedule = changes.get("schedule", ())
    if len(schedule) > MAX_SCHEDULE:
        raise _fail(400, f'"schedule" takes at most {MAX_SCHEDULE} waits (got {len(schedule)})')
    if len(changes.get("id_prefix") or "") > MAX_ID_PREFIX:
        raise _fail(400, f'"id_prefix" must be at most {MAX_ID_PREFIX} characters')
    if not all(_seconds(s, _MAX_DELAY) for s in schedule):
        raise _fail(
            400, f'"schedule" must be seconds from 0 to {_MAX_DELAY} (got {json.dumps(schedule)})'
        )
    if "timeout" in changes and not (
        _seconds(changes["timeout"], _MAX_TIMEOUT) and changes["timeout"] > 0
    ):
        raise _fail(400, f'"timeout" must be seconds above 0 and at most {_MAX_TIMEOUT}')
    after = changes.get("after") or {}
    for event_type, delay in after.items():
        if not _seconds(delay, _MAX_DELAY):
            raise _fail(
                400,
                f'"after" maps event types to seconds from 0 to {_MAX_DELAY} '
                f"(got {json.dumps(event_type)}: {json.dumps(delay)})",
            )
    header = changes.get("signature_header")
    if header is not None and not is_header_name(header):
        raise _fail(400, '"signature_header" must be a header name such as "Stripe-Signature"')


def _configure(admin: Admin, app: App, request: Request, body: dict[str, Any]) -> Payload:
    _only(body, tuple(_CONFIG_TYPES), '{"schedule": [1, 5], "timeout": 2}')
    for name, (kinds, wanted) in _CONFIG_TYPES.items():
        _typed(body, name, kinds, wanted)
        if name in body and body[name] is None and name not in _NULLABLE:
            raise _fail(400, f'"{name}" must be {wanted}, not null')
    changes = dict(body)
    _check_settings(changes)
    if "schedule" in changes:
        changes["schedule"] = tuple(float(s) for s in changes["schedule"])
    spec = _hub(app).configure(**changes)
    return 200, {
        "schedule": list(spec.schedule),
        "timeout": spec.timeout,
        "signature_header": spec.signature_header,
        "id_prefix": spec.id_prefix,
    }


#: Entries of the admin API's route table.
ROUTES: dict[str, dict[str, Any]] = {
    "webhooks/endpoints": {"GET": _endpoints_get, "POST": _endpoints_post},
    "webhooks/events": {"GET": _events},
    "webhooks/deliveries": {"GET": _deliveries},
    "webhooks/deliver": {"POST": _deliver},
    "webhooks/redeliver": {"POST": _redeliver},
    "webhooks/faults": {"GET": _faults_get, "POST": _faults_post, "DELETE": _faults_delete},
    "webhooks/drain": {"POST": _drain},
    "webhooks/trigger": {"POST": _trigger},
    "webhooks/configure": {"POST": _configure},
}
