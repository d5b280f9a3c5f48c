"""The path every simulated HubSpot request takes before its handler runs.

Order: correlation id -> unsupported API version (410) -> Bearer auth (401) -> scopes (403) ->
scripted faults (latency, hang, injected status) -> rate limits (429) -> HubSpot's OpenAPI
request schema (400) -> decode + handle. Auth failures spend no budget (the app is unknown);
validation errors after admission do. Every response carries ``X-HubSpot-Correlation-Id``;
error bodies carry the same id as
``correlationId``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from litestar import Request, Response

from forwarder.sandbox.auth import Principal, missing_scopes
from forwarder.sandbox.faults import FaultAction
from forwarder.sandbox.limits import MESSAGES, Headers, Refusal
from forwarder.sandbox.responses import ApiError, encode, validation_error
from forwarder.sandbox.state import Sandbox
from forwarder.sandbox.versions import unsupported, version_of

CORRELATION = "X-HubSpot-Correlation-Id"
JSON = "application/json;charset=utf-8"
INJECTED_MESSAGES = {
    423: "Locked: too many concurrent updates to this record; retry after 2 seconds",
    477: "Migration in progress",
    500: "Internal error",
    502: "Bad gateway: processing limits met",
    503: "Service temporarily unavailable",
    504: "Gateway timeout: processing limits met",
}


@dataclass(frozen=True, slots=True)
class Route:
    """A simulated endpoint: its name (for faults and stats), scopes and rate-limit class."""

    name: str
    scopes: tuple[str, ...]
    limit: Literal["general", "search", "events", "none"]
    authenticated: bool = True
    versioned: bool = True
    """False for APIs with no date-based equivalent yet (forms, OAuth v1): a sunset of the
    numbered versions does not reach them."""


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the sandbox, the request's id, its path params and any fault."""

    sandbox: Sandbox
    request_id: str
    route: Route
    params: dict[str, Any]
    query: dict[str, str]
    fault: FaultAction | None
    now: float
    version: str | None = None
    """The API version in the request path (``v3``, ``2026-03``)."""


Outcome = tuple[int, Any] | ApiError
Work = Callable[[Call, bytes], Outcome]


