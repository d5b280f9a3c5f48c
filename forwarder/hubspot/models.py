"""HubSpot wire types: request and response bodies, camelCase on the wire.

Shapes follow ``../shared/hubspot-api.md`` (§1 custom events, §2 timeline, §3 contacts, §5 errors,
§6 OAuth). Every response field that HubSpot may omit has a default, because HubSpot's own error
docs say all fields "should all be treated as optional in any error parsing".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Wire(msgspec.Struct, rename="camel", omit_defaults=True):
    """Base of every JSON body: camelCase names, unset optionals left out."""


# --- custom events (§1) ---------------------------------------------------------------------


class EventCompletion(Wire, gc=False):
    """One custom behavioral event occurrence for ``send/batch`` (same body on every version).

    Not tracked by the garbage collector: one per delivered event, alive for its request, and
    made of strings and a dict of strings (no cycle can go through it).
    """

    event_name: str
    properties: dict[str, str]
    uuid: str
    email: str | None = None
    utk: str | None = None
    object_id: str | None = None
    occurred_at: str | None = None


class BatchInput(Wire, Generic[T]):
    """The ``{"inputs": [...]}`` wrapper every batch endpoint takes."""

    inputs: list[T]


class NextPage(Wire):
    """Cursor of the next page."""

    after: str
    link: str | None = None


class Paging(Wire):
    """Paging block of list and search responses (absent on the last page)."""

    next: NextPage | None = None


# --- timeline (§2) --------------------------------------------------------------------------


class TimelineEvent(Wire):
    """One v3 CRM timeline event (``/integrators/timeline/v3/events/batch/create``)."""

    event_template_id: str
    id: str
    tokens: dict[str, str]
    email: str | None = None
    utk: str | None = None
    object_id: str | None = None
    timestamp: str | None = None
    extra_data: dict[str, object] | None = None


class TimelineEventResult(Wire):
    """A created timeline event as echoed in the batch response."""

    id: str
    event_template_id: str | None = None
    object_id: str | None = None
    email: str | None = None
    object_type: str | None = None


class AppEventOccurrence(Wire):
    """One dated timeline event ("app event occurrence"): the type is named, not numbered,
    and the values are ``properties`` rather than template ``tokens``."""

    event_type_name: str
    id: str
    properties: dict[str, str]
    email: str | None = None
    utk: str | None = None
    object_id: str | None = None
    timestamp: str | None = None


# --- contacts (§3) --------------------------------------------------------------------------


class ObjectId(Wire):
    """One input of a batch read: the value of ``idProperty`` (or the record id)."""

    id: str


class BatchReadInput(Wire):
    """Body of ``contacts/batch/read``.

    HubSpot's spec requires ``properties`` and ``propertiesWithHistory`` even when empty, so
    they have no default (``omit_defaults`` would drop an empty list).
    """

    inputs: list[ObjectId]
    properties: list[str]
    properties_with_history: list[str]
    id_property: str | None = None


class UpsertInput(Wire):
    """One input of ``contacts/batch/upsert``."""

    id: str
    id_property: str
    properties: dict[str, str]
    object_write_trace_id: str | None = None


class UpdateInput(Wire):
    """One input of ``contacts/batch/update`` (``id`` is the record id unless ``idProperty``)."""

    id: str
    properties: dict[str, str]
    id_property: str | None = None
    object_write_trace_id: str | None = None


class CreateInput(Wire):
    """One input of ``contacts/batch/create``.

    ``associations`` is required by HubSpot's spec (its guide calls it optional): always sent.
    """

    properties: dict[str, str]
    associations: list[dict[str, object]]
    object_write_trace_id: str | None = None


class SimplePublicObject(Wire):
    """A CRM record in batch and search responses; ``new`` is set by upserts only."""

    id: str
    properties: dict[str, str | None] = {}
    created_at: str | None = None
    updated_at: str | None = None
    archived: bool = False
    new: bool | None = None
    object_write_trace_id: str | None = None


class PropertyDefinition(Wire):
    """A CRM property as ``GET /crm/{version}/properties/contacts`` lists it."""

    name: str
    type: str | None = None
    field_type: str | None = None
    label: str | None = None


class PropertyList(Wire):
    """The answer of a CRM properties read."""

    results: list[PropertyDefinition] = []


class Filter(Wire):
    """One search filter."""

    property_name: str
    operator: str
    value: str | None = None
    values: list[str] | None = None
    high_value: str | None = None


class FilterGroup(Wire):
    """Filters ANDed together; groups are ORed."""

    filters: list[Filter]


class SearchRequest(Wire):
    """Body of ``contacts/search``.

    HubSpot's spec requires every field here (its guide shows most as optional), so none has a
    default: ``after`` is ``"0"`` on the first page (the cursor is an offset), ``sorts`` may be
    empty.
    """

    filter_groups: list[FilterGroup]
    properties: list[str]
    limit: int
    after: str
    sorts: list[str]


class SearchResponse(Wire):
    """One page of search results."""

    results: list[SimplePublicObject] = []
    total: int = 0
    paging: Paging | None = None


# --- errors and batch responses (§5) --------------------------------------------------------


class ErrorDetail(Wire):
    """One item of an error body's ``errors``."""

    message: str = ""
    code: str | None = None
    in_: str | None = msgspec.field(default=None, name="in")
    context: dict[str, list[str] | str] = {}
    sub_category: str | None = None


