"""Where a delivery item stands, in the plain words a marketer reads in the debugger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from forwarder.events.destinations import DestinationName
from forwarder.storage.base import ItemRecord
from forwarder.storage.outcomes import Outcome, Reason, describe

_CONSENT_CATEGORIES = ("analytics", "marketing", "advertising")


def hubspot_reason(outcome: Outcome | None) -> tuple[str, str | None, str | None]:
    """(message, correlationId, category) of a dead letter's outcome."""
    if outcome is None or not outcome.message:
        category = outcome.category if outcome else None
        return "no reason recorded", outcome.correlation_id if outcome else None, category
    return outcome.message, outcome.correlation_id, outcome.category


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


def explain(item: ItemRecord, data: dict[str, Any], identity_kind: str | None) -> tuple[bool, str]:
    """(attributed, reason) for one item; ``identity_kind`` is the identifier it would use now."""
    state, outcome = item.state, item.outcome
    reason = outcome.reason if outcome else None
    said = describe(outcome)
    if state != "delivered" and consent_declined(data):
        return False, "consent absent: the visitor declined analytics consent (context.consent)"
    match state:
        case "delivered":
            how = f" ({said})" if said and reason is not Reason.REPLAYED else ""
            return True, f"delivered to HubSpot{how}"
        case "held":
            return False, (
                "held awaiting identify: no email, utk or contact id is known for this person "
                f"yet; it goes out as soon as an identify links them (waits until "
                f"{_day(item.available_at)})"
            )
        case "pending" | "leased":
            return False, _queued(
                item, said if reason is not Reason.REPLAYED else None, identity_kind
            )
        case "dead":
            return False, _rejected(outcome)
        case "dropped":
            if reason in (Reason.ERASED, Reason.PURGED):
                return False, said or ""
            return False, f"dropped by policy: {said or 'no reason recorded'}"
        case "expired":
            if reason is Reason.UNIDENTIFIED:
                return False, "expired: no identify linked this visitor before the hold ran out"
            return False, f"expired: HubSpot did not take it before its maximum age ({said})"
    return False, state


def _queued(item: ItemRecord, said: str | None, identity_kind: str | None) -> str:
    if said:
        return f"still queued: HubSpot will be tried again ({said})"
    if identity_kind is None and item.destination == DestinationName.CONVERSIONS:
        return (
            "no identity yet: nothing links this visitor to a contact; it will wait for an identify"
        )
    return "still queued: waiting for the next batch"


def _rejected(outcome: Outcome | None) -> str:
    message, correlation, category = hubspot_reason(outcome)
    cid = f" (correlationId {correlation})" if correlation else ""
    if category == "EVENT_DEFINITION_NOT_FOUND" or "definition" in message.lower():
        return f"definition missing: HubSpot has no such event — {message}{cid}"
    return f"rejected by HubSpot: {message}{cid}"
