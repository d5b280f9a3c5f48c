"""``create_sandbox_app``: the Litestar app serving the simulated HubSpot and ``/_sandbox/``."""

from __future__ import annotations

from litestar import Litestar

from forwarder.sandbox.config import SandboxConfig
from forwarder.sandbox.routes import crm, events, forms, inspect, oauth
from forwarder.sandbox.state import Sandbox


def create_sandbox_app(
    config: SandboxConfig | None = None, *, sandbox: Sandbox | None = None
) -> Litestar:
    """The sandbox as an ASGI app; its ``Sandbox`` is ``app.state.sandbox``.

    All routes are relative to the app root, so it can be mounted under a prefix.
    """
    state = sandbox if sandbox is not None else Sandbox(config)
    app = Litestar(
        route_handlers=[
            *events.HANDLERS,
            *crm.HANDLERS,
            *oauth.HANDLERS,
            *forms.HANDLERS,
            *inspect.HANDLERS,
        ],
        openapi_config=None,
    )
    app.state.sandbox = state
    return app
