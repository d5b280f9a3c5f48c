"""``POST /oauth/v1/token``: the refresh_token grant.

Bodies the reference does not show (wrong client id/secret, other grant types) use the same
``{"status": CODE, "message": ...}`` shape as ``BAD_REFRESH_TOKEN``; their codes are our choice.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs

from forwarder.sandbox.auth import TokenStore
from forwarder.sandbox.config import ACCESS_TOKEN_LIFETIME_S, SandboxConfig


def exchange(
    form: bytes, config: SandboxConfig, tokens: TokenStore, now: float
) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for one token request."""
    fields = {k: v[-1] for k, v in parse_qs(form.decode("utf-8", "replace")).items()}
    grant = fields.get("grant_type")
    if grant != "refresh_token":
        return 400, {"status": "BAD_GRANT_TYPE", "message": f"unsupported grant_type: {grant}"}
    if fields.get("client_id") != config.client_id:
        return 400, {"status": "BAD_CLIENT_ID", "message": "missing or unknown client id"}
    if fields.get("client_secret") != config.client_secret:
        return 400, {"status": "BAD_CLIENT_SECRET", "message": "missing or invalid client secret"}
    if fields.get("refresh_token") != config.refresh_token:
        return 400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}
    lifetime_s = ACCESS_TOKEN_LIFETIME_S / config.time_scale
    access = tokens.mint(f"oauth-{config.client_id}", config.oauth_scopes, now + lifetime_s)
    return 200, {
        "access_token": access,
        "refresh_token": config.refresh_token,
        "expires_in": max(1, math.floor(lifetime_s)),
        "token_type": "bearer",
        "token_use": "access_token",
        "hub_id": config.portal_id,
        "scopes": list(config.oauth_scopes),
    }
