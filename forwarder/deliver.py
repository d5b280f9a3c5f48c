"""``forwarder deliver``: the delivery engine alone, in a process of its own.

``forwarder serve`` starts it ``server.delivery_processes`` times (``--delivery-workers N``)
so that ingest never waits on delivery's CPU. It runs what delivery runs in the server: the
workers, the housekeeping (held expiry, conservation check) and the queue gauges, on the same
store, and flushes its delivery counts (quality, rate history) to the store, where the server's
debugger reads them. Ingest's wake-ups do not reach it, so idle queues poll the store every
``POLL_S``. It stops on SIGTERM or SIGINT, and by itself when its parent is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

import msgspec

from forwarder.clock import SystemClock
from forwarder.compose import DeliveryWiring
from forwarder.config import Settings, StorageSettings
from forwarder.errors import ServiceUnavailableError
from forwarder.sandbox import DEFAULT_TOKEN
from forwarder.sandboxes import TestSandboxes
from forwarder.storage import create_storage
from forwarder.storage.base import Storage
from forwarder.storage.quality import FLUSH_EVERY_S, flush_quality, flush_rates
from forwarder.telemetry import Metrics, flush_logs, get_logger

POLL_S = 0.25
"""How often an idle queue looks for due items: accepted -> HubSpot stays within a queue's
``max_delay_s`` plus this."""
_PARENT_CHECK_S = 1.0


async def deliver(settings: Settings, stop: asyncio.Event) -> None:
    """Deliver until ``stop`` is set; then flush within ``server.shutdown_deadline_s``."""
    log = get_logger("deliver")
    clock = SystemClock()
    metrics = Metrics()
    storage = create_storage(
        # No fsync of its own under the write lock ingest waits for: its commits are made
        # durable by the serving process's next fsync of the same WAL file (see ``_unsynced``).
        _unsynced(settings.storage),
        dedup_window_s=settings.dedup.window_s,
        shared=True,
        release_leases=False,
        read_apart=True,
    )
    wiring = DeliveryWiring(
        settings, storage, clock, metrics, sandbox_token=DEFAULT_TOKEN, idle_poll_s=POLL_S
    )
    engine = wiring.engine({}, TestSandboxes(settings).transport)
    await storage.open()
    tasks: list[asyncio.Task[None]] = []
    try:
        await engine.start()
        tasks.append(asyncio.create_task(_flush_counts(storage, metrics), name="quality"))
        log.info("delivery_process_ready", pid=os.getpid(), queues=len(engine.workers))
        await stop.wait()
        log.info("delivery_process_stopping", pid=os.getpid())
        await engine.stop(settings.server.shutdown_deadline_s)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(ServiceUnavailableError):  # counts only: never block shutdown
            await flush_quality(storage, metrics.quality)
            await flush_rates(storage, metrics.rates)
        await storage.close()


def _unsynced(storage: StorageSettings) -> StorageSettings:
    """SQLite ``synchronous = "normal"`` for this process.

    A ``full`` commit fsyncs the WAL while it holds the write lock, and the serving process's
    ingest waits for that lock: a few ms per commit, three commits per batch. In WAL mode a
    ``normal`` commit survives this process's crash; only a power loss before the next fsync
    of the WAL (the serving process's next commit, or a checkpoint) can take back leases,
    outcomes and attempts, and then those items are sent again with the same uuids, which
    HubSpot takes once. Events themselves are written only by the serving process.
    """
    return msgspec.structs.replace(storage, synchronous="normal")


async def _flush_counts(storage: Storage, metrics: Metrics) -> None:
    log = get_logger("deliver")
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        try:
            await flush_quality(storage, metrics.quality)
            await flush_rates(storage, metrics.rates)
        except Exception:  # a long-lived loop: log and carry on (the counts wait)
            log.warning("quality_flush_failed", exc_info=True)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """An orphan stops: the server that started it is gone (killed, not stopped)."""
    while not stop.is_set():
        await asyncio.sleep(_PARENT_CHECK_S)
        if os.getppid() != parent:
            get_logger("deliver").warning("delivery_process_orphaned", parent=parent)
            stop.set()


async def _main(settings: Settings, stop_requested: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stop_requested():  # a signal that came while the process was starting
        stop.set()
    watch = asyncio.create_task(_watch_parent(os.getppid(), stop), name="watch-parent")
    try:
        await deliver(settings, stop)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        flush_logs()


def run(settings: Settings, stop_requested: Callable[[], bool] = lambda: False) -> int:
    """Run one delivery process until it is told to stop (exit 0).

    Args:
        stop_requested: whether SIGTERM came before the event loop took over the signals.
    """
    import uvloop

    from forwarder.serving import tune_garbage_collector

    tune_garbage_collector()
    uvloop.run(_main(settings, stop_requested))
    return 0
