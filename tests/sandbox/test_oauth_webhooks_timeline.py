"""OAuth expiry, signed webhooks, timeline batches, and mounting under a path prefix."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx
from litestar import Litestar, asgi
from litestar.types import Receive, Scope, Send

from forwarder.sandbox import (
    ManualClock,
    Sandbox,
    SandboxConfig,
    WebhookRequest,
    create_sandbox_app,
)

from .conftest import event

REFRESH = {
    "grant_type": "refresh_token",
    "client_id": "sandbox-client-id",
    "client_secret": "sandbox-client-secret",
    "refresh_token": "sandbox-refresh-token",
}


async def test_oauth_access_token_expires_after_1800_seconds(
    make_client: Any, clock: ManualClock
) -> None:
    _, client = make_client(tier="oauth")
    async with client:
        token = (await client.post("/oauth/v1/token", data=REFRESH)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        fresh = await client.post("/events/v3/send", json=event(), headers=auth)
        clock.advance(1800.0 + 300.0)
        expired = await client.post("/events/v3/send", json=event(), headers=auth)
    assert fresh.status_code == 204
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert (
        expired.json()["message"]
        == "The OAuth token used to make this call expired 5 minute(s) ago."
    )


async def test_webhook_is_signed_with_v1_and_v3(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    sandbox, _ = sandbox_client
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    sandbox.webhook_transport = httpx.MockTransport(receiver)
    loser = sandbox.add_contact({"email": "old@example.com"})
    winner = sandbox.add_contact({"email": "new@example.com"})
    delivery = await sandbox.send_webhook(
        WebhookRequest(
            url="https://example.com/hooks",
            subscription_type="contact.merge",
            object_id=int(winner),
            merged_object_ids=[int(loser)],
        )
    )
    request = received[0]
    body = request.content
    secret = b"sandbox-client-secret"
    timestamp = request.headers["X-HubSpot-Request-Timestamp"]
    v3 = hmac.new(
        secret, b"POSThttps://example.com/hooks" + body + timestamp.encode(), hashlib.sha256
    )
    assert delivery.status == 204
    assert request.headers["X-HubSpot-Signature"] == hashlib.sha256(secret + body).hexdigest()
    assert request.headers["X-HubSpot-Signature-v3"] == base64.b64encode(v3.digest()).decode()
    assert [c.id for c in sandbox.contact_list()] == [winner]


async def test_privacy_deletion_sends_two_notifications(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    _, client = sandbox_client
    response = await client.post(
        "/_sandbox/webhooks",
        json={
            "url": "https://example.com/hooks",
            "subscriptionType": "contact.privacyDeletion",
            "objectId": 7,
            "send": False,
        },
    )
    body = response.json()["body"]
    assert '"contact.privacyDeletion"' in body
    assert '"contact.deletion"' in body


async def test_timeline_batch_reports_bad_inputs_in_207_and_keeps_ids_unique(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = sandbox_client
    good = {
        "eventTemplateId": "1001",
        "email": "a@example.com",
        "tokens": {"petName": "x"},
        "id": "e-1",
    }
    bad = {"eventTemplateId": "404", "email": "a@example.com", "tokens": {}}
    first = await client.post("/crm/v3/timeline/events/batch/create", json={"inputs": [good, bad]})
    again = await client.post("/crm/v3/timeline/events/batch/create", json={"inputs": [good]})
    assert (first.status_code, again.status_code) == (207, 201)
    assert first.json()["numErrors"] == 1
    assert len(sandbox.timeline_events()) == 1


async def test_sandbox_works_mounted_under_a_path_prefix() -> None:
    sandbox_app = create_sandbox_app(SandboxConfig(seed_definitions={"purchase": ("amount",)}))

    @asgi("/hubspot", is_mount=True, copy_scope=True)
    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        await sandbox_app(scope, receive, send)

    outer = Litestar([mounted])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://main") as client:
        response = await client.post(
            "/hubspot/events/v3/send",
            json=event(),
            headers={"Authorization": "Bearer pat-na1-sandbox-token"},
        )
        inspected = await client.get("/hubspot/_sandbox/events")
    assert response.status_code == 204
    assert len(inspected.json()["received"]["pe12345678_purchase"]) == 1
