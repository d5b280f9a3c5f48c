"""Composition root: settings -> storage -> pipeline -> delivery; the Litestar app and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from forwarder import __version__
from forwarder.alerts.monitor import AlertMonitor, alert_monitor
from forwarder.clock import Clock, SystemClock
from forwarder.compose import DeliveryWiring
from forwarder.config import Settings
from forwarder.debugger import debugger_lifespan, debugger_routers
from forwarder.debugger.state import Debugger
from forwarder.delivery.engine import Engine
from forwarder.delivery.processes import DeliveryProcesses
from forwarder.errors import ServiceUnavailableError
from forwarder.events.messages import ErrorResponse
from forwarder.ingest.auth import SourceResolver
from forwarder.ingest.fastpath import answer_ingest
from forwarder.ingest.openapi import IngestOpenAPIConfig
from forwarder.ingest.routes import IngestService, ingest_router
from forwarder.ingest.snippet import snippet_router
from forwarder.ingest.webhooks import WebhookReceiver, hubspot_webhook
from forwarder.pipeline.accept import Accepter
from forwarder.pipeline.destine import DefinitionCheck
from forwarder.sandbox import DEFAULT_TOKEN
from forwarder.sandboxes import (
    Configure,
    TestSandboxes,
    sandbox_mounts,
    sandboxes_for,
    transports_of,
)
from forwarder.storage import create_storage
from forwarder.storage.base import Storage
from forwarder.storage.quality import FLUSH_EVERY_S, flush_quality, flush_rates
from forwarder.telemetry import Metrics, flush_logs, get_logger

_encode = msgspec.json.Encoder().encode
_PURGE_EVERY_S = 300.0


@get("/healthz", tags=["health"], sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok"}


@get("/readyz", tags=["health"])
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Ready: config valid and storage writable now."""
    storage: Storage = request.app.state.storage
    try:
        await asyncio.wait_for(storage.check_writable(), timeout=2.0)
    except (ServiceUnavailableError, TimeoutError) as exc:
        down = {"status": "unavailable", "reason": str(exc) or "storage did not answer"}
        return Response(_encode(down), status_code=503, media_type=MediaType.JSON)
    # A paused destination (missing scopes, bad token) does not stop ingest: events stay
    # queued, so the replica stays ready and says what needs the operator.
    paused = request.app.state.engine.paused()
    if paused:
        body: dict[str, Any] = {
            "status": "degraded",
            "paused": [
                {"portal": p, "destination": d, "reason": r} for (p, d), r in paused.items()
            ],
        }
        return Response(_encode(body), media_type=MediaType.JSON)
    return Response(_encode({"status": "ready"}), media_type=MediaType.JSON)


