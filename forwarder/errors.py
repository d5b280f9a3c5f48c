"""Every domain error of the forwarder, in one tree.

Each branch says who must act::

    ForwarderError
    ├── ConfigError                      the operator: a config key is missing or wrong
    ├── StoreVersionError                the operator: the store was written by a newer release
    ├── ProducerError                    the producer: fix the request and send it again
    │   ├── UnauthorizedError            unknown or missing write key (never says which)
    │   ├── ForbiddenOriginError         browser key used from an origin not allowed
    │   ├── PayloadTooLargeError         a body or an event over its limit
    │   ├── UnsupportedMediaTypeError    body neither JSON nor text/plain JSON
    │   ├── MalformedRequestError        body is not JSON / not UTF-8 / bad gzip
    │   ├── RateLimitedError             a write key over its ingest rate
    │   └── AllEventsRejectedError       every event of the request failed validation
    ├── ServiceUnavailableError          us: nothing was acknowledged; retry later
    │   ├── StorageUnavailableError      storage failing, locked or full
    │   ├── BacklogFullError             the configured backlog cap is reached
    │   └── ShuttingDownError            SIGTERM received, no new events
    └── HubSpotError                     HubSpot answered with an error (see hubspot/)
        ├── HubSpotRetryableError        429, 423, 5xx, timeouts, connection errors
        │   └── HubSpotTransportError    no answer: timeout or connection error (status 0)
        └── HubSpotPermanentError        400/403/404 and friends: retrying will not help
            └── HubSpotAuthError         credentials refused for good (BAD_REFRESH_TOKEN): pause

HTTP statuses for these live in one table, ``forwarder.ingest.statuses``, not here.
"""

from __future__ import annotations

import msgspec


class ForwarderError(Exception):
    """Base of every error the forwarder raises on purpose."""


class ConfigError(ForwarderError):
    """The configuration is invalid; ``key`` names the offending setting."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config error at {key}: {problem}")
        self.key = key
        self.problem = problem


class StoreVersionError(ForwarderError):
    """The store's schema version is newer than this release knows: it must not be opened.

    An older release would misread (or damage) what a newer one wrote; the operator upgrades
    the forwarder, or restores the backup taken before the upgrade.
    """

    def __init__(self, store: str, found: int, known: int) -> None:
        super().__init__(
            f"store {store} has schema version {found}, newer than this release knows "
            f"({known}): run the release that wrote it, or restore the backup taken before "
            "upgrading"
        )
        self.store = store
        self.found = found
        self.known = known


class ProducerError(ForwarderError):
    """The request is wrong; the producer must fix it."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class UnauthorizedError(ProducerError):
    """No valid write key; deliberately silent about whether a key exists."""


class ForbiddenOriginError(ProducerError):
    """A browser write key was used from an origin outside its allow-list."""


class PayloadTooLargeError(ProducerError):
    """A body or an event exceeds a configured limit, named in ``reason``."""


class UnsupportedMediaTypeError(ProducerError):
    """The body's content type is neither JSON nor text/plain."""


class MalformedRequestError(ProducerError):
    """The body cannot be read as JSON (syntax, encoding, compression)."""


class RateLimitedError(ProducerError):
    """The write key sent more than its ingest rate allows."""

    def __init__(self, reason: str, *, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Rejected(msgspec.Struct, frozen=True):
    """One event refused at ingest."""

    index: int
    """Position of the event in the request (0 for single calls)."""
    path: str
    """JSON path of the offending field, e.g. ``$.event``."""
    reason: str
    """Why it was refused."""


class AllEventsRejectedError(ProducerError):
    """Every event in the request failed validation."""

    def __init__(self, rejected: list[Rejected]) -> None:
        super().__init__("every event in the request was rejected")
        self.rejected = rejected


class ServiceUnavailableError(ForwarderError):
    """We cannot take the events now; nothing was acknowledged."""

    retry_after_s: float = 1.0

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class StorageUnavailableError(ServiceUnavailableError):
    """The storage backend failed, is locked or is full."""


class BacklogFullError(ServiceUnavailableError):
    """The pending backlog reached ``storage.max_backlog``."""

    retry_after_s = 5.0


class ShuttingDownError(ServiceUnavailableError):
    """The process is draining after SIGTERM."""


class HubSpotError(ForwarderError):
    """HubSpot answered with an error body (``category``, ``correlation_id``)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        category: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.category = category
        self.correlation_id = correlation_id


class HubSpotRetryableError(HubSpotError):
    """A transient failure: try again later."""


class HubSpotPermanentError(HubSpotError):
    """A failure that will repeat on retry."""


class HubSpotTransportError(HubSpotRetryableError):
    """HubSpot gave no answer: a timeout or a connection error (``status`` is 0)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message, status=0)
        self.timeout = timeout


class HubSpotAuthError(HubSpotPermanentError):
    """HubSpot refused the credentials for good (``BAD_REFRESH_TOKEN``); the portal must pause."""
