"""The HubSpot HTTP client: one keep-alive connection pool per portal, msgspec bodies.

``request`` never raises for an HTTP status: it returns a ``HubSpotResponse`` that the delivery
classifier turns into an outcome. Only the absence of an answer (timeout, connection error) raises,
as ``HubSpotTransportError``; httpx errors are translated here and nowhere else. The typed helpers
for start-up work (event definitions) raise ``HubSpotError`` subclasses instead, since nothing
there is batched or retried per input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TypeVar

import httpx
import msgspec
import structlog

from forwarder.clock import Clock, SystemClock
from forwarder.errors import HubSpotTransportError
from forwarder.hubspot.auth import TokenProvider
from forwarder.hubspot.definitions import (
    EventDefinition,
    EventDefinitionInput,
    EventDefinitionPage,
    EventPropertyDefinition,
    EventPropertyInput,
)
from forwarder.hubspot.models import (
    AppEventOccurrence,
    BatchInput,
    BatchReadInput,
    BatchResponse,
    CreateInput,
    EventCompletion,
    FilterGroup,
    FormAnswer,
    FormSubmission,
    ObjectId,
    PropertyList,
    SearchRequest,
    SearchResponse,
    SimplePublicObject,
    TimelineEvent,
    TimelineEventResult,
    UpdateInput,
    UpsertInput,
)
from forwarder.hubspot.paths import DEFAULT_API_VERSION, ApiPaths, paths_for
from forwarder.hubspot.responses import (
    HubSpotResponse,
    Reply,
    decode_body,
    expect_body,
    parse_response,
)

T = TypeVar("T")

_log = structlog.get_logger(__name__)
_ENCODER = msgspec.json.Encoder()
_OBJECTS = msgspec.json.Decoder(BatchResponse[SimplePublicObject])
_TIMELINE = msgspec.json.Decoder(BatchResponse[TimelineEventResult])
_APP_EVENTS = msgspec.json.Decoder(BatchResponse[AppEventOccurrence])
_SEARCH = msgspec.json.Decoder(SearchResponse)
_PROPERTY_LIST = msgspec.json.Decoder(PropertyList)
_FORM_ANSWER = msgspec.json.Decoder(FormAnswer)
_DEFINITION_PAGE = msgspec.json.Decoder(EventDefinitionPage)
_DEFINITION = msgspec.json.Decoder(EventDefinition)
_PROPERTY = msgspec.json.Decoder(EventPropertyDefinition)


_READ = httpx.ByteStream(b"")
"""What a response's ``stream`` becomes once it is read and parsed.

