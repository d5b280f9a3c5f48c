"""Composition root: settings -> storage -> pipeline -> delivery; the Litestar app and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig

from forwarder import __version__
from forwarder.clock import Clock, SystemClock
from forwarder.config import Settings
from forwarder.errors import ServiceUnavailableError
from forwarder.events.messages import ErrorResponse
from forwarder.ingest.auth import SourceResolver
from forwarder.ingest.routes import IngestService, ingest_router, preflight_middleware
from forwarder.pipeline.accept import Accepter
from forwarder.storage import create_storage
from forwarder.storage.base import Storage
from forwarder.telemetry import Metrics, get_logger

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
        body = {"status": "unavailable", "reason": str(exc) or "storage did not answer"}
        return Response(_encode(body), status_code=503, media_type=MediaType.JSON)
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

    def __init__(self, settings: Settings, storage: Storage, clock: Clock) -> None:
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.log = get_logger("app")
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.storage.open()
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="purge"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.storage.close()

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
                self.log.exception("storage_purge_failed")


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    storage: Storage | None = None,
) -> Litestar:
    """Build the whole forwarder as one ASGI app."""
    clock = clock or SystemClock()
    storage = storage or create_storage(settings.storage)
    metric_set = Metrics()
    runtime = Runtime(settings, storage, clock)
    resolver = SourceResolver(settings.sources, settings.server, clock)
    ingest = IngestService(
        settings, resolver, Accepter(settings, storage, metric_set, clock), metric_set
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            ingest.draining = True
            await runtime.stop()

    return Litestar(
        route_handlers=[ingest_router(), healthz, readyz, metrics],
        lifespan=[lifespan],
        state=_state(settings=settings, storage=storage, metrics=metric_set, ingest=ingest),
        exception_handlers={HTTPException: _http_error},
        middleware=[preflight_middleware],
        request_max_body_size=settings.server.max_request_bytes * 2,
        openapi_config=OpenAPIConfig(title="hubspot-forwarder", version=__version__),
        debug=False,
    )


def _state(**values: Any) -> Any:
    from litestar.datastructures import State

    return State(values)
