"""The Segment HTTP Tracking API: ``/v1/track`` ... ``/v1/batch`` and analytics.js's short forms."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Request, Response, Router, post, route

from forwarder.config import Settings
from forwarder.errors import ForwarderError, ShuttingDownError
from forwarder.ingest.auth import SourceResolver, key_from_header
from forwarder.ingest.body import check_media_type, decode_body
from forwarder.ingest.statuses import answer
from forwarder.pipeline.accept import Accepter
from forwarder.pipeline.validate import Validator
from forwarder.telemetry import Metrics, get_logger

CALLS = {
    "track": "t",
    "identify": "i",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
}
_JSON = "application/json"


class IngestService:
    """Everything one ingest request needs, built once at start-up."""

    def __init__(
        self,
        settings: Settings,
        resolver: SourceResolver,
        accepter: Accepter,
        metrics: Metrics,
    ) -> None:
        self._resolver = resolver
        self._validator = Validator(settings.server)
        self._accept = accepter
        self._metrics = metrics
        self._max_bytes = settings.server.max_request_bytes
        self._log_requests = settings.server.log_requests
        self._log = get_logger("ingest")
        self._encode = msgspec.json.Encoder().encode
        self.draining = False

    async def handle(
        self, request: Request[Any, Any, Any], call_type: str | None
    ) -> Response[bytes]:
        """Authenticate, read, validate and accept one request; map errors to statuses."""
        started = time.perf_counter()
        headers = request.headers
        origin = headers.get("origin")
        source_name = "-"
        cors = False
        fields: dict[str, Any] = {}
        extra: dict[str, str]
        try:
            if self.draining:
                raise ShuttingDownError("shutting down; send to another replica", retry_after_s=5)
            header_key = key_from_header(headers.get("authorization"))
            # A key in the header is checked before the body is read: strangers cost little.
            source = self._resolver.resolve(header_key, origin) if header_key else None
            check_media_type(headers.get("content-type"))
            body = decode_body(
                await request.body(), headers.get("content-encoding"), self._max_bytes
            )
            decoded = self._validator.decode(body, call_type)
            if source is None:
                source = self._resolver.resolve(decoded.write_key, origin)
            source_name = source.name
            cors = source.kind == "browser"
            self._resolver.charge(source, max(1, decoded.count))
            result = await self._accept(source, decoded)
            status, content, extra = 200, self._encode(result), {}
            fields = {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": len(result.rejected),
            }
        except ForwarderError as exc:
            status, content, extra = answer(exc)
            fields = {"error": type(exc).__name__, "reason": str(exc)}
        if cors and origin:
            extra["Access-Control-Allow-Origin"] = origin
            extra["Vary"] = "Origin"
        elapsed = time.perf_counter() - started
        self._metrics.requests.labels(str(status)).inc()
        self._metrics.latency.observe(elapsed)
        if self._log_requests:
            self._log.info(
                "ingest_request_handled",
                path=request.url.path,
                source=source_name,
                status=status,
                latency_ms=round(elapsed * 1000, 2),
                **fields,
            )
        return Response(content, status_code=status, media_type=_JSON, headers=extra)

    def preflight(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """CORS preflight: allowed when the origin is on some browser source's allow-list."""
        origin = request.headers.get("origin")
        if not self._resolver.preflight_allowed(origin):
            return Response(b"", status_code=403)
        assert origin is not None
        return Response(
            b"",
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding",
                "Access-Control-Max-Age": "86400",
                "Vary": "Origin",
            },
        )


def _service(request: Request[Any, Any, Any]) -> IngestService:
    service: IngestService = request.app.state.ingest
    return service


def _handler(call_type: str | None, paths: list[str]) -> Any:
    async def ingest(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await _service(request).handle(request, call_type)

    name = call_type or "batch"
    ingest.__name__ = f"ingest_{name}"
    ingest.__doc__ = (
        f"Segment `{name}` call{'s' if call_type is None else ''}; see `schemas/` for the body."
    )
    return post(paths, status_code=200, tags=["ingest"], name=f"ingest_{name}")(ingest)


@route(["/v1/{call:str}"], http_method=["OPTIONS"], include_in_schema=False)
async def preflight(request: Request[Any, Any, Any], call: str) -> Response[bytes]:
    """CORS preflight for browser sources."""
    return _service(request).preflight(request)


@post("/v1/m", status_code=200, include_in_schema=False)
async def client_metrics() -> Response[bytes]:
    """analytics.js reports its own metrics here; accepted and ignored."""
    return Response(b'{"success":true}', media_type=_JSON)


def ingest_router() -> Router:
    """Every ingest route."""
    handlers: list[Any] = [
        _handler(call, [f"/v1/{call}", f"/v1/{short}"]) for call, short in CALLS.items()
    ]
    handlers += [_handler(None, ["/v1/batch", "/v1/import"]), preflight, client_metrics]
    return Router(path="/", route_handlers=handlers)
