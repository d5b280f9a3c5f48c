"""API versions in request paths: which one a request used, and which the sandbox refuses.

HubSpot serves numbered (``/crm/v3/...``) and date-based (``/crm/objects/2026-03/...``) paths
side by side (reference, versioning note). Started with ``unsupported_versions`` the sandbox
plays HubSpot after a sunset: requests on those versions are refused. HubSpot's versioning page
says only that unsupported versions get no fixes and "may still work"; it documents no answer
for them, so the refusal here is the strict reading: 410 ``UNSUPPORTED_API_VERSION``
(UNCONFIRMED status and category).
"""

from __future__ import annotations

import re

from forwarder.sandbox.responses import ApiError

_VERSION = re.compile(r"^(v\d+|\d{4}-\d{2})$")
RULES_FROM = "2026-09"
"""First version whose CRM writes obey the account's validation rules (HubSpot changelog
"CRM API write validation enforcement", September 2026)."""


def version_of(path: str) -> str | None:
    """The first version segment of a path (``v3``, ``2026-03``), or None."""
    for segment in path.split("/"):
        if _VERSION.match(segment):
            return segment
    return None


def is_dated(version: str | None) -> bool:
    """True for a date-based version (``YYYY-MM``)."""
    return version is not None and not version.startswith("v")


def enforces_validation_rules(version: str | None) -> bool:
    """True when CRM writes on this version are checked against the account's rules."""
    return version is not None and is_dated(version) and version >= RULES_FROM


def unsupported(version: str) -> ApiError:
    """What a request on an unsupported version gets."""
    return ApiError(
        410,
        "UNSUPPORTED_API_VERSION",
        f"API version {version} is unsupported. Use a date-based version (e.g. /2026-03/); "
        "see https://developers.hubspot.com/docs/api-reference/legacy/migration-guide",
    )
