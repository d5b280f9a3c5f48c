"""The one table from domain errors to HTTP answers for producers."""

from __future__ import annotations

import math

import msgspec

from forwarder.errors import (
    AllEventsRejectedError,
    ForbiddenOriginError,
    ForwarderError,
    MalformedRequestError,
    PayloadTooLargeError,
    ProducerError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from forwarder.events.messages import ErrorResponse, Rejected

STATUS: dict[type[ForwarderError], int] = {
    UnauthorizedError: 401,
    ForbiddenOriginError: 403,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    MalformedRequestError: 400,
    AllEventsRejectedError: 400,
    RateLimitedError: 429,
    ServiceUnavailableError: 503,
}

_encode = msgspec.json.Encoder().encode


def status_of(exc: ForwarderError) -> int:
    """The HTTP status for an error: its class's, or its nearest ancestor's, else 500."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def answer(exc: ForwarderError) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body and headers for an error; never includes a secret."""
    status = status_of(exc)
    headers: dict[str, str] = {}
    rejected: list[Rejected] = []
    field = None
    if isinstance(exc, AllEventsRejectedError):
        rejected = exc.rejected
    if isinstance(exc, ProducerError):
        field = exc.field
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if isinstance(exc, ServiceUnavailableError):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Basic realm="forwarder"'
    body = ErrorResponse(success=False, error=str(exc), field=field, rejected=rejected)
    return status, _encode(body), headers
