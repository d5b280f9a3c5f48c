"""The ``/debugger`` page, its login form and its static assets (no build step)."""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException
from litestar.params import Body
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from forwarder.debugger.auth import SESSION_COOKIE, SESSION_TTL_S, admin_auth_of, admin_guard

STATIC = Path(str(files("forwarder.debugger") / "static"))
LOGIN_PATH = "/debugger/login"
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
}
_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Forwarder debugger: log in</title>
<link rel="stylesheet" href="/debugger/login.css"></head>
<body class="login"><main>
<h1>Forwarder debugger</h1>
<form method="post" action="/debugger/login">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
<p id="error" role="alert">{error}</p>
</main></body></html>
"""
_LOGIN_CSS = (STATIC / "login.css").read_text(encoding="utf-8")
_INDEX = (STATIC / "index.html").read_text(encoding="utf-8")


class LoginForm(msgspec.Struct):
    """The login form's one field."""

    token: str = ""


def _login_page(error: str = "", status: int = 200) -> Response[str]:
    return Response(
        _LOGIN.format(error=html.escape(error)),
        status_code=status,
        media_type=MediaType.HTML,
        headers=_HEADERS,
    )


def _to_login(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return Redirect(LOGIN_PATH, status_code=303)


@get("/debugger", media_type=MediaType.HTML, include_in_schema=False)
async def debugger_page() -> Response[str]:
    """The single page; it reads the JSON API with the session cookie."""
    return Response(_INDEX, media_type=MediaType.HTML, headers=_HEADERS)


@get(LOGIN_PATH, include_in_schema=False)
async def login_form() -> Response[str]:
    """The login form (the one debugger page shown without the token)."""
    return _login_page()


@get("/debugger/login.css", include_in_schema=False, media_type="text/css")
async def login_css() -> str:
    """The login form's style (no personal or secret content)."""
    return _LOGIN_CSS


@post(LOGIN_PATH, include_in_schema=False, status_code=303)
async def login(
    request: Request[Any, Any, Any],
    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Check the token; on success set the session cookie and go to the page."""
    auth = admin_auth_of(request.app)
    if not auth.enabled or auth.loopback_open:
        return Redirect("/debugger", status_code=303)
    if not auth.token_matches(data.token):
        return _login_page("That is not the admin token.", status=401)
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=auth.new_session(),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(SESSION_TTL_S),
    )
    return Redirect("/debugger", status_code=303, cookies=[cookie])


@post("/debugger/logout", include_in_schema=False, status_code=303, guards=[admin_guard])
async def logout() -> Response[Any]:
    """Forget the session cookie in this browser."""
    gone = Cookie(key=SESSION_COOKIE, value="", path="/", max_age=0, httponly=True)
    return Redirect(LOGIN_PATH, status_code=303, cookies=[gone])


def debugger_page_router() -> Router:
    """The page (guarded; a browser without a session is sent to the login form)."""
    return Router(
        path="/",
        route_handlers=[
            Router(
                path="/",
                guards=[admin_guard],
                route_handlers=[debugger_page],
                exception_handlers={NotAuthorizedException: _to_login},
            ),
            login_form,
            login_css,
            login,
            logout,
            create_static_files_router(
                "/debugger/static", directories=[STATIC], guards=[admin_guard], name="debugger"
            ),
        ],
    )
