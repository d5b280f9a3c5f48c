"""Fixtures: a sandbox on a manual clock, reached in-process through ``httpx.ASGITransport``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from forwarder.sandbox import DEFAULT_TOKEN, ManualClock, Sandbox, SandboxConfig, create_sandbox_app

PORTAL = 12345678
EVENT = f"pe{PORTAL}_purchase"
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
SEEDS = {"purchase": ("amount", "currency", "page_url")}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_client(clock: ManualClock) -> Callable[..., tuple[Sandbox, httpx.AsyncClient]]:
    """Build a sandbox with config overrides and an in-process client for it."""

    def build(**overrides: object) -> tuple[Sandbox, httpx.AsyncClient]:
        fields: dict[str, object] = {
            "seed_definitions": SEEDS,
            "seed_templates": {"1001": ("petName",)},
        }
        fields.update(overrides)
        sandbox = Sandbox(SandboxConfig(**fields), clock=clock, seed=1)  # type: ignore[arg-type]
        app = create_sandbox_app(sandbox=sandbox)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sandbox", headers=AUTH
        )
        return sandbox, client

    return build


@pytest.fixture
async def sandbox_client(
    make_client: Callable[..., tuple[Sandbox, httpx.AsyncClient]],
) -> AsyncIterator[tuple[Sandbox, httpx.AsyncClient]]:
    sandbox, client = make_client()
    async with client:
        yield sandbox, client


def event(**fields: object) -> dict[str, object]:
    """A valid occurrence of the seeded event, with overrides; ``None`` leaves a field out
    (HubSpot's spec has no nullable fields here, so a JSON null would fail its schema first)."""
    body: dict[str, object] = {
        "eventName": EVENT,
        "email": "jane@example.com",
        "properties": {"amount": "49.90"},
    }
    body.update(fields)
    return {name: value for name, value in body.items() if value is not None}
