"""The marketers' debugger: the ``/debugger`` page and the admin JSON API under ``/admin/api``.

Both need the admin token (see ``auth``). Views: live events (server-sent events), event
detail (with what was sent to HubSpot: ``sent``), contact journey, delivery overview with dead
letters, rate envelopes, attribution quality (``quality``); plus stats and erasure for operators.
``cli`` is the terminal side (``forwarder tail|journey|dlq|erase|stats|quality``).
``docs/debugger.md`` documents the routes and shapes.

Imports here are deferred so that the CLI's admin commands start without loading the web app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def debugger_routers() -> list[Any]:
    """The admin API and the page, for ``create_app``'s route handlers."""
    from forwarder.debugger.api import admin_api_router
    from forwarder.debugger.page import debugger_page_router

    return [admin_api_router(), debugger_page_router()]


@asynccontextmanager
async def debugger_lifespan(app: Any) -> AsyncIterator[None]:
    """Sample rate envelopes while the app runs."""
    from forwarder.debugger.state import sample_rates

    async with sample_rates(app):
        yield


__all__ = ["debugger_lifespan", "debugger_routers"]
