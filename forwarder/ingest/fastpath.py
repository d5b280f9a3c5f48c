"""The ingest fast path: plain ASGI for the libraries' paths, before Litestar's routing.

Ingest is the hot path and Litestar's per-request machinery (its entry point, exception
middleware, routing, Request and Response) cost more than validating and storing a single
event (``benchmarks/RESULTS.md``). The same ``IngestService`` serves the Litestar routes, which
remain for the OpenAPI document.
"""

from __future__ import annotations

import msgspec
from litestar.types import HTTPScope, Receive, Scope, Send

from forwarder.errors import ForwarderError
from forwarder.events.messages import ErrorResponse
from forwarder.ingest import libraries
from forwarder.ingest.asgi import query_value, read_body, request_headers, respond
from forwarder.ingest.routes import CORS_PREFIXES, INGEST_PATHS, IngestService
from forwarder.ingest.statuses import answer

_ERROR = msgspec.json.Encoder()


async def answer_ingest(
    service: IngestService, scope: HTTPScope, receive: Receive, send: Send
) -> bool:
    """Answer the libraries' paths; False for anything else (Litestar takes it).

    CORS preflights are answered here (Litestar's own OPTIONS has no CORS), and so are the
    libraries' calls beside events, which need CORS headers too.
    """
    method = scope["method"]
    path = scope["path"]
    if method == "POST" and path in INGEST_PATHS:
        await _ingest(service, scope, receive, send, INGEST_PATHS[path])
    elif method == "POST" and path in libraries.METRICS_PATHS:
        await _discard(service, scope, receive, send)
    elif method == "GET" and path in libraries.SOURCE_CONFIG_PATHS:
        query_key = query_value(scope, "writeKey")
        await respond(send, *service.source_config(request_headers(scope), query_key))
    elif method == "GET" and (key := libraries.settings_key(path)) is not None:
        await respond(send, *service.segment_settings(request_headers(scope), key))
    elif method == "OPTIONS" and path.startswith(CORS_PREFIXES):
        await _preflight(service, scope, send)
    else:
        return False
    return True


async def _ingest(
    service: IngestService, scope: Scope, receive: Receive, send: Send, call_type: str | None
) -> None:
    await respond(send, *await service.serve(scope, receive, call_type))


async def _discard(service: IngestService, scope: Scope, receive: Receive, send: Send) -> None:
    """A library's own telemetry: read (bounded) and dropped, answered so it sees no error."""
    extra = service.cors_headers(request_headers(scope).get("origin")) or {}
    try:
        await read_body(receive, service.max_raw_bytes)
    except ForwarderError as exc:
        status, content, more = answer(exc)
        await respond(send, status, content, {**more, **extra})
        return
    await respond(send, 200, libraries.ACCEPTED_METRICS, extra)


async def _preflight(service: IngestService, scope: Scope, send: Send) -> None:
    headers = request_headers(scope)
    origin = headers.get("origin")
    allowed = service.preflight_headers(origin, headers.get("access-control-request-headers"))
    if allowed is None:
        reason = f"CORS preflight refused: origin {origin or '(none)'} is not allowed"
        await respond(send, 403, _ERROR.encode(ErrorResponse(False, reason, "Origin")), {})
        return
    await respond(send, 204, b"", allowed, content_type=None)
