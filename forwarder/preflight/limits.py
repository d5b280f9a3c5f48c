"""The checks that need no request: the credential's kind, the API version, the envelopes.

Tier numbers are the delivery envelopes' own (docs/hubspot-contract.md, "Rate limits"). The API
limit increase raises the 10-second limit to 250 and adds up to two times 1,000,000 a day; anything
above that is a 429 HubSpot would answer, not a choice the forwarder can make.
"""

from __future__ import annotations

from forwarder.config import PortalSettings
from forwarder.delivery.envelopes import TIERS
from forwarder.preflight.items import Item, Verdict

LIMIT_INCREASE_10S = 250
LIMIT_INCREASE_DAILY = 2_000_000
SEARCH_PER_S = 5
EVENTS_PER_S = 1250


def credential_kind(portal: PortalSettings) -> str:
    """How this portal authenticates, in the words of HubSpot's settings pages."""
    if portal.refresh_token is not None:
        return "OAuth app"
    if portal.service_key is not None:
        return "service key"
    if portal.access_token is not None:
        return "private app token"
    return "sandbox token"


def version_item(name: str, portal: PortalSettings) -> Item:
    """The configured API version, with the legacy warning for ``v3``."""
    if portal.api_version == "v3":
        return Item(
            name,
            "API version v3",
            Verdict.NOTE,
            'legacy numbered paths, unsupported from September 2027: set api_version = "2026-03"',
        )
    return Item(name, f"API version {portal.api_version}", Verdict.OK, "date-based")


def envelope_items(name: str, portal: PortalSettings) -> list[Item]:
    """Each explicit ``[portals.NAME.limits]`` override against what the tier allows."""
    items: list[Item] = []
    limits, tier = portal.limits, TIERS[portal.tier]
    if portal.service_key is not None and portal.tier == "oauth":
        items.append(
            Item(
                name,
                "tier",
                Verdict.MISSING,
                "service keys have a private app's limits: set tier to the account's tier",
            )
        )
    checks = [
        ("crm_per_10s", limits.crm_per_10s, tier.crm_per_10s, LIMIT_INCREASE_10S),
        ("crm_daily", limits.crm_daily, tier.crm_daily, _daily_cap(tier.crm_daily)),
        ("search_per_s", limits.search_per_s, SEARCH_PER_S, SEARCH_PER_S),
        ("events_per_s", limits.events_per_s, EVENTS_PER_S, EVENTS_PER_S),
    ]
    for key, value, allowed, ceiling in checks:
        items.extend(_envelope(name, key, value, allowed, ceiling))
    if not items:
        items.append(Item(name, "envelopes", Verdict.OK, f"within the {portal.tier} tier"))
    return items


def _daily_cap(daily: int | None) -> int | None:
    return None if daily is None else daily + LIMIT_INCREASE_DAILY


def _envelope(
    name: str, key: str, value: int | None, allowed: int | None, ceiling: int | None
) -> list[Item]:
    if value is None or allowed is None or value <= allowed:
        return []
    what = f"limits.{key}"
    if ceiling is not None and value <= ceiling:
        detail = f"{value} is above the tier's {allowed}: only with HubSpot's API limit increase"
        return [Item(name, what, Verdict.NOTE, detail)]
    detail = f"{value} is above what HubSpot allows ({ceiling or allowed}): lower it"
    return [Item(name, what, Verdict.MISSING, detail)]
