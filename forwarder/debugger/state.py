"""The debugger's dependencies: one typed value the composition root builds and keeps in the
app's state; the routes read it with ``debugger_of``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from litestar import Litestar

from forwarder.clock import Clock
from forwarder.config import Settings
from forwarder.debugger.auth import AdminAuth
from forwarder.debugger.masking import Masker
from forwarder.debugger.rates import RateHistory
from forwarder.delivery.engine import Engine
from forwarder.storage.base import Storage
from forwarder.telemetry import Metrics


@dataclass(frozen=True, slots=True)
class Debugger:
    """Exactly what the debugger reads: the app's settings, storage, engine, metrics and clock, and
    the parts it keeps of its own (masker, rate history, admin auth)."""

    settings: Settings
    storage: Storage
    engine: Engine
    metrics: Metrics
    clock: Clock
    masker: Masker
    rates: RateHistory
    auth: AdminAuth
    delivery_processes: int = 0
    """Delivery runs in this many child processes: the engine here runs no worker, so what it
    knows of paused queues and breakers is not the children's (the store's figures are)."""

    @classmethod
    def of(
        cls,
        settings: Settings,
        storage: Storage,
        engine: Engine,
        metrics: Metrics,
        clock: Clock,
        *,
        delivery_processes: int = 0,
    ) -> Debugger:
        """The debugger of one app, its own parts configured from the settings."""
        return cls(
            delivery_processes=delivery_processes,
            settings=settings,
            storage=storage,
            engine=engine,
            metrics=metrics,
            clock=clock,
            masker=Masker(settings),
            rates=RateHistory(engine, metrics, clock),
            auth=AdminAuth(settings, clock),
        )


def debugger_of(app: Litestar) -> Debugger:
    """The ``Debugger`` the composition root put in ``app.state.debugger``."""
    found = app.state.get("debugger")
    if not isinstance(found, Debugger):  # a wiring mistake, not a request's fault
        raise TypeError(f"app.state.debugger is {type(found).__name__}, not a Debugger")
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
