"""Forms submissions: tie a visitor's ``hutk`` cookie to a contact by email.

``POST /submissions/v3/integration/secure/submit/{portalId}/{formGuid}`` (authenticated, scope
``forms``, standard limits) and the unauthenticated ``.../integration/submit/...``. Answers
``200 {"inlineMessage": ...}``; a bad email or hutk gets the observed 400 body with
``errors[].errorType`` (``INVALID_EMAIL``, ``INVALID_HUTK``, ``REQUIRED_FIELD``).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from forwarder.sandbox.contacts import ContactStore
from forwarder.sandbox.responses import ApiError

EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
HUTK_RE = re.compile(r"[0-9a-fA-F]{32}")
THANKS = "Thanks for submitting the form."


class Field(msgspec.Struct, rename="camel"):
    name: str
    value: str
    object_type_id: str = "0-1"


class FormContext(msgspec.Struct, rename="camel"):
    hutk: str | None = None
    ip_address: str | None = None
    page_uri: str | None = None
    page_name: str | None = None


class Submission(msgspec.Struct, rename="camel"):
    fields: list[Field]
    submitted_at: str | int | None = None
    context: FormContext = msgspec.field(default_factory=FormContext)
    skip_validation: bool = False


class Submitted(msgspec.Struct, rename="camel"):
    """One accepted submission, as the inspection API shows it."""

    form_guid: str
    email: str | None
    hutk: str | None
    page_uri: str | None
    contact_id: str | None
    request_id: str


_decoder = msgspec.json.Decoder(Submission)


def _invalid(message: str, error_type: str) -> ApiError:
    return ApiError(
        400,
        "VALIDATION_ERROR",
        "The request is not valid",
        errors=[{"message": message, "errorType": error_type}],
    )


def submit(
    store: ContactStore,
    received: list[Submitted],
    form_guid: str,
    body: bytes,
    request_id: str,
) -> tuple[int, Any] | ApiError:
    """Validate, then create or update the contact by email and remember its hutk."""
    try:
        submission = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        return _invalid(f"Invalid JSON: {exc}", "INVALID_METADATA")
    if len(submission.fields) > 1000:
        return _invalid("Too many fields", "MAX_NUMBER_OF_SUBMITTED_VALUES_EXCEEDED")
    email = next((f.value for f in submission.fields if f.name == "email"), None)
    if email is None:
        return _invalid(
            "Error in 'fields.email'. Required field 'email' is missing", "REQUIRED_FIELD"
        )
    if not EMAIL_RE.fullmatch(email):
        return _invalid("Error in 'fields.email'. Invalid email address", "INVALID_EMAIL")
    hutk = submission.context.hutk
    if hutk is not None and not HUTK_RE.fullmatch(hutk):
        return _invalid("Error in 'context.hutk'. Invalid hutk", "INVALID_HUTK")
    contact = store.find(email, "email")
    if contact is None:
        contact = store.create({"email": email})
    if hutk is not None:
        contact.properties["hs_analytics_source"] = (
            contact.properties.get("hs_analytics_source") or "DIRECT_TRAFFIC"
        )
    received.append(
        Submitted(
            form_guid, email.lower(), hutk, submission.context.page_uri, contact.id, request_id
        )
    )
    return 200, {"inlineMessage": THANKS}
