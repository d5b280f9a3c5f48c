"""Ingest refuses, with a field and a reason, what HubSpot would refuse at flush."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from forwarder.config import EventMapping, PortalSettings, Secret
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.mapping import Mapper
from forwarder.events.destinations import DestinationName
from forwarder.events.messages import Message, Rejected
from forwarder.hubspot.auth import StaticToken
from forwarder.hubspot.client import HubSpotClient
from forwarder.pipeline.destine import DefinitionCheck, Destiner, Fanout
from forwarder.sandbox import DEFAULT_TOKEN, Sandbox, SandboxConfig, create_sandbox_app
from forwarder.storage.sqlite import SqliteStorage

PORTAL = PortalSettings(
    portal_id=42,
    base_url="https://api.hubapi.com",
    access_token=Secret(DEFAULT_TOKEN),
    events=(
        EventMapping(
            event="Order Completed",
            custom_event="order_completed",
            properties={"revenue": "amount", "coupon": "coupon_code"},
        ),
        EventMapping(event="Ghost", custom_event="ghost"),
    ),
)


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[Destiner]:
    app = create_sandbox_app(SandboxConfig(portal_id=42))
    sandbox: Sandbox = app.state.sandbox
    sandbox.define_event("order_completed", {"amount": "number"})
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    client = HubSpotClient(
        "http://sandbox", StaticToken(Secret(DEFAULT_TOKEN)), transport=transport
    )
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    catalog = DefinitionCatalog("main", client, storage, create_missing=False)
    await catalog.load()
    yield Destiner({"main": PORTAL}, {"main": DefinitionCheck(Mapper(PORTAL), catalog)})
    await storage.close()
    await client.aclose()


def route(router: Destiner, **event: Any) -> Fanout | Rejected:
    data = {"type": "track", "userId": "u", **event}
    return router(0, "main", msgspec.convert(data, Message), data)  # type: ignore[arg-type]


async def test_defined_event_with_known_properties_is_routed(router: Destiner) -> None:
    result = route(router, event="Order Completed", properties={"revenue": 12.5})
    assert result == Fanout(destinations=(DestinationName.CONVERSIONS,))


@pytest.mark.parametrize(
    ("event", "properties", "path", "reason"),
    [
        ("Ghost", {}, "$.event", "pe42_ghost is not defined in HubSpot"),
        ("Order Completed", {"coupon": "X"}, "$.properties.coupon_code", "has no property"),
        ("Order Completed", {"revenue": "lots"}, "$.properties.amount", "is not a number"),
        ("Unmapped", {}, "$.event", "unmapped_events is 'reject'"),
    ],
)
async def test_what_hubspot_would_refuse_is_refused_at_ingest(
    router: Destiner, event: str, properties: dict[str, Any], path: str, reason: str
) -> None:
    result = route(router, event=event, properties=properties)
    assert isinstance(result, Rejected)
    assert result.path == path
    assert reason in result.reason


async def test_overlong_value_is_refused_with_the_limit(router: Destiner) -> None:
    portal = msgspec.structs.replace(PORTAL, unmapped_events="auto")
    auto = Destiner({"main": portal}, {"main": DefinitionCheck(Mapper(portal), _Loaded())})
    result = route(auto, event="Anything", properties={"note": "x" * 300})
    assert isinstance(result, Rejected)
    assert result.reason == "value is 300 characters; HubSpot takes 256"


class _Loaded(DefinitionCatalog):
    """A catalog that creates what is missing (auto mode) and has loaded nothing."""

    def __init__(self) -> None:
        pass

    @property
    def creates_missing(self) -> bool:
        return True


class _NotLoaded(DefinitionCatalog):
    """A catalog that never loaded (an ingest-only replica: delivery off)."""

    def __init__(self) -> None:
        self._known = None
        self._create = False


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (
            {"revenue": 12.5, "coupon": "SPRING"},
            Fanout(destinations=(DestinationName.CONVERSIONS,)),
        ),
        ({"coupon": "x" * 300}, "value is 300 characters; HubSpot takes 256"),
        ({"revenue": "lots"}, Fanout(destinations=(DestinationName.CONVERSIONS,))),  # type unknown
    ],
)
def test_without_definitions_a_mapped_event_is_checked_for_what_can_be_known(
    properties: dict[str, Any], expected: Fanout | str
) -> None:
    """Definitions not loaded: nothing is missing, and a value can still be too long."""
    router = Destiner({"main": PORTAL}, {"main": DefinitionCheck(Mapper(PORTAL), _NotLoaded())})
    result = route(router, event="Order Completed", properties=properties)
    if isinstance(expected, str):
        assert isinstance(result, Rejected)
        assert (result.path, result.reason) == ("$.properties.coupon_code", expected)
    else:
        assert result == expected
