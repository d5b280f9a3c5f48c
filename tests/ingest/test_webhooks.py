"""HubSpot webhooks: signatures checked (v3), merges remap the graph, deletions erase."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from forwarder.config import PortalSettings, Secret
from forwarder.sandbox.webhooks import WebhookRequest, build, notifications, sign_v3
from tests.delivery.harness import Forwarder, running
from tests.support import ServerProcess, config_toml, free_port

SECRET = "app-client-secret-123"
URL = "http://testserver.local/webhooks/hubspot"
PORTAL = PortalSettings(portal_id=123456, client_secret=Secret(SECRET), unmapped_events="auto")


def signed(kind: str, secret: str = SECRET, **fields: Any) -> tuple[bytes, dict[str, str]]:
    request = WebhookRequest(url=URL, subscription_type=kind, **fields)  # type: ignore[arg-type]
    delivery = build(URL, notifications(request, 123456, 1160452), secret)
    return delivery.body.encode(), delivery.headers


async def post(fw: Forwarder, body: bytes, headers: dict[str, str]) -> int:
    response = await fw.client.post("/webhooks/hubspot", content=body, headers=headers)
    return response.status_code


async def test_valid_merge_remaps_the_contact_id(tmp_path: Path) -> None:
    async with running(tmp_path, PORTAL) as fw:
        await fw.storage.link("main", [("contactId", "11"), ("email", "a@x.io")], now=1.0)
        body, headers = signed("contact.merge", object_id=22, merged_object_ids=[11])
        assert await post(fw, body, headers) == 204
        assert await post(fw, body, headers) == 204  # a repeat changes nothing
        [person] = (await fw.storage.people_of("main", [("email", "a@x.io")])).values()
        assert ("contactId", "22") in person
        assert ("contactId", "11") not in person


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "unsigned"])
async def test_tampered_wrong_or_stale_signatures_are_refused_and_change_nothing(
    tmp_path: Path, tamper: str
) -> None:
    async with running(tmp_path, PORTAL) as fw:
        await fw.storage.link("main", [("contactId", "11"), ("email", "a@x.io")], now=1.0)
        body, headers = signed(
            "contact.deletion",
            secret="wrong-secret" if tamper == "secret" else SECRET,
            object_id=11,
        )
        if tamper == "body":
            body = body.replace(b'"objectId":11', b'"objectId":12')
        if tamper == "stale":  # correctly signed, six minutes old
            stale = int(time.time() * 1000) - 6 * 60 * 1000
            headers["X-HubSpot-Request-Timestamp"] = str(stale)
            headers["X-HubSpot-Signature-v3"] = sign_v3(SECRET, "POST", URL, body, stale)
        if tamper == "unsigned":
            headers = {"Content-Type": "application/json"}
        assert await post(fw, body, headers) == 401
        assert await fw.storage.people_of("main", [("email", "a@x.io")]) != {}


async def test_deletion_and_privacy_deletion_erase_the_person(tmp_path: Path) -> None:
    async with running(tmp_path, PORTAL) as fw:
        await fw.storage.link("main", [("contactId", "11"), ("userId", "u-11")], now=1.0)
        await fw.send([{"type": "track", "userId": "u-11", "event": "Paid", "messageId": "p1"}])
        body, headers = signed("contact.privacyDeletion", object_id=11)
        assert await post(fw, body, headers) == 204
        assert await post(fw, body, headers) == 204
        assert await fw.storage.people_of("main", [("userId", "u-11")]) == {}
        [event] = await fw.storage.recent_events()
        assert b"u-11" not in event.payload


def test_sandbox_webhook_reaches_a_real_forwarder(tmp_path: Path) -> None:
    """The sandbox signs and sends over real HTTP; the forwarder verifies and answers 204."""
    port = free_port()
    config = config_toml(tmp_path / "f.db", port).replace(
        'base_url = "sandbox"', f'base_url = "sandbox"\nclient_secret = "{SECRET}"'
    )
    server = ServerProcess(tmp_path, config).start(port)
    try:
        answer = httpx.post(
            f"{server.url}/sandbox/_sandbox/webhooks",
            json={
                "url": f"{server.url}/webhooks/hubspot",
                "subscriptionType": "contact.merge",
                "objectId": 5,
                "mergedObjectIds": [4],
            },
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == 204
    finally:
        server.stop()
