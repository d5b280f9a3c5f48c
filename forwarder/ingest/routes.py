"""The Segment HTTP Tracking API: ``/v1/track`` ... ``/v1/batch`` and analytics.js's short forms."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from litestar import Request, Response, Router, post
from litestar.params import JSONBody
from litestar.types import (
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Scope,
    Send,
)

from forwarder.config import Settings
from forwarder.errors import (
    ForwarderError,
    MalformedRequestError,
    PayloadTooLargeError,
    ShuttingDownError,
)
from forwarder.events.messages import MESSAGE_TYPES, Batch, ErrorResponse
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
    "/v1/import": None,
}
"""Path -> the call type it implies (None: a batch)."""


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

    async def handle(
        self, request: Request[Any, Any, Any], call_type: str | None
    ) -> Response[bytes]:
        """The Litestar route's entry (the ASGI fast path below is the usual one)."""
        status, content, extra = await self.process(
            request.url.path, request.headers, request.body, call_type
        )
        return Response(content, status_code=status, media_type=_JSON, headers=extra)

    async def process(
        self,
        path: str,
        headers: Mapping[str, str],
        read_body: Callable[[], Awaitable[bytes]],
        call_type: str | None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """Authenticate, read, validate and accept one request; map errors to statuses."""
        started = time.perf_counter()
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
            body = decode_body(await read_body(), headers.get("content-encoding"), self._max_bytes)
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

    def preflight_headers(self, origin: str | None) -> list[tuple[bytes, bytes]] | None:
        """CORS preflight: allowed when the origin is on some browser source's allow-list."""
        if origin is None or not self._resolver.preflight_allowed(origin):
            return None
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", b"Content-Type, Authorization, Content-Encoding"),
            (b"access-control-max-age", b"86400"),
            (b"vary", b"Origin"),
        ]


def _service(request: Request[Any, Any, Any]) -> IngestService:
    service: IngestService = request.app.state.ingest
    return service


def _handler(call_type: str | None, paths: list[str]) -> Any:
    # Requests are served by ``answer_ingest``; these routes document the API in OpenAPI
    # (the ``data`` annotation gives each its request-body schema) and are the fallback.
    async def ingest(request: Request[Any, Any, Any], data: Any) -> Response[bytes]:
        return await _service(request).handle(request, call_type)

    body_type = MESSAGE_TYPES[call_type] if call_type is not None else Batch
    ingest.__annotations__ = {
        "request": Request[Any, Any, Any],
        "data": JSONBody[body_type],  # type: ignore[misc,valid-type]  # chosen per route at start
        "return": Response[bytes],
    }

    name = call_type or "batch"
    ingest.__name__ = f"ingest_{name}"
    ingest.__doc__ = (
        f"Segment `{name}` call{'s' if call_type is None else ''}; see `schemas/` for the body."
    )
    return post(paths, status_code=200, tags=["ingest"], name=f"ingest_{name}")(ingest)


async def _read(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise MalformedRequestError("client went away before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"request body is over the {limit} byte limit", field="server.max_request_bytes"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, content: bytes, extra: Mapping[str, str]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    body: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": content,
        "more_body": False,
    }
    await send(start)
    await send(body)


async def answer_ingest(
    service: IngestService, scope: HTTPScope, receive: Receive, send: Send
) -> bool:
    """The ingest fast path: answer ``/v1/*`` before the framework; False for anything else.

    Ingest is the hot path and Litestar's per-request machinery (its entry point, exception
    middleware, routing, Request and Response) cost more than validating and storing a single
    event (``benchmarks/RESULTS.md``). The same ``process`` serves the Litestar routes, which
    remain for the OpenAPI document. CORS preflights are answered here too (Litestar's own
    OPTIONS has no CORS).
    """
    method = scope["method"]
    path = scope["path"]
    if method == "POST" and path in INGEST_PATHS:
        await _ingest(service, scope, receive, send, INGEST_PATHS[path])
        return True
    if method == "OPTIONS" and path.startswith("/v1/"):
        await _preflight(service, scope, send)
        return True
    return False


async def _ingest(
    service: IngestService, scope: Scope, receive: Receive, send: Send, call_type: str | None
) -> None:
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    limit = service.max_raw_bytes

    async def read_body() -> bytes:
        if int(headers.get("content-length") or 0) > limit:
            raise PayloadTooLargeError(
                f"request body is over the {limit} byte limit", field="server.max_request_bytes"
            )
        return await _read(receive, limit)

    status, content, extra = await service.process(scope["path"], headers, read_body, call_type)
    await _respond(send, status, content, extra)


async def _preflight(service: IngestService, scope: Scope, send: Send) -> None:
    origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
    allowed = service.preflight_headers(origin)
    if allowed is None:
        reason = f"CORS preflight refused: origin {origin or '(none)'} is not allowed"
        await _respond(send, 403, _ERROR.encode(ErrorResponse(False, reason, "Origin")), {})
        return
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 204,
        "headers": allowed,
    }
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
    await send(start)
    await send(body)


@post("/v1/m", status_code=200, include_in_schema=False)
async def client_metrics() -> Response[bytes]:
    """analytics.js reports its own metrics here; accepted and ignored."""
    return Response(b'{"success":true}', media_type=_JSON)


def ingest_router() -> Router:
    """Every ingest route."""
    paths = {call: [f"/v1/{call}", f"/v1/{short}"] for call, short in CALLS.items()}
    handlers: list[Any] = [_handler(call, p) for call, p in paths.items()]
    handlers.append(_handler(None, ["/v1/batch", "/v1/import"]))
    handlers.append(client_metrics)
    return Router(path="/", route_handlers=handlers)
