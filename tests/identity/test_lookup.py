"""Contact look-ups and resolution against the sandbox: userId -> contact id, by a unique property.

The look-up is handed the portal's envelopes (a narrow protocol, since identity sits below
delivery); a recording one shows which envelope each HubSpot call spends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from forwarder.clock import ManualClock
from forwarder.config import Secret
from forwarder.events.payload import payload_of
from forwarder.hubspot.auth import StaticToken
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import RateLimitHeaders
from forwarder.identity.lookup import NEGATIVE_TTL_S, POSITIVE_TTL_S, ContactLookup
from forwarder.identity.resolve import Resolver
from forwarder.sandbox import DEFAULT_TOKEN, Sandbox, SandboxConfig, create_sandbox_app
from forwarder.storage.sqlite import SqliteStorage

PROPERTY = "user_id"


class SpentEnvelopes:
    """Records the envelope each request spends, in order."""

    def __init__(self) -> None:
        self.spent: list[str] = []

    async def acquire(self, destination: str, inputs: int = 1) -> float:
        self.spent.append(destination)
        return 0.0

    def answered(self, destination: str, sent_at: float) -> None:
        pass

    def observe(self, destination: str, headers: RateLimitHeaders | None) -> None:
        pass


class Portal:
    """A sandbox portal with two contacts holding userIds, and a look-up against it."""

    def __init__(self, unique: bool) -> None:
        config = SandboxConfig(
            contact_properties=(PROPERTY,), unique_contact_properties=(PROPERTY,) if unique else ()
        )
        self.sandbox = Sandbox(config)
        self.transport = httpx.ASGITransport(app=create_sandbox_app(sandbox=self.sandbox))
        self.client = HubSpotClient(
            "http://sandbox", StaticToken(Secret(DEFAULT_TOKEN)), transport=self.transport
        )
        self.ids = {u: self.sandbox.add_contact({"email": f"{u}@x.io", PROPERTY: u}) for u in "ab"}
        self.envelopes = SpentEnvelopes()
        self.clock = ManualClock()
        self.lookup = ContactLookup(self.client, self.envelopes, self.clock, PROPERTY)

    async def calls(self) -> dict[str, int]:
        """HubSpot calls the sandbox answered, per route."""
        async with httpx.AsyncClient(transport=self.transport, base_url="http://sandbox") as http:
            by_route = (await http.get("/_sandbox/requests")).json()["byRoute"]
        return {route: sum(statuses.values()) for route, statuses in by_route.items()}


@pytest.fixture
async def portal() -> AsyncIterator[Callable[..., Portal]]:
    built: list[Portal] = []

    def build(unique: bool = True) -> Portal:
        built.append(Portal(unique))
        return built[-1]

    yield build
    for each in built:
        await each.client.aclose()


async def test_user_ids_resolve_through_one_batch_read_by_the_unique_property(
    portal: Callable[..., Portal],
) -> None:
    p = portal()
    found = await p.lookup.resolve(["a", "b", "nobody", "a"])
    assert found == {"a": p.ids["a"], "b": p.ids["b"], "nobody": None}
    assert await p.calls() == {"contacts.batch_read": 1}
    assert p.envelopes.spent == ["lookups"]


async def test_answers_are_cached_and_misses_for_a_shorter_time(
    portal: Callable[..., Portal],
) -> None:
    p = portal()
    await p.lookup.resolve(["a", "nobody"])
    p.clock.advance(NEGATIVE_TTL_S + 1)
    assert await p.lookup.resolve(["a"]) == {"a": p.ids["a"]}
    assert await p.calls() == {"contacts.batch_read": 1}
    await p.lookup.resolve(["nobody"])
    p.clock.advance(POSITIVE_TTL_S)
    await p.lookup.resolve(["a"])
    assert await p.calls() == {"contacts.batch_read": 3}


async def test_concurrent_look_ups_of_the_same_user_share_one_request(
    portal: Callable[..., Portal],
) -> None:
    p = portal()
    first, second = await asyncio.gather(p.lookup.resolve(["a"]), p.lookup.resolve(["a"]))
    assert first == second == {"a": p.ids["a"]}
    assert await p.calls() == {"contacts.batch_read": 1}


async def test_property_refused_by_batch_read_falls_back_to_search_in_its_envelope(
    portal: Callable[..., Portal],
) -> None:
    p = portal(unique=False)
    assert await p.lookup.resolve(["b"]) == {"b": p.ids["b"]}
    assert await p.lookup.resolve(["a"]) == {"a": p.ids["a"]}
    assert await p.calls() == {"contacts.batch_read": 1, "contacts.search": 2}
    assert p.envelopes.spent == ["lookups", "search", "search"]


async def test_resolver_sends_a_user_with_the_contact_id_the_look_up_found(
    portal: Callable[..., Portal], tmp_path: Path
) -> None:
    p = portal()
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        resolver = Resolver("main", ("objectId", "email"), storage, p.lookup)
        [identity] = await resolver.identities([payload_of({"type": "track", "userId": "b"})])
    finally:
        await storage.close()
    assert (identity.kind, identity.value) == ("objectId", p.ids["b"])
