"""Custom event occurrences: validation and the received log.

Choices where the reference is UNCONFIRMED (both switchable in ``SandboxConfig``):
- A batch with one bad input: ``reject_all`` (default) answers 400 for the whole batch and stores
  nothing; ``accept_valid`` stores the valid inputs and answers 204.
- A repeated ``uuid`` for the same event type (also within one batch): ``reject`` (default) is a
  400 ``VALIDATION_ERROR``; ``drop`` answers 204 and drops it (the reference's own suggestion).
Property values: the spec types them as strings; JSON numbers and booleans are accepted and
stringified (a Jackson ``Map<String,String>`` does the same), objects, arrays and null are 400.
Property names must already be lowercase: the "duplicates after lowercasing" rule of the guide
contradicts its "only lowercase letters" rule, and the strict reading wins.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from forwarder.sandbox.definitions import NAME_RE, DefinitionStore
from forwarder.sandbox.responses import ApiError, detail, validation_error

MAX_BATCH = 500
MAX_PROPERTIES = 50
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
LONG_VALUE_WORDS = ("url", "referrer", "link")

Scalar = str | int | float | bool


class EventInput(msgspec.Struct, rename="camel"):
    """``BehavioralEventHttpCompletionRequest``."""

    event_name: str
    properties: dict[str, Any]
    email: str | None = None
    utk: str | None = None
    object_id: str | int | None = None
    occurred_at: str | int | None = None
    uuid: str | None = None


class EventBatch(msgspec.Struct):
    inputs: list[EventInput]


decode_event = msgspec.json.Decoder(EventInput).decode
decode_batch = msgspec.json.Decoder(EventBatch).decode


class ReceivedEvent(msgspec.Struct, rename="camel"):
    """One accepted occurrence, as the inspection API shows it."""

    event_name: str
    uuid: str
    request_id: str
    route: str
    properties: dict[str, str]
    email: str | None
    utk: str | None
    object_id: str | None
    occurred_at: str | int | None
    received_at: float


class EventLog:
    """Accepted occurrences per event name, and the duplicates and rejects seen."""

    def __init__(self) -> None:
        self.received: dict[str, list[ReceivedEvent]] = {}
        self.uuids: dict[str, set[str]] = {}
        self.duplicates: list[ReceivedEvent] = []
        self.rejected: list[dict[str, Any]] = []

    def accept(self, event: ReceivedEvent) -> None:
        self.received.setdefault(event.event_name, []).append(event)
        self.uuids.setdefault(event.event_name, set()).add(event.uuid)


@dataclass(frozen=True, slots=True)
class Rules:
    """The switches and the definitions the validation reads."""

    definitions: DefinitionStore
    reject_duplicates: bool
    reject_all: bool


def _problem(where: str, message: str, code: str) -> dict[str, Any]:
    return detail(message, code, where)


def check_input(item: EventInput, where: str, rules: Rules) -> dict[str, Any] | None:
    """The first thing wrong with one occurrence, as an ``ErrorDetail``, or None."""
    definition = rules.definitions.by_name.get(item.event_name)
    if definition is None:
        return _problem(
            f"{where}.eventName",
            f"Event name '{item.event_name}' is not the fully qualified name (pe{{HubID}}_name)"
            " of an existing event definition",
            "EVENT_DEFINITION_NOT_FOUND",
        )
    props = item.properties
    matching = definition.matching_property
    has_match = matching is not None and bool(props.get(matching))
    if definition.primary_object == "CONTACT":
        identified = has_match or bool(item.object_id or item.email or item.utk)
    else:
        identified = has_match or bool(item.object_id)
    if not identified:
        return _problem(where, "Either email, utk or objectId is required", "MISSING_IDENTIFIER")
    if item.email is not None and not EMAIL_RE.fullmatch(item.email):
        return _problem(f"{where}.email", f"Invalid email '{item.email}'", "INVALID_EMAIL")
    if len(props) > MAX_PROPERTIES:
        return _problem(
            f"{where}.properties",
            f"An event occurrence can contain at most 50 properties, got {len(props)}",
            "TOO_MANY_PROPERTIES",
        )
    for name, value in props.items():
        if (problem := _check_property(name, value, definition.allowed, where)) is not None:
            return problem
    if item.occurred_at is not None and not _valid_time(item.occurred_at):
        return _problem(f"{where}.occurredAt", "occurredAt is not a date-time", "INVALID_DATE")
    return None


def _check_property(
    name: str, value: Any, allowed: frozenset[str], where: str
) -> dict[str, Any] | None:
    at = f"{where}.properties.{name}"
    if not NAME_RE.fullmatch(name):
        return _problem(
            at,
            f"Property name '{name}' must start with a letter, be at most 50 characters and"
            " contain only lowercase letters, numbers and underscores",
            "INVALID_PROPERTY_NAME",
        )
    if name not in allowed:
        return _problem(at, f"Property '{name}' does not exist", "PROPERTY_DOESNT_EXIST")
    if not isinstance(value, Scalar):
        return _problem(at, f"Property '{name}' must be a string", "INVALID_PROPERTY_VALUE")
    limit = 1024 if any(word in name for word in LONG_VALUE_WORDS) else 256
    if len(str(value)) > limit:
        return _problem(
            at, f"Property '{name}' is longer than {limit} characters", "PROPERTY_VALUE_TOO_LONG"
        )
    return None


def _valid_time(value: str | int) -> bool:
    if isinstance(value, int):
        return value >= 0
    if value.isdigit():
        return True
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def record(
    inputs: list[EventInput], rules: Rules, log: EventLog, request_id: str, route: str, now: float
) -> ApiError | None:
    """Validate and store occurrences; the 400 HubSpot answers, or None for 204."""
    problems: list[dict[str, Any]] = []
    accepted: list[ReceivedEvent] = []
    seen: set[tuple[str, str]] = set()
    single = route == "events.send"
    for index, item in enumerate(inputs):
        where = "" if single else f"inputs[{index}]"
        problem = check_input(item, where or "body", rules)
        event = _received(item, request_id, route, now)
        key = (event.event_name, event.uuid)
        if problem is None and (key in seen or event.uuid in log.uuids.get(event.event_name, ())):
            log.duplicates.append(event)
            if not rules.reject_duplicates:
                continue
            problem = _problem(
                f"{where or 'body'}.uuid",
                f"An occurrence with uuid '{event.uuid}' was already sent for {event.event_name}",
                "DUPLICATE_UUID",
            )
        seen.add(key)
        if problem is not None:
            problems.append(problem)
            log.rejected.append({"requestId": request_id, "route": route, "error": problem})
            continue
        accepted.append(event)
    if problems and (rules.reject_all or single):
        first = problems[0]
        return validation_error(first["message"], problems)
    for event in accepted:
        log.accept(event)
    return None


def _received(item: EventInput, request_id: str, route: str, now: float) -> ReceivedEvent:
    return ReceivedEvent(
        event_name=item.event_name,
        uuid=item.uuid or str(uuidlib.uuid4()),
        request_id=request_id,
        route=route,
        properties={k: _text(v) for k, v in item.properties.items()},
        email=item.email,
        utk=item.utk,
        object_id=None if item.object_id is None else str(item.object_id),
        occurred_at=item.occurred_at,
        received_at=now,
    )


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
