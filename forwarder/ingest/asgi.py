"""Plain ASGI reading and answering for the ingest fast path (no framework objects)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from forwarder.errors import MalformedRequestError, PayloadTooLargeError


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (a repeated header keeps its last value)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def query_value(scope: Scope, name: str) -> str | None:
    """The first value of query parameter ``name``, if the request has one."""
    query = scope.get("query_string", b"").decode("latin-1")
    values = urllib.parse.parse_qs(query).get(name)
    return values[0] if values else None


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, refusing it as soon as it passes ``limit`` bytes.

    Raises:
        MalformedRequestError: the client went away before the body was complete.
        PayloadTooLargeError: the body is over ``limit``.
    """
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


async def respond(
    send: Send,
    status: int,
    content: bytes,
    extra: Mapping[str, str],
    content_type: bytes | None = b"application/json",
) -> None:
    """One complete response; ``content_type`` None sends none (an empty 204)."""
    headers = [(b"content-length", b"%d" % len(content))]
    if content_type is not None:
        headers.append((b"content-type", content_type))
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
