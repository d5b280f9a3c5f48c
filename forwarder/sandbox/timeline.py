"""Timeline events v3: templates, tokens, ``id`` idempotency, 201/207.

Choices: the batch maximum is 100 (v1's documented cap; UNCONFIRMED for v3) -> 400 above it.
Re-sending an ``id`` already used for the template replaces the stored event ("the last to be
processed will win") and is counted in ``duplicates``: never two events with one id.
An ``email`` that matches no contact creates one, as the spec's field text says.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

import msgspec

from forwarder.sandbox.contacts import ContactStore
from forwarder.sandbox.responses import ApiError, iso_now, standard_error, validation_error

MAX_BATCH = 100
IFRAME_FIELDS = ("linkLabel", "headerLabel", "url", "width", "height")


class TimelineInput(msgspec.Struct, rename="camel"):
    """``TimelineEvent``."""

    event_template_id: str | int
    tokens: dict[str, Any] = msgspec.field(default_factory=dict)
    id: str | None = None
    object_id: str | int | None = None
    email: str | None = None
    utk: str | None = None
    domain: str | None = None
    timestamp: str | None = None
    extra_data: Any = None
    timeline_i_frame: dict[str, Any] | None = None
    custom_object_type_id: str | None = None


class TimelineBatch(msgspec.Struct):
    inputs: list[TimelineInput]


decode_one = msgspec.json.Decoder(TimelineInput).decode
decode_batch = msgspec.json.Decoder(TimelineBatch).decode


class TimelineStore:
    """Templates (id -> token names) and created events keyed by (template id, event id)."""

    def __init__(self) -> None:
        self.templates: dict[str, frozenset[str]] = {}
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.duplicates: list[dict[str, Any]] = []

    def define_template(self, template_id: str, tokens: tuple[str, ...] | list[str]) -> None:
        """Make a template (and its token names) available to events."""
        self.templates[str(template_id)] = frozenset(tokens)

    def create(
        self, item: TimelineInput, contacts: ContactStore, request_id: str
    ) -> dict[str, Any] | ApiError:
        """Validate and store one event; the ``TimelineEventResponse`` or the error."""
        template_id = str(item.event_template_id)
        tokens = self.templates.get(template_id)
        if tokens is None:
            return ApiError(404, "OBJECT_NOT_FOUND", f"Event template {template_id} not found")
        unknown = sorted(set(item.tokens) - tokens)
        if unknown:
            return validation_error(f"Tokens not defined on template {template_id}: {unknown}")
        if item.object_id is None and not item.email and not item.utk:
            return validation_error(
                "objectId is required for every event other than contacts"
                " (where utk or email can be used)"
            )
        frame = item.timeline_i_frame
        if frame is not None and any(frame.get(name) in (None, "") for name in IFRAME_FIELDS):
            return validation_error(
                "timelineIFrame requires linkLabel, headerLabel, url, width and height"
            )
        object_id = _object_id(item, contacts)
        event_id = (item.id or f"{template_id}-{{{{uuid}}}}").replace(
            "{{uuid}}", str(uuidlib.uuid4())
        )
        response: dict[str, Any] = {
            "objectType": "contacts",
            "id": event_id,
            "eventTemplateId": template_id,
            "email": item.email,
            "objectId": object_id,
            "utk": item.utk,
            "domain": item.domain,
            "timestamp": item.timestamp or iso_now(),
            "tokens": {name: _text(value) for name, value in item.tokens.items()},
            "extraData": item.extra_data,
            "timelineIFrame": frame,
        }
        response = {key: value for key, value in response.items() if value is not None}
        key = (template_id, event_id)
        if key in self.events:
            self.duplicates.append({**response, "requestId": request_id})
        self.events[key] = {**response, "requestId": request_id}
        return response

    def create_batch(
        self, inputs: list[TimelineInput], contacts: ContactStore, request_id: str, fail_first: int
    ) -> tuple[int, dict[str, Any]] | ApiError:
        """201 when all were created, 207 with per-input ``StandardError``s otherwise."""
        started = iso_now()
        if len(inputs) > MAX_BATCH:
            return validation_error(
                f"Batch operations are limited to 100 events, got {len(inputs)}"
            )
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(inputs):
            outcome = (
                ApiError(500, "INTERNAL_ERROR", "Scripted partial failure")
                if index < fail_first
                else self.create(item, contacts, request_id)
            )
            if isinstance(outcome, ApiError):
                context = {"index": [str(index)], "eventTemplateId": [str(item.event_template_id)]}
                errors.append(standard_error(outcome.category, outcome.message, context))
            else:
                results.append(outcome)
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        body["startedAt"] = started
        body["completedAt"] = iso_now()
        return (207 if errors else 201), body


def _object_id(item: TimelineInput, contacts: ContactStore) -> str | None:
    if item.object_id is not None:
        return str(item.object_id)
    if not item.email:
        return None
    contact = contacts.find(item.email, "email")
    if contact is None:
        contact = contacts.create({"email": item.email})
    return contact.id


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()
