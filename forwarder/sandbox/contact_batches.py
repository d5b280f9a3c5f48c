"""The four contact batch operations: read, create, update, upsert.

Each returns ``(status, body)`` or an ``ApiError``; ``fail_first`` is the scripted
partial-failure fault (the first N inputs answer ``OBJECT_NOT_FOUND`` in a 207).
"""

from __future__ import annotations

from typing import Any

from forwarder.sandbox.contacts import (
    BatchRead,
    BatchWrite,
    ContactStore,
    batch_response,
    not_found,
    to_text,
    too_many,
)
from forwarder.sandbox.responses import ApiError, iso_now, validation_error

Outcome = tuple[int, dict[str, Any]] | ApiError


def _id_property_error(store: ContactStore, id_property: str | None) -> ApiError | None:
    if id_property in (None, "hs_object_id") or id_property in store.unique:
        return None
    return validation_error(f"Unable to perform lookup by non-unique 0-1 property {id_property}")


def batch_read(store: ContactStore, body: BatchRead, fail_first: int = 0) -> Outcome:
    """Found contacts in ``results``; misses in one 207 ``OBJECT_NOT_FOUND`` (``context.ids``)."""
    started = iso_now()
    if problem := too_many(len(body.inputs)) or _id_property_error(store, body.id_property):
        return problem
    wanted = body.properties or list(DEFAULT_READ)
    results: list[dict[str, Any]] = []
    missing: list[str] = []
    for index, item in enumerate(body.inputs):
        key = str(item.id)
        contact = None if index < fail_first else store.find(key, body.id_property)
        if contact is None:
            missing.append(key)
        else:
            results.append(contact.to_json(wanted))
    errors = [not_found(missing)] if missing else []
    return (207 if errors else 200), batch_response(results, errors, started)


DEFAULT_READ = ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname")


def batch_create(store: ContactStore, body: BatchWrite) -> Outcome:
    """201 with the new contacts; 409 for the whole batch on the first existing email."""
    started = iso_now()
    if (problem := too_many(len(body.inputs))) is not None:
        return problem
    emails: set[str] = set()
    for item in body.inputs:
        props = to_text(item.properties)
        if (problem := store.check_properties(props) or store.conflict(props, None)) is not None:
            return problem
        email = (props.get("email") or "").lower()
        if email and email in emails:
            return validation_error(f"Duplicate email in batch input: {email}")
        emails.add(email)
    results = []
    for item in body.inputs:
        contact = store.create(to_text(item.properties))
        results.append(_with_trace(contact.to_json(), item.object_write_trace_id))
    return 201, batch_response(results, [], started)


def batch_update(store: ContactStore, body: BatchWrite, fail_first: int = 0) -> Outcome:
    """200, or 207 with ``OBJECT_NOT_FOUND`` for unknown ids (trace id echoed in context)."""
    started = iso_now()
    if (problem := too_many(len(body.inputs)) or _duplicates(body)) is not None:
        return problem
    for item in body.inputs:
        if item.id_property == "email":
            return validation_error("Unable to perform update/upsert by non-unique 0-1 property")
        if (problem := _id_property_error(store, item.id_property)) is not None:
            return problem
        if (problem := store.check_properties(item.properties)) is not None:
            return problem
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(body.inputs):
        key = str(item.id)
        contact = None if index < fail_first else store.find(key, item.id_property)
        if contact is None:
            errors.append(not_found([key], item.object_write_trace_id))
            continue
        props = to_text(item.properties)
        if (problem := store.conflict(props, contact.id)) is not None:
            return problem
        store.write(contact, props)
        results.append(_with_trace(contact.to_json(), item.object_write_trace_id))
    return (207 if errors else 200), batch_response(results, errors, started)


def batch_upsert(store: ContactStore, body: BatchWrite, fail_first: int = 0) -> Outcome:
    """200 with ``new`` per result; by a unique ``idProperty`` an unknown id creates a contact."""
    started = iso_now()
    if (problem := too_many(len(body.inputs)) or _duplicates(body)) is not None:
        return problem
    for item in body.inputs:
        if (problem := _id_property_error(store, item.id_property)) is not None:
            return problem
        if (problem := store.check_properties(item.properties)) is not None:
            return problem
        props = to_text(item.properties)
        existing = store.find(str(item.id), item.id_property)
        if (problem := store.conflict(props, existing.id if existing else None)) is not None:
            return problem
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(body.inputs):
        key = str(item.id)
        props = to_text(item.properties)
        contact = store.find(key, item.id_property)
        if index < fail_first or (contact is None and item.id_property in (None, "hs_object_id")):
            errors.append(not_found([key], item.object_write_trace_id))
            continue
        created = contact is None
        if contact is None:
            contact = store.create({**props, item.id_property or "email": key})
        else:
            store.write(contact, props)
        result = _with_trace(contact.to_json(), item.object_write_trace_id)
        result["new"] = created
        results.append(result)
    return (207 if errors else 200), batch_response(results, errors, started)


def _duplicates(body: BatchWrite) -> ApiError | None:
    seen: set[tuple[str | None, str]] = set()
    repeated: list[str] = []
    for item in body.inputs:
        if item.id is None:
            return validation_error("Every input needs an id")
        key = str(item.id)
        marker = (item.id_property, key.lower() if item.id_property == "email" else key)
        if marker in seen:
            repeated.append(key)
        seen.add(marker)
    if not repeated:
        return None
    problem = validation_error(
        f"Duplicate IDs found in batch input: [{', '.join(repeated)}]. IDs must be unique"
    )
    return ApiError(400, problem.category, problem.message, context={"ids": repeated})


def _with_trace(result: dict[str, Any], trace_id: str | None) -> dict[str, Any]:
    if trace_id is not None:
        result["objectWriteTraceId"] = trace_id
    return result
