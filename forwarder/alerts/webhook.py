"""Alert messages as Slack-compatible JSON, delivered with retries from their own task.

The body is ``{"text": ..., "attachments": [{"color", "title", "fields": [...]}], "alert":
{...}}``: Slack and Teams workflows show ``text`` (and Slack the attachment's fields); any other
receiver reads the structured ``alert`` object. Every configured secret is scrubbed from the
encoded body before it leaves, whatever a HubSpot message or a field carried.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import msgspec

from forwarder.alerts.rules import Condition
from forwarder.config import AlertSettings
from forwarder.telemetry import get_logger

Status = Literal["firing", "resolved", "test"]
QUEUE_MAX = 1000
"""Messages waiting for a slow receiver; beyond it the oldest go (alerts must never pile up)."""
MAX_BACKOFF_S = 60.0
_COLOURS = {"firing": "#d1242f", "resolved": "#1a7f37", "test": "#0969da"}
_ICONS = {"firing": ":rotating_light:", "resolved": ":white_check_mark:", "test": ":bell:"}
_encode = msgspec.json.Encoder().encode


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def payload(
    status: Status, condition: Condition, *, at: float, since: float | None = None
) -> dict[str, Any]:
    """The JSON body of one alert message."""
    word = {"firing": "FIRING", "resolved": "RESOLVED", "test": "TEST"}[status]
    summary = "No longer true." if status == "resolved" else condition.summary
    text = f"{_ICONS[status]} [hubspot-forwarder] {word}: {condition.title}. {summary}"
    fields = [{"title": k, "value": v, "short": len(v) < 40} for k, v in condition.fields.items()]
    return {
        "text": text,
        "attachments": [{"color": _COLOURS[status], "title": condition.title, "fields": fields}],
        "alert": {
            "status": status,
            "rule": condition.rule,
            "key": condition.key,
            "severity": condition.severity,
            "title": condition.title,
            "summary": condition.summary,
            "fields": condition.fields,
            "at": _iso(at),
            "since": _iso(since) if since is not None else None,
            "host": socket.gethostname(),
        },
    }


def scrubbed(body: dict[str, Any], secrets: list[str]) -> bytes:
    """The encoded body with every secret value replaced by ``***``."""
    text = _encode(body).decode()
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text.encode()


class WebhookSender:
    """One receiver: ``submit`` queues (never waits); ``run`` delivers, retrying failures."""

    def __init__(
        self,
        settings: AlertSettings,
        secrets: list[str],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_s: float = 1.0,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._secrets = secrets
        self._backoff_s = backoff_s
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MAX)
        self._http = httpx.AsyncClient(transport=transport, timeout=settings.timeout_s)
        self._log = get_logger("alerts").bind(receiver=settings.name)

    def submit(self, body: dict[str, Any]) -> None:
        """Queue one message; a full queue loses its oldest message, never blocks."""
        if self._queue.full():
            self._queue.get_nowait()
            self._log.warning("alert_dropped", reason="queue full")
        self._queue.put_nowait(scrubbed(body, self._secrets))

    async def run(self) -> None:
        """Deliver queued messages in order, forever (cancelled at shutdown)."""
        while True:
            body = await self._queue.get()
            try:
                await self.deliver(body)
            except Exception:  # a long-lived loop: log and carry on
                self._log.exception("alert_delivery_failed")

    async def deliver(self, body: bytes) -> bool:
        """POST one message, retrying transport errors, 429 and 5xx with backoff."""
        url = self._settings.webhook_url.reveal()
        delay = self._backoff_s
        for attempt in range(1 + self._settings.retries):
            try:
                response = await self._http.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__  # never str(exc): it may carry the URL
            else:
                if response.is_success:
                    self._log.info("alert_sent", attempt=attempt + 1)
                    return True
                outcome = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    self._log.error("alert_refused", status=response.status_code)
                    return False
            if attempt < self._settings.retries:
                self._log.warning("alert_retry_scheduled", outcome=outcome, after_s=delay)
                await asyncio.sleep(delay)
                delay = min(MAX_BACKOFF_S, delay * 2)
        self._log.error("alert_given_up", attempts=1 + self._settings.retries)
        return False

    async def aclose(self) -> None:
        await self._http.aclose()
