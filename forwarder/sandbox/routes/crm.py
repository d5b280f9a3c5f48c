"""Contacts (``/crm/v3/objects/contacts/...``, ``/crm/objects/{2026-03,2026-09}/contacts/...``),
contact properties, and timeline events (v3 ``.../timeline/.../events...`` and the dated
``/integrators/timeline/2026-03/events/batch``)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post

from forwarder.sandbox import app_events, contact_batches, contacts, search, timeline
from forwarder.sandbox.config import SCOPE_CONTACTS_READ, SCOPE_CONTACTS_WRITE, SCOPE_TIMELINE
from forwarder.sandbox.gate import Call, Outcome, Route, handle
from forwarder.sandbox.versions import enforces_validation_rules

CONTACTS = (
    "/crm/v3/objects/contacts",
    "/crm/objects/2026-03/contacts",
    "/crm/objects/2026-09/contacts",
)
PROPERTIES = (
    "/crm/v3/properties/contacts",
    "/crm/properties/2026-03/contacts",
    "/crm/properties/2026-09/contacts",
)
TIMELINE = ("/crm/v3/timeline/events", "/integrators/timeline/v3/events")
APP_EVENTS = "/integrators/timeline/2026-03/events/batch"
READ = Route("contacts.batch_read", (SCOPE_CONTACTS_READ,), "general")
CREATE = Route("contacts.batch_create", (SCOPE_CONTACTS_WRITE,), "general")
UPDATE = Route("contacts.batch_update", (SCOPE_CONTACTS_WRITE,), "general")
UPSERT = Route("contacts.batch_upsert", (SCOPE_CONTACTS_WRITE,), "general")
SEARCH = Route("contacts.search", (SCOPE_CONTACTS_READ,), "search")
TIMELINE_ONE = Route("timeline.create", (SCOPE_TIMELINE,), "general")
TIMELINE_BATCH = Route("timeline.batch_create", (SCOPE_TIMELINE,), "general")
APP_EVENTS_BATCH = Route("timeline.batch_create", (SCOPE_TIMELINE,), "general")
PROPERTIES_READ = Route(
    "contacts.properties", (SCOPE_CONTACTS_READ, "crm.schemas.contacts.read"), "general"
)


def _fail_first(call: Call) -> int:
    return call.fault.partial_failures if call.fault is not None else 0


def _read(call: Call, body: bytes) -> Outcome:
    request = contacts.decode_read(body)
    return contact_batches.batch_read(call.sandbox.contacts, request, _fail_first(call))


def _rules(call: Call, creating: list[dict[str, str | None]]) -> Outcome | None:
    required = call.sandbox.config.required_contact_properties
    if not required or not enforces_validation_rules(call.version):
        return None
    return app_events.missing_required(required, creating)


def _create(call: Call, body: bytes) -> Outcome:
    request = contacts.decode_write(body)
    creating = [contacts.to_text(item.properties) for item in request.inputs]
    if (refused := _rules(call, creating)) is not None:
        return refused
    return contact_batches.batch_create(call.sandbox.contacts, request)


def _update(call: Call, body: bytes) -> Outcome:
    request = contacts.decode_write(body)
    return contact_batches.batch_update(call.sandbox.contacts, request, _fail_first(call))


def _upsert(call: Call, body: bytes) -> Outcome:
    request = contacts.decode_write(body)
    store = call.sandbox.contacts
    creating = [
        {**contacts.to_text(item.properties), item.id_property or "email": str(item.id)}
        for item in request.inputs
        if store.find(str(item.id), item.id_property) is None
    ]
    if (refused := _rules(call, creating)) is not None:
        return refused
    return contact_batches.batch_upsert(call.sandbox.contacts, request, _fail_first(call))


def _search(call: Call, body: bytes) -> Outcome:
    request = search.decode_search(body)
    problem = search.check_limits(len(body.decode("utf-8", "replace")), request)
    if problem is not None:
        return problem
    return 200, search.run(call.sandbox.contact_list(), request)


def _timeline_one(call: Call, body: bytes) -> Outcome:
    item = timeline.decode_one(body)
    outcome = call.sandbox.timeline.create(item, call.sandbox.contacts, call.request_id)
    return outcome if not isinstance(outcome, dict) else (201, outcome)


def _timeline_batch(call: Call, body: bytes) -> Outcome:
    batch = timeline.decode_batch(body)
    store = call.sandbox.timeline
    return store.create_batch(
        batch.inputs, call.sandbox.contacts, call.request_id, _fail_first(call)
    )


def _app_events(call: Call, body: bytes) -> Outcome:
    batch = app_events.decode_batch(body)
    sandbox = call.sandbox
    return app_events.create_batch(
        sandbox.timeline, batch.inputs, sandbox.contacts, call.request_id
    )


def _properties(call: Call, body: bytes) -> Outcome:
    names = sorted(call.sandbox.contacts.writable)
    results = [{"name": n, "label": n, "type": "string", "fieldType": "text"} for n in names]
    return 200, {"results": results}


def _paths(prefixes: tuple[str, ...], suffix: str) -> list[str]:
    return [prefix + suffix for prefix in prefixes]


@post(_paths(CONTACTS, "/batch/read"))
async def batch_read(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, READ, _read)


@post(_paths(CONTACTS, "/batch/create"))
async def batch_create(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, CREATE, _create)


@post(_paths(CONTACTS, "/batch/update"))
async def batch_update(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, UPDATE, _update)


@post(_paths(CONTACTS, "/batch/upsert"))
async def batch_upsert(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, UPSERT, _upsert)


@post(_paths(CONTACTS, "/search"))
async def search_contacts(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, SEARCH, _search)


@post(_paths(TIMELINE, ""))
async def create_timeline_event(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, TIMELINE_ONE, _timeline_one)


@post(_paths(TIMELINE, "/batch/create"))
async def create_timeline_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, TIMELINE_BATCH, _timeline_batch)


@post(APP_EVENTS)
async def create_app_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, APP_EVENTS_BATCH, _app_events)


@get(list(PROPERTIES))
async def read_contact_properties(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, PROPERTIES_READ, _properties)


HANDLERS = [
    create_app_events,
    read_contact_properties,
    batch_read,
    batch_create,
    batch_update,
    batch_upsert,
    search_contacts,
    create_timeline_event,
    create_timeline_events,
]
