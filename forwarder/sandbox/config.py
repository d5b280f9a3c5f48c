"""``SandboxConfig``: what the simulated HubSpot account looks like and how strict it is.

Tier numbers come from ../shared/hubspot-api.md §4.1: burst limit per app per rolling 10 s
(free/starter 100, professional/enterprise 190, OAuth apps 110 per installing account) and a daily
limit per account (250,000 / 625,000 / 1,000,000; none for OAuth apps).
"""

from __future__ import annotations

from typing import Literal

import msgspec

DEFAULT_TOKEN = "pat-na1-sandbox-token"  # noqa: S105 - a fake token for a fake HubSpot

SCOPE_EVENTS_SEND = "analytics.behavioral_events.send"
SCOPE_DEFINITIONS = "behavioral_events.event_definitions.read_write"
SCOPE_CONTACTS_READ = "crm.objects.contacts.read"
SCOPE_CONTACTS_WRITE = "crm.objects.contacts.write"
SCOPE_TIMELINE = "timeline"
SCOPE_FORMS = "forms"
ALL_SCOPES: tuple[str, ...] = (
    SCOPE_EVENTS_SEND,
    SCOPE_DEFINITIONS,
    SCOPE_CONTACTS_READ,
    SCOPE_CONTACTS_WRITE,
    SCOPE_TIMELINE,
    SCOPE_FORMS,
)

Tier = Literal["free", "starter", "professional", "enterprise", "oauth"]
TIER_LIMIT_10S: dict[str, int] = {
    "free": 100,
    "starter": 100,
    "professional": 190,
    "enterprise": 190,
    "oauth": 110,
}
TIER_DAILY: dict[str, int | None] = {
    "free": 250_000,
    "starter": 250_000,
    "professional": 625_000,
    "enterprise": 1_000_000,
    "oauth": None,
}
WINDOW_S = 10.0
DAY_S = 86_400.0
ACCESS_TOKEN_LIFETIME_S = 1800.0


def _default_tokens() -> dict[str, tuple[str, ...]]:
    return {DEFAULT_TOKEN: ALL_SCOPES}


class SandboxConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The simulated account. Every field has a default: ``SandboxConfig()`` is a usable portal."""

    portal_id: int = 12345678
    """The HubID: event names are ``pe{portal_id}_{name}``."""
    app_id: int = 1160452
    """The app id put in webhook payloads and 429 ``groupName``s."""
    tier: Tier = "professional"
    """Account tier; picks the default limits. ``oauth`` = a publicly distributed OAuth app."""
    limit_10s: int | None = None
    """Requests per app per rolling 10 s window; None = from ``tier`` (250 = API limit increase)."""
    window_ms: int = 10_000
    """Length of that rolling window, declared in ``X-HubSpot-RateLimit-Interval-Milliseconds``
    (HubSpot declares 10000; another value tests a client that must follow the header)."""
    daily: int | None = None
    """Requests per account per day; None = from ``tier``. Ignored for the ``oauth`` tier."""
    search_rps: int = 5
    """Search requests per second per account (no rate headers, ``SECONDLY`` 429)."""
    events_rps: int = 1250
    """Custom event sends per second (exempt from the daily and 10-second limits)."""
    time_scale: float = 1.0
    """Divides every window and token lifetime: 100 makes the 10 s window 0.1 s."""
    tokens: dict[str, tuple[str, ...]] = msgspec.field(default_factory=_default_tokens)
    """Private-app bearer tokens -> granted scopes. Each token is its own app (own 10 s window)."""
    client_id: str = "sandbox-client-id"
    """OAuth client id accepted by ``POST /oauth/v1/token``."""
    client_secret: str = "sandbox-client-secret"  # noqa: S105 - fake, sandbox only
    """OAuth client secret; also the key that signs webhooks."""
    refresh_token: str = "sandbox-refresh-token"  # noqa: S105 - fake, sandbox only
    """The one valid refresh token."""
    oauth_scopes: tuple[str, ...] = ALL_SCOPES
    """Scopes granted to access tokens minted by ``POST /oauth/v1/token``."""
    batch_with_bad_input: Literal["reject_all", "accept_valid"] = "reject_all"
    """UNCONFIRMED in the reference. ``reject_all``: one bad input fails the whole custom event
    batch with 400 and nothing is stored. ``accept_valid``: 204, valid inputs stored."""
    duplicate_uuid: Literal["reject", "drop"] = "drop"
    """UNCONFIRMED. ``drop`` (default, as the reference advises a simulator to do): 204, the
    repeat silently dropped, so a sender's retry with the same ``uuid`` is idempotent.
    ``reject``: a repeated ``uuid`` for the same event type is a 400 ``VALIDATION_ERROR``."""
    retry_after_s: float | None = None
    """Send ``Retry-After`` with this many seconds on every 429 (HubSpot does not document it)."""
    seed_definitions: dict[str, tuple[str, ...]] | None = None
    """Event definitions present at start: short name -> string property names."""
    seed_templates: dict[str, tuple[str, ...]] | None = None
    """Timeline event templates present at start: template id -> token names."""
    contact_properties: tuple[str, ...] = ()
    """Writable contact properties on top of the built-in ones."""
    unique_contact_properties: tuple[str, ...] = ()
    """Custom unique contact properties usable as ``idProperty``."""
    required_contact_properties: tuple[str, ...] = ()
    """Properties the account's "Create Record" rules require: on 2026-09 and later a write
    that would create a contact without them is refused (400 ``MISSING_REQUIRED_PROPERTY``)."""
    unsupported_versions: tuple[str, ...] = ()
    """API versions played as past their sunset (e.g. ``("v3",)``): every call on them is
    refused with 410 (HubSpot documents no answer; the strict reading)."""
    service_keys: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    """Service keys -> granted scopes. A key is sent like a private-app token and has the same
    limits (its own 10 s window as its own app); it can sign no webhooks."""

    def window_limit(self) -> int:
        """The effective 10-second limit."""
        return self.limit_10s if self.limit_10s is not None else TIER_LIMIT_10S[self.tier]

    def daily_limit(self) -> int | None:
        """The effective daily limit; None when the tier has none (OAuth)."""
        if self.tier == "oauth":
            return None
        return self.daily if self.daily is not None else TIER_DAILY[self.tier]
