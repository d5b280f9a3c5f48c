"""The ``/_sandbox/`` inspection and control API (no auth, no limits). Shapes: see the package
docstring of ``forwarder.sandbox``."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post

from forwarder.sandbox.faults import FaultScript
from forwarder.sandbox.responses import encode
from forwarder.sandbox.state import Sandbox
from forwarder.sandbox.webhooks import WebhookRequest

JSON = "application/json"


class DefinitionSeed(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    properties: list[str] | dict[str, str] = msgspec.field(default_factory=list)


class TemplateSeed(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    tokens: list[str] = msgspec.field(default_factory=list)


class TokenSeed(msgspec.Struct, forbid_unknown_fields=True):
    token: str
    scopes: list[str]


class ContactSeed(msgspec.Struct, forbid_unknown_fields=True):
    properties: dict[str, Any]


def _sandbox(request: Request[Any, Any, Any]) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def _json(payload: Any, status: int = 200) -> Response[bytes]:
    return Response(encode(payload), status_code=status, media_type=JSON)


def _bad(exc: Exception) -> Response[bytes]:
    return _json({"status": "error", "message": str(exc)}, 400)


@get("/_sandbox")
async def summary(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Counts of everything, the limits and the armed faults."""
    sandbox = _sandbox(request)
    return _json(
        {
            "portalId": sandbox.config.portal_id,
            "tier": sandbox.config.tier,
            "events": {k: len(v) for k, v in sandbox.events.received.items()},
            "duplicates": len(sandbox.events.duplicates),
            "rejected": len(sandbox.events.rejected),
            "contacts": len(sandbox.contacts.by_id),
            "timelineEvents": len(sandbox.timeline.events),
            "limits": sandbox.rate_stats(),
            "faults": sandbox.faults.active(),
        }
    )


@get("/_sandbox/events")
async def received_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Accepted occurrences per event name; duplicates and rejected inputs."""
    sandbox = _sandbox(request)
    name = request.query_params.get("eventName")
    grouped: dict[str, list[Any]] = defaultdict(list)
    for event in sandbox.received_events(name):
        grouped[event.event_name].append(event)
    return _json(
        {
            "received": grouped,
            "duplicates": sandbox.events.duplicates,
            "rejected": sandbox.events.rejected,
        }
    )


@get("/_sandbox/contacts")
async def list_contacts(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _json({"results": [c.to_json() for c in _sandbox(request).contact_list()]})


@post("/_sandbox/contacts")
async def seed_contact(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        seed = msgspec.json.decode(await request.body(), type=ContactSeed)
    except msgspec.MsgspecError as exc:
        return _bad(exc)
    return _json({"id": _sandbox(request).add_contact(seed.properties)}, 201)


@get("/_sandbox/forms")
async def list_forms(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Accepted form submissions: form, email, hutk, page and the contact they landed on."""
    return _json({"results": msgspec.to_builtins(_sandbox(request).forms)})


@get("/_sandbox/timeline")
async def list_timeline(request: Request[Any, Any, Any]) -> Response[bytes]:
    sandbox = _sandbox(request)
    return _json({"results": sandbox.timeline_events(), "duplicates": sandbox.timeline.duplicates})


@get("/_sandbox/requests")
async def request_counts(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Responses per route and status."""
    by_route: dict[str, dict[str, int]] = defaultdict(dict)
    for (route, status), count in _sandbox(request).statuses.items():
        by_route[route][str(status)] = count
    return _json({"byRoute": by_route})


@get("/_sandbox/limits")
async def limits(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _json(_sandbox(request).rate_stats())


@post("/_sandbox/reset")
async def reset(request: Request[Any, Any, Any]) -> Response[bytes]:
    _sandbox(request).reset()
    return Response(b"", status_code=204)


@get("/_sandbox/faults")
async def list_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await _faults_response(request)


async def _faults_response(request: Request[Any, Any, Any]) -> Response[bytes]:
    sandbox = _sandbox(request)
    competing = sandbox.limiter.competing
    return _json(
        {
            "faults": sandbox.faults.active(),
            "competingApp": {
                "dailyShare": competing.daily_share,
                "windowShare": competing.window_share,
                "pattern": competing.pattern,
                "spent": competing.spent,
                "refused": competing.refused,
            },
        }
    )


@post("/_sandbox/faults")
async def script_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        script = msgspec.json.decode(await request.body(), type=FaultScript)
    except msgspec.MsgspecError as exc:
        return _bad(exc)
    _sandbox(request).apply_script(script)
    return await _faults_response(request)


@delete("/_sandbox/faults", status_code=204)
async def clear_faults(request: Request[Any, Any, Any]) -> None:
    sandbox = _sandbox(request)
    sandbox.faults.clear()
    sandbox.compete(0.0, 0.0)


@post("/_sandbox/definitions")
async def seed_definition(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        seed = msgspec.json.decode(await request.body(), type=DefinitionSeed)
        return _json(_sandbox(request).define_event(seed.name, seed.properties), 201)
    except (msgspec.MsgspecError, ValueError) as exc:
        return _bad(exc)


@post("/_sandbox/templates")
async def seed_template(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        seed = msgspec.json.decode(await request.body(), type=TemplateSeed)
    except msgspec.MsgspecError as exc:
        return _bad(exc)
    _sandbox(request).define_template(seed.id, seed.tokens)
    return _json({"id": seed.id, "tokens": seed.tokens}, 201)


@post("/_sandbox/tokens")
async def seed_token(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        seed = msgspec.json.decode(await request.body(), type=TokenSeed)
    except msgspec.MsgspecError as exc:
        return _bad(exc)
    _sandbox(request).add_token(seed.token, seed.scopes)
    return _json({"token": seed.token, "scopes": seed.scopes}, 201)


@post("/_sandbox/webhooks")
async def send_webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        order = msgspec.json.decode(await request.body(), type=WebhookRequest)
    except msgspec.MsgspecError as exc:
        return _bad(exc)
    return _json(await _sandbox(request).send_webhook(order))


HANDLERS = [
    summary,
    received_events,
    list_contacts,
    seed_contact,
    list_timeline,
    list_forms,
    request_counts,
    limits,
    reset,
    list_faults,
    script_faults,
    clear_faults,
    seed_definition,
    seed_template,
    seed_token,
    send_webhook,
]
