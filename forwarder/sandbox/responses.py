"""HubSpot's error bodies and the JSON helpers that build them.

The shapes are in docs/hubspot-contract.md, "Errors and retries".

Expected failures are ``ApiError`` values returned by the domain modules; only the route layer
turns them into HTTP responses, adding the correlation id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

encode = msgspec.json.Encoder().encode

MESSAGE_NOT_AUTHENTICATED = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can"
    " find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
MESSAGE_MISSING_SCOPES = (
    "This app hasn't been granted all required scopes to make this call. Read more about required"
    " scopes here: https://developers.hubspot.com/scopes."
)
MESSAGE_NOT_FOUND_CONTACTS = (
    "Could not get some CONTACT objects, they may be deleted or not exist."
    " Check that ids are valid."
)


@dataclass(frozen=True, slots=True)
class ApiError:
    """A HubSpot error response, before the correlation id is known."""

    status: int
    category: str
    message: str
    errors: list[dict[str, Any]] | None = None
    context: dict[str, list[str]] | None = None
    links: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self, correlation_id: str) -> dict[str, Any]:
        """The JSON body HubSpot sends (``status: error`` + the ``Error`` schema fields)."""
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id,
            "category": self.category,
        }
        if self.errors is not None:
            out["errors"] = self.errors
        if self.context is not None:
            out["context"] = self.context
        if self.links is not None:
            out["links"] = self.links
        out.update(self.extra)
        return out


def validation_error(message: str, errors: list[dict[str, Any]] | None = None) -> ApiError:
    """A 400 ``VALIDATION_ERROR``."""
    return ApiError(400, "VALIDATION_ERROR", message, errors=errors)


def detail(message: str, code: str, where: str | None = None) -> dict[str, Any]:
    """One ``ErrorDetail`` (``errors[]`` item): message, code and the JSON path it concerns."""
    out: dict[str, Any] = {"message": message, "code": code}
    if where is not None:
        out["in"] = where
    return out


def standard_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    """A batch ``StandardError`` item (207 ``errors[]``)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


def iso_now() -> str:
    """Wall-clock time as HubSpot formats it: ``2026-01-20T21:14:16.512Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
