"""What HubSpot answered: status, body, error, rate headers, parsed once where it enters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx
import msgspec

from forwarder.errors import HubSpotError, HubSpotPermanentError, HubSpotRetryableError
from forwarder.hubspot.models import ErrorBody, RateLimitHeaders

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({423, 429, 477})
"""Statuses (besides 5xx) that a retry can cure."""


def is_retryable(status: int) -> bool:
    """Whether a retry can cure a failure with this status (423, 429, 477 and 5xx).

    The one place that says so: ``error_for`` raises by it and ``delivery.retry.classify``
    schedules by it (how long to wait is the classifier's business).
    """
    return status in RETRYABLE_STATUSES or status >= 500


_ERROR_DECODER = msgspec.json.Decoder(ErrorBody)


@dataclass(frozen=True, slots=True)
class HubSpotResponse:
    """What HubSpot answered, parsed just enough to classify it."""

    status: int
    body: bytes
    error: ErrorBody | None
    rate_limit: RateLimitHeaders | None
    correlation_id: str | None
    retry_after_s: float | None
    duration_ms: float
    auth_retried: bool = False
    """True when this answer came after a 401 and one token refresh."""

    @property
    def ok(self) -> bool:
        """A 2xx status (207 included: its errors are per input)."""
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """A response and its decoded success body (None when not 2xx, empty or unreadable)."""

    response: HubSpotResponse
    data: T | None


def parse_response(raw: httpx.Response, duration_ms: float) -> HubSpotResponse:
    status = raw.status_code
    error = _decode_error(raw.content) if status >= 400 else None
    header_id = raw.headers.get("x-hubspot-correlation-id")
    return HubSpotResponse(
        status=status,
        body=raw.content,
        error=error,
        rate_limit=RateLimitHeaders.from_headers(raw.headers),
        correlation_id=header_id or (error.correlation_id if error else None),
        retry_after_s=_retry_after(raw.headers.get("retry-after")),
        duration_ms=duration_ms,
    )


def _decode_error(content: bytes) -> ErrorBody:
    """Decode an error body; one that is not HubSpot JSON still yields an (empty) ErrorBody."""
    try:
        return _ERROR_DECODER.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorBody(message=content[:200].decode("utf-8", "replace"))


def _retry_after(raw: str | None) -> float | None:
    """``Retry-After`` in seconds; HTTP dates are not used by HubSpot and are ignored."""
    if raw is None:
        return None
    try:
        return max(0.0, float(raw.strip()))
    except ValueError:
        return None


def decode_body(response: HubSpotResponse, decoder: msgspec.json.Decoder[T]) -> T | None:
    if not response.ok or not response.body:
        return None
    try:
        return decoder.decode(response.body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def expect_body(response: HubSpotResponse, decoder: msgspec.json.Decoder[T]) -> T:
    """The decoded body of a success, or the failure as a typed error."""
    data = decode_body(response, decoder)
    if data is not None:
        return data
    raise error_for(response)


def error_for(response: HubSpotResponse) -> HubSpotError:
    """The typed error for a failed response: retryable (423/429/477/5xx) or permanent."""
    error = response.error or ErrorBody()
    message = error.message or f"HubSpot answered {response.status}"
    kind: type[HubSpotError] = HubSpotPermanentError
    if is_retryable(response.status) or response.ok:
        kind = HubSpotRetryableError
    category = error.category or error.error_type
    return kind(
        message, status=response.status, category=category, correlation_id=response.correlation_id
    )
