"""Contacts (``/crm/v3/objects/contacts/...`` and ``/crm/objects/2026-03/contacts/...``) and
timeline events (``/crm/v3/timeline/events...`` and ``/integrators/timeline/v3/events...``)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from forwarder.sandbox import contact_batches, contacts, search, timeline
from forwarder.sandbox.config import SCOPE_CONTACTS_READ, SCOPE_CONTACTS_WRITE, SCOPE_TIMELINE
from forwarder.sandbox.gate import Call, Outcome, Route, handle

CONTACTS = ("/crm/v3/objects/contacts", "/crm/objects/2026-03/contacts")
TIMELINE = ("/crm/v3/timeline/events", "/integrators/timeline/v3/events")
READ = Route("contacts.batch_read", (SCOPE_CONTACTS_READ,), "general")
CREATE = Route("contacts.batch_create", (SCOPE_CONTACTS_WRITE,), "general")
UPDATE = Route("contacts.batch_update", (SCOPE_CONTACTS_WRITE,), "general")
UPSERT = Route("contacts.batch_upsert", (SCOPE_CONTACTS_WRITE,), "general")
SEARCH = Route("contacts.search", (SCOPE_CONTACTS_READ,), "search")
TIMELINE_ONE = Route("timeline.create", (SCOPE_TIMELINE,), "general")
TIMELINE_BATCH = Route("timeline.batch_create", (SCOPE_TIMELINE,), "general")


def _fail_first(call: Call) -> int:
    return call.fault.partial_failures if call.fault is not None else 0


def _read(call: Call, body: bytes) -> Outcome:
    request = contacts.decode_read(body)
    return contact_batches.batch_read(call.sandbox.contacts, request, _fail_first(call))


def _create(call: Call, body: bytes) -> Outcome:
    return contact_batches.batch_create(call.sandbox.contacts, contacts.decode_write(body))


def _update(call: Call, body: bytes) -> Outcome:
    request = contacts.decode_write(body)
    return contact_batches.batch_update(call.sandbox.contacts, request, _fail_first(call))


def _upsert(call: Call, body: bytes) -> Outcome:
    request = contacts.decode_write(body)
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


HANDLERS = [
    batch_read,
    batch_create,
    batch_update,
    batch_upsert,
    search_contacts,
    create_timeline_event,
    create_timeline_events,
]