class StandardError(Wire):
    """A per-input error of a 207 batch response."""

    status: str | None = None
    category: str | None = None
    message: str = ""
    context: dict[str, list[str] | str] = {}
    errors: list[ErrorDetail] = []
    id: str | None = None
    sub_category: str | None = None


class BatchResponse(Wire, Generic[T]):
    """A batch response (200/201/207); 207 adds ``numErrors`` and ``errors``."""

    status: str = "COMPLETE"
    results: list[T] = []
    num_errors: int = 0
    errors: list[StandardError] = []
    started_at: str | None = None
    completed_at: str | None = None


class ErrorBody(Wire):
    """Any HubSpot error body (§5, §4.4 rate limits, §6.2 ``BAD_REFRESH_TOKEN``)."""

    status: str | None = None
    message: str = ""
    category: str | None = None
    correlation_id: str | None = None
    errors: list[ErrorDetail] = []
    context: dict[str, list[str] | str] = {}
    policy_name: str | None = None
    error_type: str | None = None
    group_name: str | None = None
    sub_category: str | None = None
    request_id: str | None = None


class TokenResponse(msgspec.Struct, frozen=True):
    """``POST /oauth/v1/token`` answer (snake_case on the wire)."""

    access_token: str
    expires_in: float
    refresh_token: str | None = None
    token_type: str = "bearer"  # noqa: S105 - a token kind, not a secret

    def __repr__(self) -> str:
        return f"TokenResponse(access_token='***', expires_in={self.expires_in})"


# --- headers (§4.3) -------------------------------------------------------------------------


class RateLimitHeaders(msgspec.Struct, frozen=True):
    """``X-HubSpot-RateLimit-*`` of one response; a field is None when its header is absent."""

    max: int | None = None
    remaining: int | None = None
    interval_ms: int | None = None
    daily: int | None = None
    daily_remaining: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitHeaders | None:
        """Parse the headers (names case-insensitive); None when none is present or readable."""
        lower = {k.lower(): v for k, v in headers.items()}
        values = {
            field: _int_or_none(lower.get(f"x-hubspot-ratelimit-{suffix}"))
            for field, suffix in _HEADER_SUFFIXES.items()
        }
        if all(v is None for v in values.values()):
            return None
        return cls(**values)


_HEADER_SUFFIXES = {
    "max": "max",
    "remaining": "remaining",
    "interval_ms": "interval-milliseconds",
    "daily": "daily",
    "daily_remaining": "daily-remaining",
}


def _int_or_none(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


# --- forms (§8.2) ---------------------------------------------------------------------------


class FormField(Wire):
    """One submitted field (``objectTypeId`` 0-1 = contact)."""

    name: str
    value: str
    object_type_id: str = "0-1"


class FormContext(Wire):
    """Where the submission happened; ``hutk`` ties the visitor's history to the contact."""

    hutk: str | None = None
    ip_address: str | None = None
    page_uri: str | None = None
    page_name: str | None = None


class FormSubmission(Wire):
    """Body of the forms submit endpoints."""

    fields: list[FormField]
    submitted_at: str | None = None
    context: FormContext | None = None


class FormAnswer(Wire):
    """``200 {"inlineMessage"}`` or ``{"redirectUri"}``."""

    inline_message: str | None = None
    redirect_uri: str | None = None
