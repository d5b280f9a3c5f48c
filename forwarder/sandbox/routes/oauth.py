"""``POST /oauth/v1/token``: no bearer, no rate limit, form-encoded body."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from forwarder.sandbox import oauth
from forwarder.sandbox.gate import Call, Outcome, Route, handle

TOKEN = Route("oauth.token", (), "none", authenticated=False, versioned=False)


def _exchange(call: Call, body: bytes) -> Outcome:
    sandbox = call.sandbox
    return oauth.exchange(body, sandbox.config, sandbox.tokens, call.now)


@post("/oauth/v1/token")
async def token(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The refresh_token grant."""
    return await handle(request, TOKEN, _exchange)


HANDLERS = [token]