httpx leaves every response in a reference cycle (``response.stream`` is a stream bound to the
response), and the request hangs off it with its body: ~125 KB for 500 events. Refcounting cannot
free a cycle, so each one waited for the cyclic collector, the only garbage delivery made. With a
young-generation threshold above Python's 700 (``forwarder/heap.py``) thousands of them piled up:
a 1,000,000-event drain grew to 511 MB. Replacing the read stream breaks the cycle: the response,
its request and the body are freed as soon as we drop them."""


class HubSpotClient:
    """Talks to one HubSpot portal (or the sandbox) with one token provider, on one API version."""

    def __init__(
        self,
        base_url: str,
        auth: TokenProvider,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 10.0,
        clock: Clock | None = None,
        paths: ApiPaths | None = None,
    ) -> None:
        self.paths = paths or paths_for(DEFAULT_API_VERSION)
        """Every path this client calls (its portal's ``api_version``)."""
        self._auth = auth
        self._clock = clock or SystemClock()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=timeout_s,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={str(self._http.base_url)!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> HubSpotResponse:
        """Send one request; on 401 let the token provider refresh and retry once.

        Raises:
            HubSpotTransportError: no answer (timeout, connection refused or reset).
            HubSpotAuthError: the OAuth refresh token was refused for good.
        """
        content = None if body is None else _ENCODER.encode(body)
        token = await self._auth.token()
        response = await self._send(method, path, content, params, token)
        if response.status == 401 and await self._auth.invalidate(token):
            token = await self._auth.token()
            retried = await self._send(method, path, content, params, token)
            response = dataclasses.replace(retried, auth_retried=True)
        return response

    async def _send(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        token: str,
    ) -> HubSpotResponse:
        started = self._clock.monotonic()
        headers = {"Authorization": f"Bearer {token}"}
        try:
            raw = await self._http.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise HubSpotTransportError(f"{method} {path} timed out", timeout=True) from exc
        except httpx.TransportError as exc:
            raise HubSpotTransportError(f"{method} {path} failed: {type(exc).__name__}") from exc
        response = parse_response(raw, (self._clock.monotonic() - started) * 1000.0)
        raw.stream = _READ  # see ``_READ``
        _log.debug(
            "hubspot_request_completed",
            method=method,
            path=path,
            status=response.status,
            duration_ms=round(response.duration_ms, 1),
            correlation_id=response.correlation_id,
        )
        return response

    async def _call(
        self, method: str, path: str, body: object, decoder: msgspec.json.Decoder[T]
    ) -> Reply[T]:
        response = await self.request(method, path, body)
        return Reply(response, decode_body(response, decoder))

    # --- delivery endpoints -----------------------------------------------------------------

    async def send_event_batch(self, inputs: Sequence[EventCompletion]) -> Reply[None]:
        """Custom event ``send/batch`` (up to 500 inputs; 204 on success)."""
        body = BatchInput(list(inputs))
        response = await self.request("POST", self.paths.events_send_batch, body)
        return Reply(response, None)

    async def create_timeline_batch(
        self, inputs: Sequence[TimelineEvent]
    ) -> Reply[BatchResponse[TimelineEventResult]]:
        """v3 ``/integrators/timeline/v3/events/batch/create`` (201, or 207 per-input errors).

        The path HubSpot's spec names; ``/crm/v3/timeline/...`` is an older SDK alias.
        """
        path = self.paths.timeline_batch
        return await self._call("POST", path, BatchInput(list(inputs)), _TIMELINE)

    async def send_app_events(
        self, inputs: Sequence[AppEventOccurrence]
    ) -> Reply[BatchResponse[AppEventOccurrence]]:
        """Dated ``timeline/{version}/events/batch``: 200, or 400/409 with none accepted."""
        path = self.paths.timeline_batch
        return await self._call("POST", path, BatchInput(list(inputs)), _APP_EVENTS)

    async def batch_read_contacts(
        self, ids: Sequence[str], *, id_property: str | None, properties: Sequence[str]
    ) -> Reply[BatchResponse[SimplePublicObject]]:
        """``contacts/batch/read`` by ``id_property`` (up to 100 ids; 207 lists the missing)."""
        body = BatchReadInput(
            inputs=[ObjectId(i) for i in ids],
            properties=list(properties),
            properties_with_history=[],
            id_property=id_property,
        )
        return await self._call("POST", self.paths.contacts_batch_read, body, _OBJECTS)

    async def batch_upsert_contacts(
        self, inputs: Sequence[UpsertInput]
    ) -> Reply[BatchResponse[SimplePublicObject]]:
        """``contacts/batch/upsert`` (results carry ``new``: created vs updated)."""
        body = BatchInput(list(inputs))
        return await self._call("POST", self.paths.contacts_batch_upsert, body, _OBJECTS)

    async def batch_update_contacts(
        self, inputs: Sequence[UpdateInput]
    ) -> Reply[BatchResponse[SimplePublicObject]]:
        """``contacts/batch/update`` by record id."""
        body = BatchInput(list(inputs))
        return await self._call("POST", self.paths.contacts_batch_update, body, _OBJECTS)

    async def batch_create_contacts(
        self, inputs: Sequence[CreateInput]
    ) -> Reply[BatchResponse[SimplePublicObject]]:
        """``contacts/batch/create`` (give each input an ``objectWriteTraceId`` for 207s)."""
        body = BatchInput(list(inputs))
        return await self._call("POST", self.paths.contacts_batch_create, body, _OBJECTS)

    async def search_contacts(
        self,
        filter_groups: Sequence[FilterGroup],
        properties: Sequence[str],
        limit: int = 10,
        after: str | None = None,
    ) -> Reply[SearchResponse]:
        """``contacts/search``: its own 5/s envelope, and no rate-limit headers."""
        body = SearchRequest(list(filter_groups), list(properties), limit, after or "0", sorts=[])
        return await self._call("POST", self.paths.contacts_search, body, _SEARCH)

    async def submit_form(self, url: str, submission: FormSubmission) -> Reply[FormAnswer]:
        """``POST {forms host}/submissions/v3/integration/secure/submit/{portal}/{form}``.

        ``url`` is absolute for HubSpot (forms live on api.hsforms.com) or a path for the
        sandbox, which serves them on the same host.
        """
        return await self._call("POST", url, submission, _FORM_ANSWER)

    # --- preflight (``forwarder check``) ------------------------------------------------------

    async def list_contact_properties(self) -> Reply[PropertyList]:
        """Every contact property (reading needs a contacts read or schema scope)."""
        response = await self.request("GET", self.paths.contact_properties)
        return Reply(response, decode_body(response, _PROPERTY_LIST))

    async def probe_empty_batch(self, path: str) -> HubSpotResponse:
        """POST ``{"inputs": []}``: passes auth and scopes, then writes nothing.

        HubSpot checks the token (401) and the scopes (403) before it reads a body, so this
        tells whether a write would be allowed without creating or sending anything.
        """
        return await self.request("POST", path, BatchInput[object]([]))

    # --- event definitions (start-up; raise on failure) -------------------------------------

    async def list_event_definitions(self, *, page_size: int = 100) -> list[EventDefinition]:
        """Every event definition with its properties, following ``paging.next.after``.

        Raises:
            HubSpotError: a retryable or permanent failure, with HubSpot's category.
        """
        found: list[EventDefinition] = []
        params = {"limit": str(page_size), "includeProperties": "true"}
        while True:
            response = await self.request("GET", self.paths.event_definitions, params=params)
            page = expect_body(response, _DEFINITION_PAGE)
            found.extend(page.results)
            if page.paging is None or page.paging.next is None:
                return found
            params = {**params, "after": page.paging.next.after}

    async def create_event_definition(self, definition: EventDefinitionInput) -> EventDefinition:
        """Create an event definition.

        Raises:
            HubSpotError: a retryable or permanent failure, with HubSpot's category.
        """
        path = self.paths.event_definitions
        return expect_body(await self.request("POST", path, definition), _DEFINITION)

    async def create_event_property(
        self, event_name: str, prop: EventPropertyInput
    ) -> EventPropertyDefinition:
        """Add a property to an event definition.

        Raises:
            HubSpotError: a retryable or permanent failure, with HubSpot's category.
        """
        path = self.paths.event_property(event_name)
        return expect_body(await self.request("POST", path, prop), _PROPERTY)
