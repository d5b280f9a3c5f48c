"""Bearer authentication and scopes (docs/hubspot-contract.md, "Authentication").

Private-app tokens (``SandboxConfig.tokens``) and service keys (``SandboxConfig.service_keys``)
never expire and are each their own app: service keys have "the same limits as privately
distributed apps" (HubSpot's service keys page).
Access tokens minted by ``POST /oauth/v1/token`` belong to the OAuth client (one app) and expire
after 1800 s / ``time_scale`` -> 401 ``EXPIRED_AUTHENTICATION``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from forwarder.sandbox.responses import (
    MESSAGE_MISSING_SCOPES,
    MESSAGE_NOT_AUTHENTICATED,
    ApiError,
)

NOT_AUTHENTICATED = ApiError(401, "INVALID_AUTHENTICATION", MESSAGE_NOT_AUTHENTICATED)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the app whose 10-second window the call spends, and its scopes."""

    app_key: str
    scopes: frozenset[str]
    expires_at: float | None = None


class TokenStore:
    """Known bearer tokens: static private-app tokens and minted OAuth access tokens."""

    def __init__(
        self,
        tokens: dict[str, tuple[str, ...]],
        time_scale: float,
        service_keys: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self._time_scale = time_scale
        self._principals: dict[str, Principal] = {
            token: Principal(app_key=f"private-app-{index}", scopes=frozenset(scopes))
            for index, (token, scopes) in enumerate(tokens.items(), start=1)
        }
        for index, (key, scopes) in enumerate((service_keys or {}).items(), start=1):
            self._principals[key] = Principal(f"service-key-{index}", frozenset(scopes))

    def add(self, token: str, scopes: tuple[str, ...] | list[str]) -> None:
        """Grant a new private-app token (its own app) the given scopes."""
        app_key = f"private-app-{len(self._principals) + 1}"
        self._principals[token] = Principal(app_key=app_key, scopes=frozenset(scopes))

    def mint(self, app_key: str, scopes: tuple[str, ...], expires_at: float) -> str:
        """A new OAuth access token (the ``CN…`` shape HubSpot's look like)."""
        token = "CN" + secrets.token_urlsafe(96)
        self._principals[token] = Principal(app_key, frozenset(scopes), expires_at)
        return token

    def authenticate(self, authorization: str | None, now: float) -> Principal | ApiError:
        """The caller of a ``Bearer`` header, or the 401 HubSpot answers."""
        if not authorization or not authorization.startswith(("Bearer ", "bearer ")):
            return NOT_AUTHENTICATED
        principal = self._principals.get(authorization[7:].strip())
        if principal is None:
            return NOT_AUTHENTICATED
        if principal.expires_at is not None and now >= principal.expires_at:
            minutes = int((now - principal.expires_at) * self._time_scale // 60)
            message = f"The OAuth token used to make this call expired {minutes} minute(s) ago."
            return ApiError(401, "EXPIRED_AUTHENTICATION", message)
        return principal


def missing_scopes(principal: Principal, required: tuple[str, ...]) -> ApiError | None:
    """403 ``MISSING_SCOPES`` unless the caller holds one of ``required``."""
    if not required or not principal.scopes.isdisjoint(required):
        return None
    return ApiError(
        403,
        "MISSING_SCOPES",
        MESSAGE_MISSING_SCOPES,
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": list(required)},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )
