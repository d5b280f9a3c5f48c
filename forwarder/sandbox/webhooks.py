"""Signed webhook deliveries: contact merge, deletion and privacy deletion.

The signatures are in docs/hubspot-contract.md, "Webhooks".

Every delivery carries the v1 signature (``X-HubSpot-Signature``, ``X-HubSpot-Signature-Version:
v1``: hex SHA-256 of secret + body) and the v3 one (``X-HubSpot-Signature-v3``: base64
HMAC-SHA256 of method + uri + body + timestamp, ``X-HubSpot-Request-Timestamp`` in ms).
A captured delivery shows ``Signature-Version: v3`` next to both; we send ``v1`` because the
``X-HubSpot-Signature`` value *is* the v1 hash (reference ambiguity, reported).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
from typing import Any, Literal

import httpx
import msgspec

WebhookKind = Literal["contact.merge", "contact.deletion", "contact.privacyDeletion"]
USER_AGENT = (
    "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nio-http-client)"
    " - WebhooksExecutorDaemon-executor"
)
_event_ids = itertools.count(3816279340)


class WebhookRequest(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """The body of ``POST /_sandbox/webhooks``."""

    url: str
    subscription_type: WebhookKind
    object_id: int
    merged_object_ids: list[int] = msgspec.field(default_factory=list)
    new_object_id: int | None = None
    number_of_properties_moved: int = 0
    attempt_number: int = 0
    send: bool = True
    """False: only build and return the signed request."""


class Delivery(msgspec.Struct, rename="camel"):
    """A signed POST: what was (or would be) sent, and the receiver's status."""

    url: str
    headers: dict[str, str]
    body: str
    status: int | None = None


def sign_v1(secret: str, body: bytes) -> str:
    return hashlib.sha256(secret.encode() + body).hexdigest()


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    message = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def notifications(request: WebhookRequest, portal_id: int, app_id: int) -> list[dict[str, Any]]:
    """The JSON array: one notification, two for a privacy deletion (it also deletes)."""
    base = {
        "objectId": request.object_id,
        "changeSource": "CRM",
        "subscriptionId": 25,
        "portalId": portal_id,
        "appId": app_id,
        "occurredAt": int(time.time() * 1000),
        "attemptNumber": request.attempt_number,
    }
    kinds: list[str] = [request.subscription_type]
    if request.subscription_type == "contact.privacyDeletion":
        kinds.append("contact.deletion")
    out = []
    for kind in kinds:
        item = {**base, "eventId": next(_event_ids), "subscriptionType": kind}
        if kind == "contact.merge":
            item["primaryObjectId"] = request.object_id
            item["mergedObjectIds"] = request.merged_object_ids
            item["newObjectId"] = request.new_object_id or request.object_id
            item["numberOfPropertiesMoved"] = request.number_of_properties_moved
        out.append(item)
    return out


def build(url: str, payload: list[dict[str, Any]], client_secret: str) -> Delivery:
    """Sign a delivery with v1 and v3 signatures."""
    body = msgspec.json.encode(payload)
    timestamp_ms = int(time.time() * 1000)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-HubSpot-Signature": sign_v1(client_secret, body),
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature-v3": sign_v3(client_secret, "POST", url, body, timestamp_ms),
        "X-HubSpot-Request-Timestamp": str(timestamp_ms),
        "X-HubSpot-Timeout-Millis": "10000",
    }
    return Delivery(url=url, headers=headers, body=body.decode())


async def send(delivery: Delivery, transport: httpx.AsyncBaseTransport | None) -> Delivery:
    """POST the delivery (5 s timeout, as HubSpot's); the receiver's status is recorded."""
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
        response = await client.post(
            delivery.url, content=delivery.body.encode(), headers=delivery.headers
        )
    delivery.status = response.status_code
    return delivery
