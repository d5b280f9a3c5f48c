"""The browser script: ``GET /js/v1/forwarder.js`` and the server-set anonymousId cookie.

The script is read from ``forwarder/static/forwarder.js``, trimmed and gzipped once when the
app is built; each request only picks a prepared body. ``GET /v1/cookie`` re-issues the
script's ``fwd_aid`` cookie from the server: behind the site's own domain (a reverse-proxy
path) a server-set cookie keeps its one-year lifetime where browsers cap script-set ones
(Safari: 7 days). See ``docs/snippet.md``.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import uuid
from importlib import resources
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, Router, get

SCRIPT_PATH = "/js/v1/forwarder.js"
COOKIE_PATH = "/v1/cookie"
COOKIE_NAME = "fwd_aid"
"""The anonymousId cookie; the script reads and writes the same name."""
COOKIE_MAX_AGE_S = 365 * 86400
CACHE_CONTROL = "public, max-age=3600, stale-while-revalidate=86400"
"""An hour fresh, then revalidated with the ETag (a 304 costs a few bytes)."""
BUDGET_GZIP_BYTES = 4096
"""The most the served script may weigh gzipped (checked by a test)."""

_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
_DOMAIN = re.compile(r"\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_JS = "text/javascript"  # Litestar adds "; charset=utf-8" to text types
_encode = msgspec.json.Encoder().encode


class Script(msgspec.Struct, frozen=True):
    """The script as served: plain and gzipped bodies and their strong ETag."""

    body: bytes
    gzipped: bytes
    etag: str


def read_source() -> str:
    """The hand-written script as kept in the repository (and the wheel)."""
    return resources.files("forwarder").joinpath("static", "forwarder.js").read_text("utf-8")


def trim(source: str) -> str:
    """Drop whole-line ``//`` comments, indentation and blank lines; nothing else changes.

    Safe because the script keeps no multi-line strings (its header says so); line breaks stay,
    so automatic semicolon insertion sees the same code.
    """
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


def build_script(source: str) -> Script:
    """Trim, gzip (deterministic: no mtime) and fingerprint the script."""
    body = trim(source).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()[:20]
    return Script(body=body, gzipped=gzip.compress(body, 9, mtime=0), etag=f'"{digest}"')


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _accepts_gzip(accept_encoding: str | None) -> bool:
    for part in (accept_encoding or "").lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            return q == "" or _q_positive(q)
    return False


def _q_positive(q: str) -> bool:
    try:
        return float(q) > 0
    except ValueError:
        return False


def _is_https(request: Request[Any, Any, Any]) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _anonymous_id(request: Request[Any, Any, Any]) -> str:
    """The id the script asked for, else the cookie's, else a new one."""
    for candidate in (request.query_params.get("id"), request.cookies.get(COOKIE_NAME)):
        if candidate and _ID.fullmatch(candidate):
            return candidate
    return str(uuid.uuid4())


def _set_cookie(request: Request[Any, Any, Any], anonymous_id: str) -> str:
    parts = [f"{COOKIE_NAME}={anonymous_id}", f"Max-Age={COOKIE_MAX_AGE_S}", "Path=/"]
    domain = request.query_params.get("domain")
    if domain and _DOMAIN.fullmatch(domain):
        # The browser itself refuses a domain the request's host is not inside.
        parts.append(f"Domain={domain}")
    parts.append("SameSite=Lax")
    if _is_https(request):
        parts.append("Secure")
    return "; ".join(parts)


def snippet_router(source: str | None = None) -> Router:
    """The script and cookie routes, with the script prepared now rather than per request."""
    script = build_script(read_source() if source is None else source)
    common = {
        "ETag": script.etag,
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept-Encoding",
        # Pages that set Cross-Origin-Embedder-Policy may still load it from another origin.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }

    @get(SCRIPT_PATH, tags=["browser"], name="forwarder_js", sync_to_thread=False)
    def forwarder_js(request: Request[Any, Any, Any]) -> Response[bytes]:
        """The browser script (``docs/snippet.md``); ETag revalidation and gzip."""
        headers = request.headers
        if _etag_matches(headers.get("if-none-match"), script.etag):
            return Response(b"", status_code=304, headers=common)
        if _accepts_gzip(headers.get("accept-encoding")):
            return Response(
                script.gzipped,
                media_type=_JS,
                headers={**common, "Content-Encoding": "gzip"},
            )
        return Response(script.body, media_type=_JS, headers=common)

    @get(COOKIE_PATH, tags=["browser"], name="anonymous_id_cookie", sync_to_thread=False)
    def anonymous_id_cookie(request: Request[Any, Any, Any]) -> Response[bytes]:
        """Set the ``fwd_aid`` cookie from the server: ``?id=`` (the script's), else kept.

        Query: ``id`` (8-128 of ``A-Za-z0-9._:-``), optional ``domain``. Answers
        ``{"anonymousId": ...}`` with ``Set-Cookie`` and ``Cache-Control: no-store``.
        """
        anonymous_id = _anonymous_id(request)
        return Response(
            _encode({"anonymousId": anonymous_id}),
            media_type=MediaType.JSON,
            headers={"Set-Cookie": _set_cookie(request, anonymous_id), "Cache-Control": "no-store"},
        )

    return Router(path="/", route_handlers=[forwarder_js, anonymous_id_cookie])
