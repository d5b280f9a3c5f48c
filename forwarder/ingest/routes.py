"""The Segment HTTP Tracking API: ``/v1/track`` ... ``/v1/batch`` and the libraries' short forms.

analytics.js posts single calls to ``/v1/t``, ``/v1/i``...; its batching strategy and the
mobile libraries (analytics-kotlin, analytics-swift) post ``{batch, writeKey, sentAt}`` to
``/v1/b``; RudderStack's browser SDK posts to ``/v1/batch`` and, with ``useBeacon``, to
``/beacon/v1/batch?writeKey=...``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import PathParameter
from litestar.types import Receive, Scope

from forwarder.config import Settings, SourceSettings
from forwarder.errors import ForwarderError, PayloadTooLargeError, ShuttingDownError
from forwarder.events.messages import ErrorResponse
from forwarder.ingest import libraries
from forwarder.ingest.asgi import query_value, read_body, request_headers
from forwarder.ingest.auth import SourceResolver, key_from_header
from forwarder.ingest.body import check_media_type, decode_body
from forwarder.ingest.statuses import answer
from forwarder.pipeline.accept import Accepter
from forwarder.pipeline.validate import Validator
from forwarder.telemetry import InfoLine, Metrics, get_logger

CALLS = {
    "track": "t",
    "identify": "i",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
}
_JSON = "application/json"
_ERROR = msgspec.json.Encoder()
_INTERNAL = _ERROR.encode(
    ErrorResponse(False, "internal error: nothing from this request was acknowledged")
)
INGEST_PATHS: dict[str, str | None] = {
    **{f"/v1/{call}": call for call in CALLS},
    **{f"/v1/{short}": call for call, short in CALLS.items()},
    "/v1/batch": None,
    "/v1/b": None,
    "/v1/import": None,
    "/beacon/v1/batch": None,
}
"""Path -> the call type it implies (None: a batch)."""
KEY_IN_QUERY_PATHS = frozenset({"/beacon/v1/batch"})
"""Paths whose write key may come as ``?writeKey=`` (a beacon cannot set headers)."""
CORS_PREFIXES = ("/v1/", "/beacon/", "/sourceConfig")
"""Paths browsers call cross-origin; their preflights are answered."""
_ALLOWED_REQUEST_HEADER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_MAX_ALLOWED_HEADERS = 1024


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
        self.max_raw_bytes = self._max_bytes + 64 * 1024
        """Largest body read off the wire (gzip may be a little larger than its content)."""
        self._log_requests = settings.server.log_requests
        self._log = get_logger("ingest")
        self._request_line = InfoLine("ingest", "ingest_request_handled")
        self._encode = msgspec.json.Encoder().encode
        self._by_status: dict[int, Any] = {}
        self.draining = False

    async def serve(
        self, scope: Scope, receive: Receive, call_type: str | None
    ) -> tuple[int, bytes, dict[str, str]]:
        """One ingest request off the wire: the entry of both the fast path and the routes.

        The body is read here, refused past ``max_raw_bytes`` (by its ``Content-Length``
        before reading, else as soon as it grows past it), so every path applies one cap.
        """
        headers = request_headers(scope)
        limit = self.max_raw_bytes

        async def read() -> bytes:
            if int(headers.get("content-length") or 0) > limit:
                raise PayloadTooLargeError(
                    f"request body is over the {limit} byte limit",
                    field="server.max_request_bytes",
                )
            return await read_body(receive, limit)

        path = scope["path"]
        query_key = query_value(scope, "writeKey") if path in KEY_IN_QUERY_PATHS else None
        return await self.process(path, headers, read, call_type, query_key)

    async def process(
        self,
        path: str,
        headers: Mapping[str, str],
        read_body: Callable[[], Awaitable[bytes]],
        call_type: str | None,
        query_key: str | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """Authenticate, read, validate and accept one request; map errors to statuses.

        The write key is the ``Authorization`` header's, else ``query_key`` (beacons), else
        the body's ``writeKey``.
        """
        started = time.perf_counter()
        origin = headers.get("origin")
        source_name = "-"
        cors = False
        fields: dict[str, Any] = {}
        extra: dict[str, str]
        try:
            if self.draining:
                raise ShuttingDownError("shutting down; send to another replica", retry_after_s=5)
            header_key = key_from_header(headers.get("authorization")) or query_key
            # A key in the header is checked before the body is read: strangers cost little.
            source = self._resolver.resolve(header_key, origin) if header_key else None
            check_media_type(headers.get("content-type"))
            body = decode_body(await read_body(), headers.get("content-encoding"), self._max_bytes)
            decoded = self._validator.decode(body, call_type)
            if source is None:
                source = self._resolver.resolve(decoded.write_key, origin)
            source_name = source.name
            cors = source.kind == "browser"
            self._resolver.charge(source, max(1, decoded.count))
            accepting = self._accept(source, decoded)
            del decoded  # ``Accepter`` frees the events before it waits on the commit
            result = await accepting
            status, content, extra = 200, self._encode(result), {}
            fields = {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": len(result.rejected),
            }
        except ForwarderError as exc:
            status, content, extra = answer(exc)
            fields = {"error": type(exc).__name__, "reason": str(exc)}
        except Exception as exc:  # a bug: log it with its traceback, answer 500, carry on
            self._log.exception("ingest_request_failed", path=path)
            self._metrics.errors.labels("ingest", type(exc).__name__).inc()
            status, content, extra = 500, _INTERNAL, {}
            fields = {"error": type(exc).__name__}
        if cors and origin:
            extra["Access-Control-Allow-Origin"] = origin
            extra["Vary"] = "Origin"
        elapsed = time.perf_counter() - started
        counter = self._by_status.get(status)
        if counter is None:
            counter = self._by_status[status] = self._metrics.requests.labels(str(status))
        counter.inc()
        self._metrics.latency.observe(elapsed)
        if self._log_requests:
            self._request_line(
                path=path,
                source=source_name,
                status=status,
                latency_ms=round(elapsed * 1000, 2),
                **fields,
            )
        return status, content, extra

    def preflight_headers(self, origin: str | None, requested: str | None) -> dict[str, str] | None:
        """CORS preflight: allowed when the origin is on some browser source's allow-list.

        The headers asked for are allowed when they are plain header names: the libraries add
        their own (``X-Retry-Count``, RudderStack's ``SentAt``, ``Rsa-Retry-Attempt``...) and
        the write key and origin are checked on the request itself.
        """
        cors = self.cors_headers(origin)
        if cors is None:
            return None
        allowed = "Content-Type, Authorization, Content-Encoding"
        if requested and len(requested) <= _MAX_ALLOWED_HEADERS:
            names = [n.strip() for n in requested.split(",") if n.strip()]
            if all(set(n.lower()) <= _ALLOWED_REQUEST_HEADER for n in names):
                allowed = ", ".join(names)
        return {
            **cors,
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": allowed,
            "Access-Control-Max-Age": "86400",
        }

    def cors_headers(self, origin: str | None) -> dict[str, str] | None:
        """``Access-Control-Allow-Origin`` for an origin some browser source allows."""
        if origin is None or not self._resolver.preflight_allowed(origin):
            return None
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def source_config(
        self, headers: Mapping[str, str], query_key: str | None
    ) -> tuple[int, bytes, dict[str, str]]:
        """RudderStack's ``/sourceConfig/`` answer for the key in the header or query."""
        key = key_from_header(headers.get("authorization")) or query_key
        return self._library_settings(headers, key, lambda s, _: libraries.source_config(s))

    def segment_settings(
        self, headers: Mapping[str, str], key: str
    ) -> tuple[int, bytes, dict[str, str]]:
        """Segment's ``/v1/projects/{key}/settings`` answer (the libraries' CDN settings)."""
        return self._library_settings(headers, key, lambda _, k: libraries.segment_settings(k))

    def _library_settings(
        self,
        headers: Mapping[str, str],
        key: str | None,
        render: Callable[[SourceSettings, str], bytes],
    ) -> tuple[int, bytes, dict[str, str]]:
        origin = headers.get("origin")
        extra = self.cors_headers(origin) or {}
        try:
            source = self._resolver.resolve(key, origin)
        except ForwarderError as exc:
            status, content, more = answer(exc)
            return status, content, {**more, **extra}
        extra["Cache-Control"] = libraries.SETTINGS_CACHE
        return 200, render(source, key or ""), extra


def _service(request: Request[Any, Any, Any]) -> IngestService:
    service: IngestService = request.app.state.ingest
    return service


def _handler(call_type: str | None, paths: list[str]) -> Any:
    # ``answer_ingest`` serves these paths before Litestar routes; these handlers put them in
    # the OpenAPI document (``ingest/openapi.py`` adds their bodies) and answer identically
    # when Litestar is called directly, through the same ``IngestService.serve``.
    async def ingest(request: Request[Any, Any, Any]) -> Response[bytes]:
        status, content, extra = await _service(request).serve(
            request.scope, request.receive, call_type
        )
        return Response(content, status_code=status, media_type=_JSON, headers=extra)

    name = call_type or "batch"
    ingest.__name__ = f"ingest_{name}"
    ingest.__doc__ = (
        f"Segment `{name}` call{'s' if call_type is None else ''}; see `schemas/` for the body."
    )
    return post(paths, status_code=200, tags=["ingest"], name=f"ingest_{name}")(ingest)


@post(sorted(libraries.METRICS_PATHS), status_code=200, include_in_schema=False)
async def client_metrics() -> Response[bytes]:
    """analytics.js and RudderStack report their own metrics here; accepted and ignored."""
    return Response(libraries.ACCEPTED_METRICS, media_type=_JSON)


@get(
    "/v1/projects/{write_key:str}/settings",
    tags=["ingest"],
    name="segment_settings",
    sync_to_thread=False,
)
def segment_settings(
    request: Request[Any, Any, Any], write_key: Annotated[str, PathParameter()]
) -> Response[bytes]:
    """Segment's libraries read their settings here when their CDN host is the forwarder.

    analytics.js with ``cdnURL``, analytics-kotlin and analytics-swift with ``cdnHost``; the
    answer enables the Segment.io destination with the key and names no ``apiHost``, so the
    library keeps the one it was configured with.
    """
    status, content, extra = _service(request).segment_settings(request.headers, write_key)
    return Response(content, status_code=status, media_type=_JSON, headers=extra)


@get(sorted(libraries.SOURCE_CONFIG_PATHS), tags=["ingest"], name="rudderstack_source_config")
async def rudderstack_source_config(request: Request[Any, Any, Any]) -> Response[bytes]:
    """RudderStack's browser SDK reads its source here when ``configUrl`` is the forwarder.

    The key comes from ``Authorization: Basic`` or ``?writeKey=``; the answer names the source
    and lists no destinations.
    """
    status, content, extra = _service(request).source_config(
        request.headers, request.query_params.get("writeKey")
    )
    return Response(content, status_code=status, media_type=_JSON, headers=extra)


def ingest_router() -> Router:
    """Every ingest route."""
    paths = {call: [f"/v1/{call}", f"/v1/{short}"] for call, short in CALLS.items()}
    handlers: list[Any] = [_handler(call, p) for call, p in paths.items()]
    batch_paths = [p for p, call in INGEST_PATHS.items() if call is None]
    handlers.append(_handler(None, batch_paths))
    handlers += [client_metrics, rudderstack_source_config, segment_settings]
    return Router(path="/", route_handlers=handlers)