async def handle(request: Request[Any, Any, Any], route: Route, work: Work) -> Response[bytes]:
    """Run ``work`` behind auth, faults and limits; shape its outcome as HubSpot would."""
    sandbox: Sandbox = request.app.state.sandbox
    request_id = str(uuid.uuid4())
    now = sandbox.clock.monotonic()  # windows and token lifetimes: differences only
    version = version_of(request.url.path) if route.versioned else None
    principal = _admit(sandbox, route, request, version, now)
    if isinstance(principal, ApiError):
        return _error(sandbox, route, principal, request_id, [])
    fault = sandbox.faults.take(route.name)
    if fault is not None:
        injected = await _apply(sandbox, route, fault, request_id)
        if injected is not None:
            return injected
    headers = _limit(sandbox, route, principal, now)
    if isinstance(headers, Refusal):
        return _refused(sandbox, route, headers, request_id)
    body = await request.body()
    # The scope's path is relative to this app, so the check works under a mount prefix too.
    refused = sandbox.specs.check(request.method, request.scope["path"], body)
    if refused is not None:
        return _error(sandbox, route, refused, request_id, headers)
    query = dict(request.query_params)
    call = Call(sandbox, request_id, route, request.path_params, query, fault, now, version)
    try:
        outcome = work(call, body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        outcome = validation_error(f"Invalid input JSON: {exc}")
    if isinstance(outcome, ApiError):
        return _error(sandbox, route, outcome, request_id, headers)
    status, payload = outcome
    sandbox.statuses[(route.name, status)] += 1
    headers.append((CORRELATION, request_id))
    content = b"" if payload is None else encode(payload)
    return Response(content, status_code=status, headers=dict(headers), media_type=JSON)


def _admit(
    sandbox: Sandbox,
    route: Route,
    request: Request[Any, Any, Any],
    version: str | None,
    now: float,
) -> Principal | ApiError | None:
    """The API version and the caller: who is calling, or why they may not."""
    if version is not None:
        sandbox.versions[version] += 1
    if version is not None and version in sandbox.config.unsupported_versions:
        return unsupported(version)
    if not route.authenticated:
        return None
    principal = sandbox.tokens.authenticate(request.headers.get("authorization"), now)
    if isinstance(principal, ApiError):
        return principal
    denied = missing_scopes(principal, route.scopes)
    return principal if denied is None else denied


def _limit(
    sandbox: Sandbox, route: Route, principal: Principal | None, now: float
) -> Headers | Refusal:
    """The rate limit the route counts against: its headers, or the refusal."""
    if route.limit == "general" and principal is not None:
        return sandbox.limiter.general(principal.app_key, now)
    if route.limit == "search":
        refusal = sandbox.limiter.search_request(now)
        return [] if refusal is None else refusal
    if route.limit == "events":
        refusal = sandbox.limiter.event_send(now)
        return [] if refusal is None else refusal
    return []


def _error(
    sandbox: Sandbox, route: Route, error: ApiError, request_id: str, headers: Headers
) -> Response[bytes]:
    sandbox.statuses[(route.name, error.status)] += 1
    headers.append((CORRELATION, request_id))
    content = encode(error.body(request_id))
    return Response(content, status_code=error.status, headers=dict(headers), media_type=JSON)


def _refused(sandbox: Sandbox, route: Route, refusal: Refusal, request_id: str) -> Response[bytes]:
    body: dict[str, Any] = {
        "status": "error",
        "message": MESSAGES[refusal.policy],
        "errorType": "RATE_LIMIT",
        "correlationId": request_id,
        "policyName": refusal.policy,
        "requestId": str(uuid.uuid4()),
    }
    if refusal.group_name is not None:
        body["groupName"] = refusal.group_name
    headers = [*refusal.headers, (CORRELATION, request_id)]
    retry_after = sandbox.config.retry_after_s
    if retry_after is not None:
        headers.append(("Retry-After", _seconds(retry_after)))
    sandbox.statuses[(route.name, 429)] += 1
    return Response(encode(body), status_code=429, headers=dict(headers), media_type=JSON)


async def _apply(
    sandbox: Sandbox, route: Route, fault: FaultAction, request_id: str
) -> Response[bytes] | None:
    if fault.latency_s:
        await asyncio.sleep(fault.latency_s)
    if fault.hang_s is not None:
        await _hang(sandbox, fault.hang_s)
    status = fault.status
    if status is None:
        return None
    sandbox.injected[status] += 1
    sandbox.statuses[(route.name, status)] += 1
    headers = {CORRELATION: request_id}
    retry_after = (
        fault.retry_after_s if fault.retry_after_s is not None else (2.0 if status == 423 else None)
    )
    if retry_after is not None:
        headers["Retry-After"] = _seconds(retry_after)
    if status == 429:
        body: dict[str, Any] = {
            "status": "error",
            "message": MESSAGES.get(fault.policy_name, MESSAGES["TEN_SECONDLY_ROLLING"]),
            "errorType": "RATE_LIMIT",
            "correlationId": request_id,
            "policyName": fault.policy_name,
            "requestId": str(uuid.uuid4()),
        }
    elif status >= 520:
        # Cloudflare answers these itself, with an HTML page and no HubSpot body.
        html = f"<html><body><h1>Error {status}</h1><p>cloudflare</p></body></html>".encode()
        return Response(html, status_code=status, headers=headers, media_type="text/html")
    else:
        category = "LOCKED" if status == 423 else "INTERNAL_ERROR"
        body = ApiError(status, category, INJECTED_MESSAGES.get(status, "Error")).body(request_id)
    return Response(encode(body), status_code=status, headers=headers, media_type=JSON)


async def _hang(sandbox: Sandbox, hang_s: float) -> None:
    """Wait ``hang_s`` real seconds, or until the sandbox is reset."""
    generation = sandbox.generation
    loop = asyncio.get_running_loop()
    deadline = loop.time() + hang_s
    # Polling, not an Event: an Event binds to one loop, and tests run one loop per test.
    while sandbox.generation == generation and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(min(0.05, hang_s))


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