@get("/metrics", tags=["health"], sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text exposition."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    body = ErrorResponse(success=False, error=str(exc.detail))
    return Response(_encode(body), status_code=exc.status_code, media_type=MediaType.JSON)


class Runtime:
    """The long-lived parts, started and stopped by the app's lifespan."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        clock: Clock,
        engine: Engine,
        metrics: Metrics,
        alerts: AlertMonitor | None = None,
        processes: DeliveryProcesses | None = None,
    ) -> None:
        self.settings = settings
        self.processes = processes
        """Set when delivery runs in child processes instead of this one."""
        self.metrics = metrics
        self.alerts = alerts
        self.storage = storage
        self.clock = clock
        self.engine = engine
        self.log = get_logger("app")
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.storage.open()
        if self.processes is not None:
            await self.engine.load_definitions()  # for ingest's definition checks
            await self.processes.start()
        elif self.settings.server.delivery:
            await self.engine.start()
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="purge"))
        self._tasks.append(asyncio.create_task(self._quality_loop(), name="quality"))
        if self.alerts is not None:  # own tasks: a slow receiver never holds up anything else
            self._tasks.append(asyncio.create_task(self.alerts.run(), name="alerts"))
            for receiver in self.alerts.receivers:
                self._tasks.append(asyncio.create_task(receiver.sender.run(), name="alert-send"))

    async def stop(self) -> None:
        if self.processes is not None:
            await self.processes.stop()
        await self.engine.stop(self.settings.server.shutdown_deadline_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(ServiceUnavailableError):  # counts only: never block shutdown
            await flush_quality(self.storage, self.metrics.quality)
            await flush_rates(self.storage, self.metrics.rates)
        for receiver in self.alerts.receivers if self.alerts is not None else []:
            await receiver.sender.aclose()
        await self.storage.close()

    async def _quality_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)  # wall time: counts, not a test's scaled clock
            try:
                await flush_quality(self.storage, self.metrics.quality)
                await flush_rates(self.storage, self.metrics.rates)
            except Exception:  # a long-lived loop: log and carry on (the counts wait)
                self.log.warning("quality_flush_failed", exc_info=True)

    async def _purge_loop(self) -> None:
        while True:
            await self.clock.sleep(_PURGE_EVERY_S)
            now = self.clock.now()
            try:
                gone = await self.storage.purge(
                    dedup_before=now - self.settings.dedup.window_s,
                    events_before=now - self.settings.storage.retention_s,
                )
                self.log.info("storage_purged", rows=gone)
            except Exception:  # a long-lived loop: log, count and carry on
                self.metrics.errors.labels("housekeeping", "purge").inc()
                self.log.exception("storage_purge_failed")


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    storage: Storage | None = None,
    configure_sandbox: Configure | None = None,
    delivery_command: Sequence[str] | None = None,
) -> Litestar:
    """Build the whole forwarder as one ASGI app: every part is made here, once, ready.

    Args:
        delivery_command: how to start a delivery process (``server.delivery_processes``);
            default ``python -m forwarder deliver`` with ``$FORWARDER_CONFIG``.
    """
    clock = clock or SystemClock()
    server = settings.server
    storage = storage or create_storage(
        settings.storage,
        dedup_window_s=settings.dedup.window_s,
        shared=server.delivery_processes > 0 or not server.delivery,
    )
    metric_set = Metrics()
    processes = None
    if server.delivery and server.delivery_processes > 0:
        command = delivery_command or (sys.executable, "-m", "forwarder", "deliver")
        processes = DeliveryProcesses(
            command,
            server.delivery_processes,
            deadline_s=server.shutdown_deadline_s,
            metrics=metric_set,
        )
    sandboxes = sandboxes_for(settings, configure_sandbox)
    test_sandboxes = TestSandboxes(settings)  # test events of real portals go to these
    wiring = DeliveryWiring(settings, storage, clock, metric_set, sandbox_token=DEFAULT_TOKEN)
    engine = wiring.engine(transports_of(sandboxes), test_sandboxes.transport)
    alerts = alert_monitor(settings, storage, engine, metric_set, clock)
    runtime = Runtime(settings, storage, clock, engine, metric_set, alerts, processes)
    resolver = SourceResolver(settings.sources, settings.server, clock)
    checks = {n: DefinitionCheck(p.mapper, p.catalog) for n, p in engine.portals.items()}
    accepter = Accepter(
        settings, storage, metric_set, clock, on_accepted=engine.notify, checks=checks
    )
    ingest = IngestService(settings, resolver, accepter, metric_set)
    debugger = Debugger.of(
        settings,
        storage,
        engine,
        metric_set,
        clock,
        delivery_processes=processes.n if processes else 0,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            ingest.draining = True
            await runtime.stop()
            flush_logs()

    state = _state(
        settings=settings,
        storage=storage,
        metrics=metric_set,
        ingest=ingest,
        engine=engine,
        alerts=alerts,
        webhooks=WebhookReceiver(settings, storage, clock),
        sandboxes=sandboxes,
        test_sandboxes=test_sandboxes.made,
        debugger=debugger,
        admin_auth=debugger.auth,
    )
    return _forwarder_app(settings, ingest, state, [lifespan, debugger_lifespan], sandboxes)


def _forwarder_app(
    settings: Settings,
    ingest: IngestService,
    state: State,
    lifespan: list[Callable[[Litestar], AbstractAsyncContextManager[None]]],
    sandboxes: dict[str, Litestar],
) -> ForwarderApp:
    return ForwarderApp(
        ingest,
        route_handlers=[
            ingest_router(),
            hubspot_webhook,
            snippet_router(),
            healthz,
            readyz,
            metrics,
            *sandbox_mounts(sandboxes),
            *debugger_routers(),
        ],
        lifespan=lifespan,
        state=state,
        exception_handlers={HTTPException: _http_error},
        request_max_body_size=settings.server.max_request_bytes * 2,
        openapi_config=IngestOpenAPIConfig(title="hubspot-forwarder", version=__version__),
        debug=False,
    )


class ForwarderApp(Litestar):
    """The forwarder's ASGI app: Litestar, with ingest answered before the framework."""

    def __init__(self, ingest: IngestService, **options: Any) -> None:
        """Args:
        ingest: answers the ingest routes (``options``: Litestar's own).
        """
        self.ingest = ingest
        super().__init__(**options)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and await answer_ingest(self.ingest, scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def _state(**values: Any) -> State:
    return State(values)
