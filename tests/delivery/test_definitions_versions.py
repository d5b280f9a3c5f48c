"""Definitions created in auto mode, and the definition cache, on every API version."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from forwarder.config import Secret
from forwarder.delivery.definitions import DefinitionCatalog
from forwarder.delivery.mapping import Conversion
from forwarder.hubspot.auth import StaticToken
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.paths import API_VERSIONS, paths_for
from forwarder.sandbox import DEFAULT_TOKEN, Sandbox, SandboxConfig, create_sandbox_app
from forwarder.storage.sqlite import SqliteStorage

EVENT = "pe42_order_completed"


def client_for(sandbox: Sandbox, version: str) -> HubSpotClient:
    app = create_sandbox_app(sandbox=sandbox)
    return HubSpotClient(
        "http://sandbox",
        StaticToken(Secret(DEFAULT_TOKEN)),
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        paths=paths_for(version),
    )


@pytest.mark.parametrize("version", API_VERSIONS)
async def test_auto_mode_creates_definitions_and_properties_on_every_version(
    tmp_path: Path, version: str
) -> None:
    sandbox = Sandbox(SandboxConfig(portal_id=42))
    client = client_for(sandbox, version)
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    catalog = DefinitionCatalog("main", client, storage, create_missing=True)
    await catalog.load()

    await catalog.ensure(Conversion(EVENT, {"amount": "5"}))
    await catalog.ensure(Conversion(EVENT, {"amount": "5", "coupon": "x"}))

    found = sandbox.definitions.find(EVENT)
    assert found is not None
    assert set(found.properties) >= {"amount", "coupon"}
    assert set(sandbox.versions) == {version}
    await storage.close()
    await client.aclose()


async def test_definitions_cached_on_one_version_serve_another_when_hubspot_refuses(
    tmp_path: Path,
) -> None:
    """The cache holds the account's definitions, which no version changes."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    sandbox = Sandbox(SandboxConfig(portal_id=42, unsupported_versions=("2026-09",)))
    sandbox.define_event("order_completed", {"amount": "number"})
    legacy = client_for(sandbox, "v3")
    await DefinitionCatalog("main", legacy, storage, create_missing=False).load()

    dated = client_for(sandbox, "2026-09")  # refused by this sandbox: falls back to the cache
    catalog = DefinitionCatalog("main", dated, storage, create_missing=False)
    await catalog.load()

    assert catalog.properties_of(EVENT) == {"amount": "number"}
    await storage.close()
    await legacy.aclose()
    await dated.aclose()
