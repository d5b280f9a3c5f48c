"""Every route our client calls exists in HubSpot's OpenAPI specs, and every body it sends
validates against them.

The walk drives each public method of ``HubSpotClient`` (and the OAuth refresh) against the real
sandbox and records what went over the wire, so it finds the paths wherever the client keeps
them (constants, literals or a per-version table), once per API version the client speaks. The
sandbox checks each body against the shipped specs, so a refused body shows up here as a 400.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType

import httpx
import pytest

from forwarder.config import Secret
from forwarder.hubspot.auth import OAuthTokens
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.definitions import EventDefinitionInput, EventPropertyInput
from forwarder.hubspot.models import (
    AppEventOccurrence,
    CreateInput,
    EventCompletion,
    Filter,
    FilterGroup,
    FormContext,
    FormField,
    FormSubmission,
    TimelineEvent,
    UpdateInput,
    UpsertInput,
)
from forwarder.sandbox import Sandbox, SandboxConfig, create_sandbox_app, openapi


def _path_table() -> ModuleType | None:
    """The client's per-version path table, once the client has one (``paths_for(version)``)."""
    try:
        return importlib.import_module("forwarder.hubspot.paths")
    except ImportError:
        return None


PATH_TABLE = _path_table()
VERSIONS: tuple[str, ...] = tuple(PATH_TABLE.API_VERSIONS) if PATH_TABLE else ("v3",)
"""Every API version the client can speak; the walk runs once per version."""
PORTAL = 12345678
FORM_PATH = f"/submissions/v3/integration/secure/submit/{PORTAL}/form-1"
NOT_IN_COLLECTION = {
    # The Forms submission API (api.hsforms.com) is not part of HubSpot's OpenAPI collection;
    # docs/hubspot-contract.md says what we rely on there instead.
    ("POST", FORM_PATH),
}


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    status: int
    body: bytes


class Recording(httpx.AsyncBaseTransport):
    """The sandbox's ASGI transport, noting each request and its answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[Sent] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.sent.append(Sent(request.method, request.url.path, response.status_code, body))
        return httpx.Response(response.status_code, headers=response.headers, content=body)


Call = Callable[[HubSpotClient, str], Awaitable[object]]
"""One client call, given the client and the id of a contact that exists."""
EVENT = f"pe{PORTAL}_purchase"
CALLS: dict[str, Call] = {
    "send_event_batch": lambda c, _: c.send_event_batch(
        [
            EventCompletion(
                EVENT,
                {"amount": "9.5", "hs_page_url": "https://shop.example/checkout"},
                "0b7c6a8e-0000-4000-8000-000000000001",
                email="jane@example.com",
                occurred_at="2026-03-01T10:00:00.000Z",
            )
        ]
    ),
    "create_timeline_batch": lambda c, _: c.create_timeline_batch(
        [TimelineEvent("1001", "evt-1", {"petName": "Art3mis"}, email="jane@example.com")]
    ),
    "send_app_events": lambda c, _: c.send_app_events(
        [
            AppEventOccurrence(
                "pet_adopted", "evt-2", {"petName": "Art3mis"}, email="jane@example.com"
            )
        ]
    ),
    "list_contact_properties": lambda c, _: c.list_contact_properties(),
    "probe_empty_batch": lambda c, _: c.probe_empty_batch(c.paths.contacts_batch_upsert),
    "batch_read_contacts": lambda c, _: c.batch_read_contacts(
        ["jane@example.com"], id_property="email", properties=["email"]
    ),
    "batch_upsert_contacts": lambda c, _: c.batch_upsert_contacts(
        [UpsertInput("jane@example.com", "email", {"firstname": "Jane"})]
    ),
    "batch_update_contacts": lambda c, seeded_id: c.batch_update_contacts(
        [UpdateInput(seeded_id, {"lastname": "Doe"})]
    ),
    "batch_create_contacts": lambda c, _: c.batch_create_contacts(
        [CreateInput({"email": "new@example.com"}, associations=[])]
    ),
    "search_contacts": lambda c, _: c.search_contacts(
        [FilterGroup([Filter("email", "EQ", "jane@example.com")])], ["email"]
    ),
    "submit_form": lambda c, _: c.submit_form(
        FORM_PATH,
        FormSubmission(
            [FormField("email", "jane@example.com")],
            context=FormContext(hutk="0123456789abcdef0123456789abcdef"),
        ),
    ),
    "list_event_definitions": lambda c, _: c.list_event_definitions(),
    "create_event_definition": lambda c, _: c.create_event_definition(
        EventDefinitionInput(
            label="Signup",
            name="signup",
            include_default_properties=True,
            property_definitions=[EventPropertyInput("plan", "plan", "string")],
        )
    ),
    "create_event_property": lambda c, _: c.create_event_property(
        EVENT, EventPropertyInput("coupon", "coupon", "string")
    ),
}


def make_client(version: str, auth: OAuthTokens, transport: Recording) -> HubSpotClient:
    if PATH_TABLE is None:  # a client with one set of (v3) paths
        return HubSpotClient("http://sandbox", auth, transport=transport)
    paths = PATH_TABLE.paths_for(version)
    return HubSpotClient("http://sandbox", auth, transport=transport, paths=paths)


async def walk(version: str) -> list[Sent]:
    """Every client call once, over OAuth, against a fresh sandbox; what was sent."""
    config = SandboxConfig(
        portal_id=PORTAL,
        seed_definitions={"purchase": ("amount",)},
        seed_templates={"1001": ("petName",), "pet_adopted": ("petName",)},
    )
    sandbox = Sandbox(config)
    seeded_id = sandbox.add_contact({"email": "seeded@example.com"})
    recording = Recording(httpx.ASGITransport(app=create_sandbox_app(sandbox=sandbox)))
    tokens = OAuthTokens(
        config.client_id,
        Secret(config.client_secret),
        Secret(config.refresh_token),
        base_url="http://sandbox",
        transport=recording,
    )
    client = make_client(version, tokens, recording)
    # A version has one timeline call: v3's numbered templates, or the dated app events.
    skip = "create_timeline_batch" if client.paths.dated_timeline else "send_app_events"
    try:
        for name, call in CALLS.items():
            if name != skip:
                await call(client, seeded_id)
    finally:
        await client.aclose()
        await tokens.aclose()
    return recording.sent


def test_the_walk_calls_every_public_method_of_the_client() -> None:
    """A new client method must be added to the walk, or its route goes unchecked."""
    public = {
        name
        for name, member in inspect.getmembers(HubSpotClient, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in {"request", "aclose"}
    }
    assert set(CALLS) == public


@pytest.mark.parametrize("version", VERSIONS)
async def test_every_route_the_client_calls_has_a_spec_operation(version: str) -> None:
    book = openapi.load()
    routes = {(s.method, s.path) for s in await walk(version)}
    missing = {r for r in routes - NOT_IN_COLLECTION if book.find(*r) is None}
    assert ("POST", "/oauth/v1/token") in routes
    assert missing == set()


@pytest.mark.parametrize("version", VERSIONS)
async def test_every_body_the_client_sends_is_accepted_by_the_spec_checking_sandbox(
    version: str,
) -> None:
    refused = [s for s in await walk(version) if s.status >= 400]
    assert refused == []
