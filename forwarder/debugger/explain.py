"""Where a delivery item stands, in the plain words a marketer reads in the debugger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from forwarder.events.destinations import DestinationName
from forwarder.storage.base import ItemRecord

_CONSENT_CATEGORIES = ("analytics", "marketing", "advertising")


def hubspot_reason(detail: str | None) -> tuple[str, str | None, str | None]:
    """(message, correlationId, category) from a dead letter's detail (JSON or plain text)."""
    if not detail:
        return "no reason recorded", None, None
    if detail.startswith("{"):
        try:
            parsed: dict[str, Any] = msgspec.json.decode(detail)
        except msgspec.DecodeError:
            return detail, None, None
        return (
            str(parsed.get("reason") or detail),
            parsed.get("correlationId"),
            parsed.get("category"),
        )
    return detail, None, None


def consent_declined(data: dict[str, Any]) -> bool:
    """The event says the visitor declined analytics or marketing consent."""
    context = data.get("context")
    consent = context.get("consent") if isinstance(context, dict) else None
    prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(prefs, dict):
        return False
    return any(prefs.get(c) is False for c in _CONSENT_CATEGORIES)


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def explain(  # noqa: C901 - one case per item state, each a sentence: read as a table
    item: ItemRecord, data: dict[str, Any], identity_kind: str | None
) -> tuple[bool, str]:
    """(attributed, reason) for one item; ``identity_kind`` is the identifier it would use now."""
    state, detail = item.state, item.detail
    if state != "delivered" and consent_declined(data):
        return False, "consent absent: the visitor declined analytics consent (context.consent)"
    match state:
        case "delivered":
            how = f" ({detail})" if detail and detail != "replayed" else ""
            return True, f"delivered to HubSpot{how}"
        case "held":
            return False, (
                "held awaiting identify: no email, utk or contact id is known for this person "
                f"yet; it goes out as soon as an identify links them (waits until "
                f"{_day(item.available_at)})"
            )
        case "pending" | "leased":
            if detail and detail != "replayed":
                return False, f"still queued: HubSpot will be tried again ({detail})"
            if identity_kind is None and item.destination == DestinationName.CONVERSIONS:
                return False, (
                    "no identity yet: nothing links this visitor to a contact; it will wait "
                    "for an identify"
                )
            return False, "still queued: waiting for the next batch"
        case "dead":
            message, correlation, category = hubspot_reason(detail)
            cid = f" (correlationId {correlation})" if correlation else ""
            if category == "EVENT_DEFINITION_NOT_FOUND" or "definition" in message.lower():
                return False, f"definition missing: HubSpot has no such event — {message}{cid}"
            return False, f"rejected by HubSpot: {message}{cid}"
        case "dropped":
            if detail in ("erased on request", "purged by operator"):
                return False, detail
            return False, f"dropped by policy: {detail or 'no reason recorded'}"
        case "expired":
            if detail == "expired-unidentified":
                return False, "expired: no identify linked this visitor before the hold ran out"
            return False, f"expired: HubSpot did not take it before its maximum age ({detail})"
    return False, state
