"""When we cannot take events: 503 with Retry-After, nothing acknowledged, recovery by itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import PortalSettings, StorageSettings
from tests.conftest import make_settings
from tests.ingest.test_ingest_api import BASIC, stored
from tests.support import track


async def test_backlog_cap_answers_503_with_retry_after(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings = msgspec.structs.replace(
        settings,
        storage=msgspec.structs.replace(settings.storage, max_backlog=2),
        portals={"main": PortalSettings(portal_id=1, unmapped_events="auto", max_delay_s=60)},
        server=msgspec.structs.replace(settings.server, delivery=False),
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        for i in range(2):
            ok = await client.post("/v1/track", json=track(messageId=f"m{i}"), headers=BASIC)
            assert ok.status_code == 200
        full = await client.post("/v1/track", json=track(messageId="m2"), headers=BASIC)
        assert full.status_code == 503
        assert int(full.headers["retry-after"]) >= 1
        assert "max_backlog" in full.json()["error"]
        assert len(await stored(client)) == 2


async def test_locked_storage_answers_503_and_recovers_without_restart(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    settings = make_settings(tmp_path, storage=StorageSettings(url=f"sqlite:///{db}"))
    async with AsyncTestClient(app=create_app(settings)) as client:
        first = await client.post("/v1/track", json=track(messageId="before"), headers=BASIC)
        assert first.status_code == 200
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            locked = await client.post("/v1/track", json=track(messageId="during"), headers=BASIC)
            assert locked.status_code == 503
            assert "locked" in locked.json()["error"]
            assert int(locked.headers["retry-after"]) >= 1
            assert (await client.get("/readyz")).status_code == 503
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        after = await client.post("/v1/track", json=track(messageId="after"), headers=BASIC)
        assert after.status_code == 200
        assert [e["messageId"] for e in await stored(client)] == ["before", "after"]
