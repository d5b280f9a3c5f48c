"""``forwarder check`` against the sandbox: a portal with gaps, a complete one, and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from forwarder.config import (
    ContactSettings,
    EventMapping,
    LimitSettings,
    PortalSettings,
    Secret,
    Settings,
)
from forwarder.preflight.items import Item, Verdict, passed, render
from forwarder.preflight.run import check_portals
from forwarder.sandbox import ALL_SCOPES, Sandbox, SandboxConfig, create_sandbox_app
from forwarder.sandbox.config import SCOPE_CONTACTS_WRITE
from tests.support import SANDBOX_PORTAL_ID, sandbox_process

TOKEN = "pat-na1-check-token"
PORTAL_ID = 123456
ORDER = f"pe{PORTAL_ID}_order_completed"
MAPPINGS = (
    EventMapping(
        event="Order Completed",
        custom_event="order_completed",
        properties={"revenue": "amount", "sku": "sku"},
    ),
    EventMapping(event="Signed Up", custom_event="signed_up"),
)


def portal(**extra: Any) -> PortalSettings:
    fields: dict[str, Any] = {
        "portal_id": PORTAL_ID,
        "base_url": "http://hubspot.test",
        "access_token": Secret(TOKEN),
        "events": MAPPINGS,
        "contacts": ContactSettings(upsert=True, properties={"plan": "plan_tier"}),
        **extra,
    }
    return PortalSettings(**fields)


def account(scopes: tuple[str, ...] = ALL_SCOPES, **extra: Any) -> Sandbox:
    fields: dict[str, Any] = {
        "portal_id": PORTAL_ID,
        "tokens": {TOKEN: scopes},
        "seed_definitions": {"order_completed": ("amount",)},
        "contact_properties": ("plan_tier",),
        **extra,
    }
    config = SandboxConfig(**fields)
    return Sandbox(config)


async def run(sandbox: Sandbox, settings: PortalSettings, **options: Any) -> list[Item]:
    app = create_sandbox_app(sandbox=sandbox)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    config = Settings(portals={"main": settings})
    return await check_portals(config, transports={"main": transport}, **options)


def lines(items: list[Item], verdict: Verdict) -> dict[str, str]:
    return {i.what: i.detail for i in items if i.verdict is verdict}


async def test_portal_lacking_a_scope_a_definition_and_a_property_fails_on_each() -> None:
    no_write = tuple(s for s in ALL_SCOPES if s != SCOPE_CONTACTS_WRITE)
    items = await run(account(no_write), portal())

    missing = lines(items, Verdict.MISSING)
    assert set(missing) == {
        "scope: contact upserts",
        f"event pe{PORTAL_ID}_signed_up",
        "  property sku",
    }
    assert SCOPE_CONTACTS_WRITE in missing["scope: contact upserts"]
    assert "--create-missing" in missing[f"event pe{PORTAL_ID}_signed_up"]
    assert not passed(items)
    assert "not ready: 3 item(s) to fix" in render(items)


async def test_complete_portal_passes_and_sends_nothing() -> None:
    sandbox = account(seed_definitions={"order_completed": ("amount", "sku"), "signed_up": ()})
    items = await run(sandbox, portal())

    assert lines(items, Verdict.MISSING) == {}
    assert passed(items)
    assert sandbox.received_events() == []
    assert sandbox.contacts.by_id == {}


async def test_create_missing_creates_definitions_and_properties_then_passes() -> None:
    sandbox = account()
    items = await run(sandbox, portal(), create_missing=True)

    assert passed(items)
    assert sandbox.definitions.find(f"pe{PORTAL_ID}_signed_up") is not None
    order = sandbox.definitions.find(ORDER)
    assert order is not None
    assert "sku" in order.properties


async def test_refused_token_stops_the_portal_with_one_line() -> None:
    items = await run(account(), portal(access_token=Secret("pat-na1-wrong")))

    assert lines(items, Verdict.MISSING).keys() == {"credential (private app token)"}
    assert "401" in lines(items, Verdict.MISSING)["credential (private app token)"]


async def test_service_key_is_checked_like_any_credential_and_notes_webhooks() -> None:
    key = "svc-key-0123456789"
    sandbox = account(service_keys={key: ALL_SCOPES})
    settings = portal(access_token=None, service_key=Secret(key))
    items = await run(sandbox, settings, create_missing=True)

    assert lines(items, Verdict.OK)["credential (service key)"] == "accepted"
    assert "webhooks (merges, deletions)" in lines(items, Verdict.NOTE)
    assert passed(items)


async def test_sunset_version_is_reported_with_the_fix() -> None:
    items = await run(account(unsupported_versions=("v3",)), portal(api_version="v3"))

    missing = lines(items, Verdict.MISSING)
    assert list(missing) == ["API version v3 served"]
    assert 'api_version = "2026-03"' in missing["API version v3 served"]


async def test_dated_portal_passes_on_a_sandbox_that_has_sunset_v3() -> None:
    sandbox = account(
        unsupported_versions=("v3",),
        seed_definitions={"order_completed": ("amount", "sku"), "signed_up": ()},
    )
    assert passed(await run(sandbox, portal(api_version="2026-09")))


@pytest.mark.parametrize(
    ("limits", "verdict"),
    [
        (LimitSettings(crm_per_10s=190), None),
        (LimitSettings(crm_per_10s=240), Verdict.NOTE),
        (LimitSettings(crm_per_10s=400), Verdict.MISSING),
        (LimitSettings(search_per_s=6), Verdict.MISSING),
    ],
)
async def test_envelope_overrides_are_checked_against_the_tier(
    limits: LimitSettings, verdict: Verdict | None
) -> None:
    sandbox = account(seed_definitions={"order_completed": ("amount", "sku"), "signed_up": ()})
    items = await run(sandbox, portal(limits=limits))

    found = [i.verdict for i in items if i.what.startswith("limits.")]
    assert found == ([] if verdict is None else [verdict])


def test_cli_exits_0_on_a_complete_portal_and_1_when_something_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "forwarder.toml"
    with sandbox_process("--define", "order_completed:amount,sku", "--define", "signed_up") as sb:
        body = f"""
