"""Dated timeline events ("app event occurrences"), and the 2026-09 CRM rules.

``POST /integrators/timeline/2026-03/events/batch`` takes ``{"inputs": [AppEventOccurrence]}``
(``eventTypeName``, ``id`` and ``properties`` required) and is all-or-nothing: 400 when any
input is invalid and 409 when any occurrence id already exists ("Occurrences are immutable ...
none were accepted"), else 200 with every occurrence echoed. Event types are the timeline
templates the sandbox knows (name -> property names).
"""

from __future__ import annotations

from typing import Any

import msgspec

from forwarder.sandbox.contacts import ContactStore
from forwarder.sandbox.responses import ApiError, iso_now, validation_error
from forwarder.sandbox.timeline import MAX_BATCH, TimelineStore


class Occurrence(msgspec.Struct, rename="camel"):
    """``AppEventOccurrence``."""

    event_type_name: str
    id: str
    properties: dict[str, str]
    object_id: str | None = None
    object_type_fully_qualified_name: str | None = None
    email: str | None = None
    utk: str | None = None
    domain: str | None = None
    timestamp: str | None = None
    extra_data: Any = None
    timeline_i_frame: dict[str, Any] | None = None


class OccurrenceBatch(msgspec.Struct):
    inputs: list[Occurrence]


decode_batch = msgspec.json.Decoder(OccurrenceBatch).decode


def _problem(store: TimelineStore, item: Occurrence) -> str | None:
    names = store.templates.get(item.event_type_name)
    if names is None:
        return f"Event type {item.event_type_name} not found"
    unknown = sorted(set(item.properties) - names)
    if unknown:
        return f"Properties not defined on event type {item.event_type_name}: {unknown}"
    if item.object_id is None and not item.email and not item.utk:
        return "objectId is required for every event other than contacts (email or utk)"
    return None


def create_batch(
    store: TimelineStore, inputs: list[Occurrence], contacts: ContactStore, request_id: str
) -> tuple[int, dict[str, Any]] | ApiError:
    """Store every occurrence or none of them."""
    started = iso_now()
    if len(inputs) > MAX_BATCH:
        return validation_error(f"Batch operations are limited to 100 events, got {len(inputs)}")
    for index, item in enumerate(inputs):
        if (problem := _problem(store, item)) is not None:
            return validation_error(f"inputs[{index}]: {problem}; none were accepted")
    ids = [(item.event_type_name, item.id) for item in inputs]
    if len(set(ids)) < len(ids) or any(key in store.events for key in ids):
        return ApiError(
            409,
            "CONFLICT",
            "One or more occurrence in the batch already exist. Occurrences are immutable. "
            "Occurrence insert request rejected, none were accepted.",
        )
    results = []
    for item in inputs:
        echoed = {k: v for k, v in msgspec.to_builtins(item).items() if v is not None}
        if item.object_id is None and item.email:
            found = contacts.find(item.email, "email") or contacts.create({"email": item.email})
            echoed["objectId"] = found.id
        store.events[(item.event_type_name, item.id)] = {**echoed, "requestId": request_id}
        results.append(echoed)
    body = {"status": "COMPLETE", "results": results, "startedAt": started}
    return 200, {**body, "completedAt": iso_now()}


def missing_required(
    required: tuple[str, ...], creating: list[dict[str, str | None]]
) -> ApiError | None:
    """400 when a contact would be created without a property the account requires.

    The error codes are as third-party write-ups of HubSpot's changelog quote them
    (``MISSING_REQUIRED_PROPERTY`` with ``context.propertyName``): UNCONFIRMED from HubSpot.
    """
    for props in creating:
        absent = [name for name in required if not props.get(name)]
        if absent:
            return validation_error(
                "The property values provided are invalid",
                errors=[
                    {
                        "code": "MISSING_REQUIRED_PROPERTY",
                        "message": f"A value for {name} must be provided",
                        "context": {"propertyName": [name]},
                    }
                    for name in absent
                ],
            )
    return None
