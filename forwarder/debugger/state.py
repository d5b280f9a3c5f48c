"""The debugger's parts, built once per app from what the composition root put in its state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar

from forwarder.config import Settings
from forwarder.debugger.auth import AdminAuth
from forwarder.debugger.masking import Masker
from forwarder.debugger.rates import RateHistory
from forwarder.delivery.engine import Engine
from forwarder.storage.base import Storage
from forwarder.telemetry import Metrics


class Debugger:
    """Settings, storage, engine and metrics of the app, plus the masker and rate history."""

    def __init__(self, state: Any) -> None:
        self.settings: Settings = state.settings
        self.storage: Storage = state.storage
        self.engine: Engine = state.engine
        self.metrics: Metrics = state.metrics
        self.masker = Masker(self.settings)
        self.rates = RateHistory(self.engine, self.metrics)


def debugger_of(app: Litestar) -> Debugger:
    """The app's ``Debugger`` (made on first use when the lifespan did not run)."""
    found: Debugger | None = app.state.get("debugger")
    if found is None:
        found = app.state.debugger = Debugger(app.state)
        app.state.admin_auth = AdminAuth(found.settings)
    return found


@contextlib.asynccontextmanager
async def sample_rates(app: Litestar) -> AsyncIterator[None]:
    """Sample rate envelopes while the app runs."""
    task = asyncio.create_task(debugger_of(app).rates.run(), name="debugger-rates")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
