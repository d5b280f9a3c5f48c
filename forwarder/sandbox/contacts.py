"""Contacts: batch read, create, update, upsert over an in-memory store.

Choices: a body without ``inputs`` is a 400 (HubSpot was observed to answer a silent empty
``COMPLETE``; the strict reading catches the bug). More than 100 inputs is a 400. Duplicate ids in
one update/upsert batch reject the whole batch with 400 (docs/hubspot-contract.md, "Contacts"). A
write that would give an email already owned by another contact is a 409 ``CONFLICT`` for the whole
batch, naming only the first conflict. ``idProperty=email`` on batch *update* is the observed 400
"Unable to perform update/upsert by non-unique 0-1 property".
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count
from typing import Any

import msgspec

from forwarder.sandbox.responses import (
    MESSAGE_NOT_FOUND_CONTACTS,
    ApiError,
    iso_now,
    standard_error,
    validation_error,
)

MAX_BATCH = 100
READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
DEFAULT_RETURNED = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
BUILT_IN = frozenset(
    [
        "email",
        "firstname",
        "lastname",
        "phone",
        "mobilephone",
        "company",
        "website",
        "jobtitle",
        "lifecyclestage",
        "hs_lead_status",
        "city",
        "state",
        "country",
        "zip",
        "address",
        "industry",
        "salutation",
        "fax",
        "message",
        "hubspotutk",
        "hs_analytics_source",
        "hs_persona",
        "annualrevenue",
        "numemployees",
        "gclid",
        "hs_google_click_id",
        "hs_facebook_click_id",
    ]
)


class ReadInput(msgspec.Struct):
    id: str | int


class BatchRead(msgspec.Struct, rename="camel"):
    inputs: list[ReadInput]
    properties: list[str] = msgspec.field(default_factory=list)
    properties_with_history: list[str] = msgspec.field(default_factory=list)
    id_property: str | None = None


class WriteInput(msgspec.Struct, rename="camel"):
    properties: dict[str, str | int | float | bool | None]
    id: str | int | None = None
    id_property: str | None = None
    object_write_trace_id: str | None = None


class BatchWrite(msgspec.Struct):
    inputs: list[WriteInput]


decode_read = msgspec.json.Decoder(BatchRead).decode
decode_write = msgspec.json.Decoder(BatchWrite).decode


@dataclass(slots=True)
class Contact:
    id: str
    properties: dict[str, str | None]
    created_at: str
    updated_at: str

    def to_json(self, wanted: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        """``SimplePublicObject`` with the requested properties (all written ones when None)."""
        props = self.properties
        shown = dict(props) if wanted is None else {name: props.get(name) for name in wanted}
        shown["hs_object_id"] = self.id
        shown["createdate"] = self.created_at
        shown["lastmodifieddate"] = self.updated_at
        return {
            "id": self.id,
            "properties": shown,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": False,
        }


def _text(value: str | int | float | bool | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ContactStore:
    """Every contact of the portal, indexed by id, email and the custom unique properties."""

    def __init__(self, writable: frozenset[str], unique: frozenset[str]) -> None:
        self.by_id: dict[str, Contact] = {}
        self.unique = unique | {"email"}
        self.writable = writable | unique
        self._index: dict[str, dict[str, str]] = {name: {} for name in self.unique}
        self._ids = count(100451)

    def find(self, id_value: str, id_property: str | None) -> Contact | None:
        """By record id (``hs_object_id``) or by a unique property."""
        if id_property in (None, "hs_object_id"):
            return self.by_id.get(id_value)
        key = id_value.lower() if id_property == "email" else id_value
        found = self._index.get(id_property or "", {}).get(key)
        return self.by_id.get(found) if found else None

    def owner(self, name: str, value: str | None) -> str | None:
        """The id of the contact holding a unique property value."""
        if value is None:
            return None
        return self._index[name].get(value.lower() if name == "email" else value)

    def create(self, properties: dict[str, str | None]) -> Contact:
        now = iso_now()
        contact = Contact(str(next(self._ids)), {}, now, now)
        self.by_id[contact.id] = contact
        self.write(contact, properties)
        return contact

    def write(self, contact: Contact, properties: dict[str, str | None]) -> None:
        for name in self.unique.intersection(properties):
            old = contact.properties.get(name)
            if old is not None:
                self._index[name].pop(old.lower() if name == "email" else old, None)
            new = properties[name]
            if new:
                self._index[name][new.lower() if name == "email" else new] = contact.id
        contact.properties.update(properties)
        contact.updated_at = iso_now()

    def remove(self, contact_id: str) -> Contact | None:
        contact = self.by_id.pop(contact_id, None)
        if contact is not None:
            for name in self.unique:
                value = contact.properties.get(name)
                if value:
                    self._index[name].pop(value.lower() if name == "email" else value, None)
        return contact

    def check_properties(self, properties: dict[str, Any]) -> ApiError | None:
        """400 for read-only or unknown properties (HubSpot's documented example)."""
        for name in properties:
            if name in READ_ONLY:
                return validation_error(f'Property "{name}" is read-only')
            if name not in self.writable:
                message = f'Property "{name}" does not exist'
                return validation_error(
                    f"Property values were not valid: [{message}]",
                    [
                        {
                            "message": message,
                            "code": "PROPERTY_DOESNT_EXIST",
                            "context": {"propertyName": [name]},
                        }
                    ],
                )
        return None

    def conflict(self, properties: dict[str, str | None], own_id: str | None) -> ApiError | None:
        """409 when a unique value (email) already belongs to another contact."""
        for name in self.unique.intersection(properties):
            holder = self.owner(name, properties[name])
            if holder is not None and holder != own_id:
                return ApiError(409, "CONFLICT", f"Contact already exists. Existing ID: {holder}")
        return None


def batch_response(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str
) -> dict[str, Any]:
    """``BatchResponse…`` (200/201) or ``…WithErrors`` (207) body."""
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["startedAt"] = started
    body["completedAt"] = iso_now()
    return body


def not_found(ids: list[str], trace_id: str | None = None) -> dict[str, Any]:
    """The observed ``OBJECT_NOT_FOUND`` batch error, ``context.ids`` listing the misses."""
    context = {"ids": ids}
    if trace_id is not None:
        context["objectWriteTraceId"] = [trace_id]
    return standard_error("OBJECT_NOT_FOUND", MESSAGE_NOT_FOUND_CONTACTS, context)


def too_many(inputs: int) -> ApiError | None:
    """The 100-records batch cap."""
    if inputs > MAX_BATCH:
        return validation_error(f"Batch operations are limited to 100 records, got {inputs}")
    return None


def to_text(properties: dict[str, str | int | float | bool | None]) -> dict[str, str | None]:
    """Property values as HubSpot stores them: strings."""
    return {name: _text(value) for name, value in properties.items()}
