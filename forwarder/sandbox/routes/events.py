"""Custom event sends and event definitions: ``/events/v3/...`` and the dated variants."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, patch, post

from forwarder.sandbox import events
from forwarder.sandbox.config import SCOPE_DEFINITIONS, SCOPE_EVENTS_SEND
from forwarder.sandbox.definitions import DefinitionEgg, DefinitionPatch, PropertyEgg
from forwarder.sandbox.gate import Call, Outcome, Route, handle
from forwarder.sandbox.responses import ApiError, iso_now, validation_error

PREFIXES = ("/events/v3", "/events/2026-03", "/events/custom/2025-09", "/events/custom/2026-09")
SEND = Route("events.send", (SCOPE_EVENTS_SEND,), "events")
SEND_BATCH = Route("events.send_batch", (SCOPE_EVENTS_SEND,), "events")
DEFINITIONS = Route("definitions", (SCOPE_DEFINITIONS,), "general")
DEFINITION = "/event-definitions/{event_name:str}"


def _paths(suffix: str) -> list[str]:
    return [prefix + suffix for prefix in PREFIXES]


def _send(call: Call, body: bytes) -> Outcome:
    item = events.decode_event(body)
    return _record(call, [item])


def _send_batch(call: Call, body: bytes) -> Outcome:
    batch = events.decode_batch(body)
    if len(batch.inputs) > events.MAX_BATCH:
        return validation_error(
            f"The batch endpoint supports batches of 500 inputs, got {len(batch.inputs)}"
        )
    return _record(call, batch.inputs)


def _record(call: Call, inputs: list[events.EventInput]) -> Outcome:
    sandbox = call.sandbox
    problem = events.record(
        inputs, sandbox.rules, sandbox.events, call.request_id, call.route.name, call.now
    )
    return problem if problem is not None else (204, None)


@post(_paths("/send"))
async def send_event(request: Request[Any, Any, Any]) -> Response[bytes]:
    """``POST /events/v3/send``: one occurrence, 204."""
    return await handle(request, SEND, _send)


@post(_paths("/send/batch"))
async def send_event_batch(request: Request[Any, Any, Any]) -> Response[bytes]:
    """``POST /events/v3/send/batch``: up to 500 occurrences, 204."""
    return await handle(request, SEND_BATCH, _send_batch)


def _list(call: Call, body: bytes) -> Outcome:
    text = call.query.get("searchString", "")
    found = [d.to_json() for d in call.sandbox.definitions.by_name.values() if text in d.name]
    return 200, {"total": len(found), "results": found}


def _create(call: Call, body: bytes) -> Outcome:
    egg = msgspec.json.decode(body, type=DefinitionEgg)
    outcome = call.sandbox.definitions.create(egg)
    return outcome if isinstance(outcome, ApiError) else (201, outcome.to_json())


def _not_found(name: str) -> ApiError:
    return ApiError(404, "OBJECT_NOT_FOUND", f"Event definition {name} not found")


def _read(call: Call, body: bytes) -> Outcome:
    name = call.params["event_name"]
    found = call.sandbox.definitions.find(name)
    return _not_found(name) if found is None else (200, found.to_json())


def _update(call: Call, body: bytes) -> Outcome:
    name = call.params["event_name"]
    found = call.sandbox.definitions.find(name)
    if found is None:
        return _not_found(name)
    change = msgspec.json.decode(body, type=DefinitionPatch)
    found.label = change.label if change.label is not None else found.label
    found.description = change.description if change.description is not None else found.description
    found.updated_at = iso_now()
    return 201, found.to_json()


def _delete(call: Call, body: bytes) -> Outcome:
    name = call.params["event_name"]
    return (204, None) if call.sandbox.definitions.delete(name) else _not_found(name)


def _add_property(call: Call, body: bytes) -> Outcome:
    name = call.params["event_name"]
    found = call.sandbox.definitions.find(name)
    if found is None:
        return _not_found(name)
    prop = msgspec.json.decode(body, type=PropertyEgg)
    problem = call.sandbox.definitions.add_property(found, prop)
    return problem if problem is not None else (201, found.to_json())


def _delete_property(call: Call, body: bytes) -> Outcome:
    name, prop = call.params["event_name"], call.params["property_name"]
    found = call.sandbox.definitions.find(name)
    if found is None or found.properties.pop(prop, None) is None:
        return ApiError(404, "OBJECT_NOT_FOUND", f"Property {prop} not found on {name}")
    found.refresh()
    return 204, None


@get(_paths("/event-definitions"))
async def list_definitions(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, DEFINITIONS, _list)


@post(_paths("/event-definitions"))
async def create_definition(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, DEFINITIONS, _create)


@get(_paths(DEFINITION))
async def read_definition(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, DEFINITIONS, _read)


@patch(_paths(DEFINITION))
async def update_definition(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, DEFINITIONS, _update)


@delete(_paths(DEFINITION), status_code=200)
async def delete_definition(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, DEFINITIONS, _delete)


@post(_paths(DEFINITION + "/property"))
async def add_definition_property(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, DEFINITIONS, _add_property)


@delete(_paths(DEFINITION + "/property/{property_name:str}"), status_code=200)
async def delete_definition_property(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, DEFINITIONS, _delete_property)


HANDLERS = [
    send_event,
    send_event_batch,
    list_definitions,
    create_definition,
    read_definition,
    update_definition,
    delete_definition,
    add_definition_property,
    delete_definition_property,
]
