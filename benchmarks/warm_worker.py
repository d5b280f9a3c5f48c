"""The conversions worker of a filled store, built as ``forwarder serve`` builds it and warmed
(connection open, caches filled by two delivered batches): what the callgrind scripts count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from forwarder import heap
from forwarder.clock import SystemClock
from forwarder.compose import DeliveryWiring
from forwarder.config import load_settings, secrets_of
from forwarder.sandbox import DEFAULT_TOKEN
from forwarder.sandboxes import TestSandboxes
from forwarder.storage import create_storage
from forwarder.telemetry import Metrics, Redactor, configure_logging


@asynccontextmanager
async def warm_worker(config: Path, store: Path | str, sandbox: str) -> AsyncIterator[Any]:
    """The first portal's conversions worker on ``store`` (a copy of the filled one), sending
    to ``sandbox``; stopped and closed on leaving."""
    settings = load_settings(config)
    name, portal = next(iter(settings.portals.items()))
    settings = msgspec.structs.replace(
        settings,
        storage=msgspec.structs.replace(settings.storage, url=f"sqlite:///{store}"),
        portals={name: msgspec.structs.replace(portal, base_url=sandbox)},
    )
    # As ``forwarder serve`` logs: JSON lines, gathered and written by a thread of their own.
    configure_logging(Redactor(secrets_of(settings)), fmt=settings.server.log_format)
    storage = create_storage(settings.storage, dedup_window_s=settings.dedup.window_s)
    wiring = DeliveryWiring(
        settings, storage, SystemClock(), Metrics(), sandbox_token=DEFAULT_TOKEN
    )
    engine = wiring.engine({}, TestSandboxes(settings).transport)
    await storage.open()
    await engine.load_definitions()
    worker = engine.workers[(name, "conversions")]
    heap.settle()
    for _ in range(2):  # connection open, caches warm, as in a running server
        await worker._deliver(await worker._form_batch())
    try:
        yield worker
    finally:
        await engine.stop(5.0)
        await storage.close()
