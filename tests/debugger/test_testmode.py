"""Test events of a real portal go to its sandbox, never to HubSpot."""

from __future__ import annotations

from pathlib import Path

import msgspec

from forwarder.config import PortalSettings, Secret, SourceSettings
from forwarder.sandbox import Sandbox
from tests.debugger.conftest import admin_settings, running_admin, track
from tests.delivery.harness import until

UNREACHABLE = "http://127.0.0.1:9"  # discard port: a "real" HubSpot that never answers


async def test_a_test_event_of_a_real_portal_is_delivered_to_the_sandbox_only(
    tmp_path: Path,
) -> None:
    base = admin_settings(tmp_path)
    real = PortalSettings(
        portal_id=424242,
        base_url=UNREACHABLE,
        access_token=Secret("pat-na1-not-a-real-token"),
        unmapped_events="auto",
        request_timeout_s=0.5,
    )
    sources = (
        *base.sources,
        SourceSettings(name="qa", write_key=Secret("qa_test_key_0123456789"), test=True),
    )
    settings = msgspec.structs.replace(base, portals={"main": real}, sources=sources)
    async with running_admin(settings) as admin:
        await admin.send(
            track("flagged", userId="u1", context={"test": True, "traits": {"email": "t@x.io"}}),
            track("real", userId="u2", context={"traits": {"email": "r@x.io"}}),
        )

        async def delivered() -> bool:
            detail = await admin.get("/admin/api/events/1")
            return bool(detail["finalState"] == "delivered")

        await until(delivered, timeout_s=10)
        sandboxes = admin.app.state.test_sandboxes
        sandbox: Sandbox = sandboxes["main"].state.sandbox
        received = msgspec.to_builtins(sandbox.received_events())
        second = await admin.get("/admin/api/events/2")

    assert [e["email"] for e in received] == ["t@x.io"]
    assert second["finalState"] == "pending"  # the real one waits for the real HubSpot
    assert second["event"]["test"] is False
