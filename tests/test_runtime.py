"""The app's own housekeeping loops (forwarder/app.py ``Runtime``)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, cast

from forwarder.app import _PURGE_EVERY_S, Runtime
from forwarder.clock import ManualClock
from forwarder.config import Settings, StorageSettings
from forwarder.delivery.engine import Engine
from forwarder.errors import StorageUnavailableError
from forwarder.storage.sqlite import SqliteStorage
from forwarder.telemetry import Metrics


class _FullDisk(SqliteStorage):
    async def purge(self, *, dedup_before: float, events_before: float) -> int:
        raise StorageUnavailableError("disk full")


async def test_failed_purge_is_counted_and_the_loop_carries_on(tmp_path: Path) -> None:
    clock, metrics = ManualClock(), Metrics()
    settings = Settings(storage=StorageSettings(url=f"sqlite:///{tmp_path / 'f.db'}"))
    engine = cast(Engine, cast(Any, None))  # the purge loop never touches the engine
    runtime = Runtime(settings, _FullDisk(tmp_path / "f.db"), clock, engine, metrics)
    loop = asyncio.create_task(runtime._purge_loop())
    try:
        for _ in range(2):
            await asyncio.sleep(0)
            clock.advance(_PURGE_EVERY_S)
            await asyncio.sleep(0)
        labels = {"stage": "housekeeping", "error_type": "purge"}
        assert metrics.registry.get_sample_value("forwarder_errors_total", labels) == 2.0
        assert not loop.done()
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
