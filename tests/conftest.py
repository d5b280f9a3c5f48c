from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import (
    PortalSettings,
    Secret,
    ServerSettings,
    Settings,
    SourceSettings,
    StorageSettings,
)
from tests.support import BROWSER_KEY, ORIGIN, SERVER_KEY, ServerProcess, config_toml, free_port

logging.getLogger("httpx").setLevel(logging.WARNING)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Two sources (server, browser) on one sandbox portal with automatic mapping."""
    settings = Settings(
        server=ServerSettings(log_requests=False),
        storage=StorageSettings(url=f"sqlite:///{tmp_path / 'forwarder.db'}"),
        sources=(
            SourceSettings(name="backend", write_key=Secret(SERVER_KEY), portal="main"),
            SourceSettings(
                name="website",
                write_key=Secret(BROWSER_KEY),
                kind="browser",
                allowed_origins=(ORIGIN,),
                portal="main",
            ),
        ),
        portals={"main": PortalSettings(portal_id=123456, unmapped_events="auto")},
    )
    return msgspec.structs.replace(settings, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    app = create_app(settings)
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    proc = ServerProcess(tmp_path, config_toml(tmp_path / "forwarder.db", port)).start(port)
    yield proc
    proc.stop()