[portals.main]
portal_id = {SANDBOX_PORTAL_ID}
base_url = "{sb.url}"
access_token = "pat-na1-sandbox-token"
[[portals.main.events]]
event = "Order Completed"
custom_event = "order_completed"
properties = {{ revenue = "amount", sku = "sku" }}
"""
        config.write_text(body)
        ok = subprocess.run(
            [sys.executable, "-m", "forwarder", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        config.write_text(body.replace('sku = "sku"', 'sku = "sku", coupon = "coupon"'))
        gap = subprocess.run(
            [sys.executable, "-m", "forwarder", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ready: everything needed is in place" in ok.stdout
    assert gap.returncode == 1, gap.stdout + gap.stderr
    assert "✗ main" in gap.stdout
    assert "property coupon" in gap.stdout


async def test_v3_template_id_on_a_dated_version_is_flagged_with_the_fix() -> None:
    mapping = EventMapping(event="Order Completed", custom_event="x", timeline_template="1001")
    sandbox = account(seed_definitions={"x": ()})
    items = await run(sandbox, portal(events=(mapping,), contacts=ContactSettings()))

    missing = lines(items, Verdict.MISSING)
    assert list(missing) == ["timeline event type 1001"]
    assert "event type name" in missing["timeline event type 1001"]
    legacy = await run(
        sandbox, portal(events=(mapping,), contacts=ContactSettings(), api_version="v3")
    )
    assert lines(legacy, Verdict.NOTE)["timeline template 1001"].startswith("not readable")


async def test_refused_oauth_refresh_token_is_reported_as_the_credential() -> None:
    oauth = portal(
        access_token=None,
        tier="oauth",
        client_id="sandbox-client-id",
        client_secret=Secret("sandbox-client-secret"),
        refresh_token=Secret("not-the-refresh-token"),
    )
    items = await run(account(), oauth)

    missing = lines(items, Verdict.MISSING)
    assert list(missing) == ["credential (OAuth app)"]
    assert "refresh refused" in missing["credential (OAuth app)"]
    assert "not-the-refresh-token" not in render(items)
