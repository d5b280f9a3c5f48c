"""``POST /webhooks/hubspot``: signed HubSpot webhooks that keep the identity graph true.

Signatures follow docs/hubspot-contract.md, "Webhooks": v3 (``X-HubSpot-Signature-v3``: base64
HMAC-SHA256 of method + URI + body + timestamp, keyed by the app's client secret, rejected when the
timestamp is more than 5 minutes away), and v1/v2 (hex SHA-256 of secret + [method + URI +] body)
only when the portal allows them. A bad or stale signature gets 401 and changes nothing.

``contact.merge`` remaps contact ids in the graph; ``contact.deletion`` and
``contact.privacyDeletion`` erase that person (``forwarder.identity.graph.ContactChanges``).
Deliveries may repeat or arrive out of order: applying one twice changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response, post

from forwarder.clock import Clock
from forwarder.config import PortalSettings, Secret, Settings
from forwarder.identity.graph import ContactChanges
from forwarder.storage.roles import IdentityGraph
from forwarder.telemetry import get_logger

MAX_SKEW_MS = 300_000
_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


class Notification(msgspec.Struct, rename="camel"):
    """One webhook notification (only the fields we act on)."""

    subscription_type: str
    portal_id: int
    object_id: int | None = None
    primary_object_id: int | None = None
    merged_object_ids: list[int] = []
    new_object_id: int | None = None


_NOTIFICATIONS = msgspec.json.Decoder(list[Notification])


def signed_uri(uri: str) -> str:
    """The URI as HubSpot signs it: some percent-escapes decoded (not the query's ``?``)."""
    for escaped, char in _DECODE.items():
        uri = uri.replace(escaped, char).replace(escaped.lower(), char)
    return uri


def _secret(portal: PortalSettings) -> Secret | None:
    return portal.client_secret or portal.webhook_secret


def verify(
    headers: Mapping[str, str],
    method: str,
    uri: str,
    body: bytes,
    secret: str,
    *,
    versions: tuple[str, ...],
    now_ms: int,
) -> str | None:
    """None when the request is authentic, else why it is not."""
    v3 = headers.get("x-hubspot-signature-v3")
    if v3 is not None and "v3" in versions:
        stamp = headers.get("x-hubspot-request-timestamp", "")
        if not stamp.isdigit() or abs(now_ms - int(stamp)) > MAX_SKEW_MS:
            return "stale or missing X-HubSpot-Request-Timestamp"
        message = method.encode() + signed_uri(uri).encode() + body + stamp.encode()
        digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
        expected = base64.b64encode(digest).decode()
        return None if hmac.compare_digest(expected, v3) else "bad v3 signature"
    legacy = headers.get("x-hubspot-signature")
    version = headers.get("x-hubspot-signature-version", "v1")
    if legacy is not None and version in versions and version in ("v1", "v2"):
        source = secret.encode() + (method.encode() + uri.encode() if version == "v2" else b"")
        expected = hashlib.sha256(source + body).hexdigest()
        return None if hmac.compare_digest(expected, legacy) else f"bad {version} signature"
    return "no accepted signature header"


class WebhookReceiver:
    """Portals by HubSpot id, with their signing secrets, decided once."""

    def __init__(self, settings: Settings, storage: IdentityGraph, clock: Clock) -> None:
        self._clock = clock
        self._portals = {p.portal_id: (name, p) for name, p in settings.portals.items()}
        self._contacts = ContactChanges(storage)
        self._log = get_logger("webhooks")

    async def handle(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await request.body()
        try:
            notifications = _NOTIFICATIONS.decode(body)
        except msgspec.DecodeError as exc:
            return _answer(400, f"body is not a list of HubSpot notifications: {exc}")
        portal_ids = {n.portal_id for n in notifications}
        if len(portal_ids) != 1 or next(iter(portal_ids)) not in self._portals:
            return _answer(401, "unknown portal")
        name, portal = self._portals[next(iter(portal_ids))]
        secret = _secret(portal)
        if secret is None:
            return _answer(401, "no client_secret or webhook_secret configured for this portal")
        uri = portal.webhook_url or str(request.url)
        problem = verify(
            request.headers,
            request.method,
            uri,
            body,
            secret.reveal(),
            versions=portal.webhook_versions,
            now_ms=int(self._clock.now() * 1000),
        )
        if problem is not None:
            self._log.warning("webhook_refused", portal=name, reason=problem)
            return _answer(401, problem)
        for notification in notifications:
            await self._apply(name, notification)
        return Response(b"", status_code=204)

    async def _apply(self, portal: str, n: Notification) -> None:
        if n.subscription_type == "contact.merge":
            await self._contacts.merged(
                portal,
                primary=n.primary_object_id,
                merged=n.merged_object_ids,
                new=n.new_object_id,
                now=self._clock.now(),
            )
        elif n.subscription_type in ("contact.deletion", "contact.privacyDeletion"):
            await self._contacts.deleted(portal, n.object_id, now=self._clock.now())


def _answer(status: int, reason: str) -> Response[bytes]:
    return Response(
        msgspec.json.encode({"success": False, "error": reason}),
        status_code=status,
        media_type="application/json",
    )


@post("/webhooks/hubspot", status_code=200, tags=["webhooks"])
async def hubspot_webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
    """HubSpot webhooks (contact merge, deletion, privacy deletion), signature-verified."""
    receiver: WebhookReceiver = request.app.state.webhooks
    return await receiver.handle(request)
