"""Reading a request body: media type, gzip with a cap on the decompressed size."""

from __future__ import annotations

import zlib

from forwarder.errors import MalformedRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

_ACCEPTED_TYPES = ("application/json", "text/plain", "")


def check_media_type(content_type: str | None) -> None:
    """JSON, or text/plain JSON (analytics.js sends that to avoid a CORS preflight).

    Raises:
        UnsupportedMediaTypeError: any other media type.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in _ACCEPTED_TYPES and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"content type {media!r} is not supported; send application/json or text/plain",
            field="Content-Type",
        )


def decode_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body, gunzipped if needed, never larger than ``max_bytes``.

    Raises:
        PayloadTooLargeError: the (decompressed) body is over ``max_bytes``.
        MalformedRequestError: the gzip stream is broken.
        UnsupportedMediaTypeError: an encoding other than gzip/identity.
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        body = raw
    elif encoding in ("gzip", "x-gzip"):
        body = _gunzip(raw, max_bytes)
    else:
        raise UnsupportedMediaTypeError(
            f"content encoding {encoding!r} is not supported; use gzip",
            field="Content-Encoding",
        )
    if len(body) > max_bytes:
        raise PayloadTooLargeError(
            f"request body is over the {max_bytes} byte limit", field="server.max_request_bytes"
        )
    return body


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise MalformedRequestError(
            f"body is not valid gzip: {exc}", field="Content-Encoding"
        ) from exc
    if len(body) > max_bytes or inflater.unconsumed_tail:
        raise PayloadTooLargeError(
            f"decompressed body is over the {max_bytes} byte limit",
            field="server.max_request_bytes",
        )
    if not inflater.eof:
        raise MalformedRequestError("gzip body is truncated", field="Content-Encoding")
    return body
