"""Who may see the debugger: the admin token, as a Bearer header or a login session cookie.

The session cookie is ``<issued_at>.<nonce>.<hmac>``, the HMAC keyed by the admin token: it
never carries the token, holds no state on the server (every replica accepts it), and stops
working when the token is rotated. Comparisons are constant-time.

Without ``server.admin_token`` the admin API and the debugger are disabled (403 with the way
to enable them), except in zero-config sandbox mode, where a request from loopback is let in:
that mode binds 127.0.0.1, holds only sandbox data, and asking a developer for a token there
would only get in the way. A reverse proxy on the same host makes every request loopback, so
zero-config must not be put behind one (configure a token instead).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from forwarder.clock import Clock
from forwarder.config import Settings

SESSION_COOKIE = "fwd_admin"
SESSION_TTL_S = 12 * 3600.0
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AdminAuth:
    """Decides once, from the settings, how admin requests are checked."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._clock = clock
        token = settings.server.admin_token
        self._token = token.reveal().encode() if token is not None and token else None
        self.loopback_open = self._token is None and settings.sandbox_mode

    @property
    def enabled(self) -> bool:
        """Whether anyone can get in (a token is configured, or zero-config on loopback)."""
        return self._token is not None or self.loopback_open

    def token_matches(self, candidate: str) -> bool:
        """Constant-time check of a presented admin token."""
        if self._token is None:
            return False
        return hmac.compare_digest(candidate.encode(), self._token)

    def new_session(self, now: float | None = None) -> str:
        """A cookie value proving a login at ``now``."""
        issued = f"{int(now if now is not None else self._clock.now())}.{secrets.token_urlsafe(12)}"
        return f"{issued}.{self._sign(issued)}"

    def session_valid(self, value: str, now: float | None = None) -> bool:
        """Whether a cookie value was signed with the current token and has not expired."""
        if self._token is None:
            return False
        issued, _, mac = value.rpartition(".")
        at, _, _ = issued.partition(".")
        if not at.isdigit() or not hmac.compare_digest(mac.encode(), self._sign(issued).encode()):
            return False
        now = now if now is not None else self._clock.now()
        return 0 <= now - int(at) <= SESSION_TTL_S

    def check(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Let the request through or raise 401 (no or wrong credentials) / 403 (disabled)."""
        if self.loopback_open:
            client = connection.client.host if connection.client else ""
            # "testclient" is what in-process test clients report; no socket can say it.
            if client in _LOOPBACK or client == "testclient":
                return
            raise PermissionDeniedException(
                "the admin API is open only on loopback in zero-config mode; "
                "set server.admin_token to use it from elsewhere"
            )
        if self._token is None:
            raise PermissionDeniedException(
                "the admin API and debugger are disabled: set server.admin_token to enable them"
            )
        scheme, _, value = (connection.headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(value.strip()):
            return
        cookie = connection.cookies.get(SESSION_COOKIE)
        if cookie and self.session_valid(cookie):
            _check_same_origin(connection)
            return
        raise NotAuthorizedException("admin token required (Authorization: Bearer or log in)")

    def _sign(self, issued: str) -> str:
        assert self._token is not None  # callers check first
        return hmac.new(self._token, issued.encode(), hashlib.sha256).hexdigest()


def _check_same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A cookie-authenticated change must come from our own pages (SameSite is the first
    line; this covers browsers that send cookies on cross-site form posts anyway)."""
    if connection.scope.get("method") not in _UNSAFE:
        return
    origin = connection.headers.get("origin")
    if origin and urlsplit(origin).netloc != connection.headers.get("host", ""):
        raise PermissionDeniedException("cross-origin request refused")


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: the ``AdminAuth`` kept in ``app.state.admin_auth``."""
    admin_auth_of(connection.app).check(connection)


def admin_auth_of(app: Litestar) -> AdminAuth:
    """The ``AdminAuth`` the composition root put in ``app.state.admin_auth``."""
    found = app.state.get("admin_auth")
    if not isinstance(found, AdminAuth):  # a wiring mistake, not a request's fault
        raise TypeError(f"app.state.admin_auth is {type(found).__name__}, not an AdminAuth")
    return found
