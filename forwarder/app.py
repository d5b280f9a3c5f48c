"""Composition root: settings -> storage -> pipeline -> delivery; the Litestar app and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.exceptions import HTTPException
from litestar.handlers import asgi
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from forwarder import __version__
from forwarder.alerts.monitor import AlertMonitor, alert_monitor
from forwarder.clock import Clock, SystemClock
from forwarder.config import PortalSettings, Settings, portal_uses_sandbox
from forwarder.debugger import debugger_lifespan, debugger_routers
from forwarder.delivery.engine import Engine
from forwarder.delivery.testmode import route_test_events
from forwarder.errors import ServiceUnavailableError
from forwarder.events.messages import ErrorResponse
from forwarder.ingest.auth import SourceResolver
from forwarder.ingest.fastpath import answer_ingest
from forwarder.ingest.routes import IngestService, ingest_router
from forwarder.ingest.snippet import snippet_router
from forwarder.ingest.webhooks import WebhookReceiver, hubspot_webhook
from forwarder.pipeline.accept import Accepter
from forwarder.pipeline.route import DefinitionCheck
from forwarder.sandbox import ALL_SCOPES, DEFAULT_TOKEN, SandboxConfig, create_sandbox_app
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
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.alerts = alerts
        self.storage = storage
        self.clock = clock
        self.engine = engine
        self.log = get_logger("app")
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.storage.open()
        if self.settings.server.delivery:
            await self.engine.start()
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="purge"))
        self._tasks.append(asyncio.create_task(self._quality_loop(), name="quality"))
        if self.alerts is not None:  # own tasks: a slow receiver never holds up anything else
            self._tasks.append(asyncio.create_task(self.alerts.run(), name="alerts"))
            for receiver in self.alerts.receivers:
                self._tasks.append(asyncio.create_task(receiver.sender.run(), name="alert-send"))

    async def stop(self) -> None:
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
    configure_sandbox: Callable[[str, SandboxConfig], SandboxConfig] | None = None,
) -> Litestar:
    """Build the whole forwarder as one ASGI app."""
    clock = clock or SystemClock()
    storage = storage or create_storage(settings.storage, dedup_window_s=settings.dedup.window_s)
    metric_set = Metrics()
    sandboxes = sandboxes_for(settings, configure_sandbox)
    transports: dict[str, httpx.AsyncBaseTransport] = {
        name: httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's narrower ASGI types
        for name, app in sandboxes.items()
    }
    engine = Engine(settings, storage, clock, metric_set, transports, DEFAULT_TOKEN)
    test_sandboxes: dict[str, Litestar] = {}  # test events of real portals go to these
    made = functools.partial(test_sandbox_transport, settings, test_sandboxes)
    route_test_events(engine, settings, storage, clock, made, DEFAULT_TOKEN)
    alerts = alert_monitor(settings, storage, engine, metric_set, clock)
    runtime = Runtime(settings, storage, clock, engine, metric_set, alerts)
    resolver = SourceResolver(settings.sources, settings.server, clock)
    checks = {n: DefinitionCheck(p.mapper, p.catalog) for n, p in engine.portals.items()}
    accepter = Accepter(
        settings, storage, metric_set, clock, on_accepted=engine.notify, checks=checks
    )
    ingest = IngestService(settings, resolver, accepter, metric_set)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            ingest.draining = True
            await runtime.stop()
            flush_logs()

    app = ForwarderApp(
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
        lifespan=[lifespan, debugger_lifespan],
        state=_state(
            settings=settings,
            storage=storage,
            metrics=metric_set,
            ingest=ingest,
            engine=engine,
            alerts=alerts,
            webhooks=WebhookReceiver(settings, storage),
            sandboxes=sandboxes,
            test_sandboxes=test_sandboxes,
        ),
        exception_handlers={HTTPException: _http_error},
        request_max_body_size=settings.server.max_request_bytes * 2,
        openapi_config=OpenAPIConfig(title="hubspot-forwarder", version=__version__),
        debug=False,
    )
    app.ingest = ingest
    return app


class ForwarderApp(Litestar):
    """The forwarder's ASGI app: Litestar, with ingest answered before the framework."""

    ingest: IngestService

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and await answer_ingest(self.ingest, scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def sandbox_config(portal: PortalSettings) -> SandboxConfig:
    """The simulator for a sandbox portal: its tier, its limit overrides, its time scale."""
    tokens = {DEFAULT_TOKEN: ALL_SCOPES}
    if portal.access_token is not None:
        tokens[portal.access_token.reveal()] = ALL_SCOPES
    extra: dict[str, Any] = {}
    if portal.service_key is not None:
        extra["service_keys"] = {portal.service_key.reveal(): ALL_SCOPES}
    signing = portal.client_secret or portal.webhook_secret
    if signing is not None:  # the simulator signs its webhooks with the app's secret
        extra["client_secret"] = signing.reveal()
    if portal.refresh_token is not None and portal.client_secret is not None:
        extra = {
            "client_id": portal.client_id or "",
            "client_secret": portal.client_secret.reveal(),
            "refresh_token": portal.refresh_token.reveal(),
        }
    # The simulator knows the contact properties this portal maps traits to, as the real
    # portal would after they were created there.
    mapped = tuple(p for p in portal.contacts.properties.values() if p != "email")
    if mapped:
        extra["contact_properties"] = mapped
    if portal.contacts.user_id_property is not None:
        extra["unique_contact_properties"] = (portal.contacts.user_id_property,)
    limits = portal.limits
    if limits.events_per_s is not None:
        extra["events_rps"] = limits.events_per_s
    if limits.search_per_s is not None:
        extra["search_rps"] = limits.search_per_s
    return SandboxConfig(
        portal_id=portal.portal_id,
        tier=portal.tier,
        tokens=tokens,
        limit_10s=limits.crm_per_10s,
        daily=limits.crm_daily,
        time_scale=limits.time_scale,
        **extra,
    )


def test_sandbox_transport(
    settings: Settings, made: dict[str, Litestar], name: str
) -> httpx.AsyncBaseTransport:
    """The sandbox taking the test events of real portal ``name``, made on first use."""
    if name not in made:
        made[name] = create_sandbox_app(sandbox_config(settings.portals[name]))
    return httpx.ASGITransport(app=made[name])  # type: ignore[arg-type]  # Litestar's ASGI types


def sandboxes_for(
    settings: Settings, configure: Callable[[str, SandboxConfig], SandboxConfig] | None = None
) -> dict[str, Litestar]:
    """One in-process HubSpot simulator per portal whose ``base_url`` is ``sandbox``."""
    sandboxes: dict[str, Litestar] = {}
    for name, portal in settings.portals.items():
        if portal_uses_sandbox(portal):
            config = sandbox_config(portal)
            if configure is not None:
                config = configure(name, config)
            sandboxes[name] = create_sandbox_app(config)
    return sandboxes


def _mount(path: str, app: ASGIApp) -> Any:
    @asgi(path, is_mount=True, copy_scope=True, name=f"mount:{path}")
    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)

    return mounted


def sandbox_mounts(sandboxes: dict[str, Litestar]) -> list[Any]:
    """``/sandbox/{portal}/...`` for each simulator, and ``/sandbox/...`` for the first.

    One mount dispatches on the first path segment: a mount at ``/sandbox`` would otherwise
    swallow ``/sandbox/{portal}`` as a path of the first simulator.
    """
    if not sandboxes:
        return []
    first = next(iter(sandboxes.values()))

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        name, _, rest = path.lstrip("/").partition("/")
        target = sandboxes.get(name)
        if target is None:
            await first(scope, receive, send)
            return
        inner: dict[str, Any] = dict(scope)
        inner["path"] = "/" + rest
        inner["raw_path"] = ("/" + rest).encode()
        inner["root_path"] = f"{scope.get('root_path', '')}/{name}"
        await target(inner, receive, send)  # type: ignore[arg-type]

    return [_mount("/sandbox", dispatch)]


def _state(**values: Any) -> Any:
    from litestar.datastructures import State

    return State(values)
