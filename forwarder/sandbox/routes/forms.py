"""Forms submission routes, served on the same host as the API."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from forwarder.sandbox import forms
from forwarder.sandbox.config import SCOPE_FORMS
from forwarder.sandbox.gate import Call, Outcome, Route, handle

SECURE = Route("forms.secure_submit", (SCOPE_FORMS,), "general", versioned=False)
OPEN = Route("forms.submit", (), "none", authenticated=False, versioned=False)


def _submit(call: Call, body: bytes) -> Outcome:
    sandbox = call.sandbox
    return forms.submit(
        sandbox.contacts, sandbox.forms, str(call.params["form_guid"]), body, call.request_id
    )


@post("/submissions/v3/integration/secure/submit/{portal_id:int}/{form_guid:str}")
async def secure_submit(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, SECURE, _submit)


@post("/submissions/v3/integration/submit/{portal_id:int}/{form_guid:str}")
async def open_submit(request: Request[Any, Any, Any]) -> Response[bytes]:
    return await handle(request, OPEN, _submit)


HANDLERS = [secure_submit, open_submit]
