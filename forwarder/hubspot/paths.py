"""HubSpot's API versions and the one table of paths the client calls for each.

Since 2026-03-30 HubSpot versions its REST APIs by date in the path; the numbered paths
(``/events/v3/...``, ``/crm/v3/...``) become unsupported in September 2027. Every path the
forwarder calls is in ``PATHS``; nothing else in the package spells one out. Paths were read
from HubSpot's OpenAPI spec collection (``PublicApiSpecs/...`` per API and version).

Two differences that are more than a path:

* the dated timeline batch (``/integrators/timeline/2026-03/events/batch``) takes app event
  occurrences (``eventTypeName`` + ``properties``), answers 200 and is all-or-nothing: 400 or
  409 means none of the batch was accepted. The spec collection has no 2026-09 timeline API,
  so 2026-09 portals use the 2026-03 one (the newest HubSpot publishes).
* 2026-09 CRM writes are checked against the account's validation rules (conditionally
  required properties, properties required on record creation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from forwarder.config import ApiVersion

DEFAULT_API_VERSION: ApiVersion = "2026-03"
API_VERSIONS: tuple[str, ...] = get_args(ApiVersion)


@dataclass(frozen=True, slots=True)
class ApiPaths:
    """Every path the forwarder calls on one API version."""

    version: str
    events_send_batch: str
    event_definitions: str
    contacts_batch_read: str
    contacts_batch_create: str
    contacts_batch_update: str
    contacts_batch_upsert: str
    contacts_search: str
    contact_properties: str
    timeline_batch: str
    dated_timeline: bool
    """The timeline batch takes app event occurrences and is all-or-nothing."""
    crm_validation_rules: bool
    """CRM writes are checked against the account's property validation rules."""

    def event_definition(self, event_name: str) -> str:
        """One event definition."""
        return f"{self.event_definitions}/{event_name}"

    def event_property(self, event_name: str) -> str:
        """Where a property is added to an event definition."""
        return f"{self.event_definitions}/{event_name}/property"


def _dated(version: str, events: str, *, validation_rules: bool) -> ApiPaths:
    contacts = f"/crm/objects/{version}/contacts"
    return ApiPaths(
        version=version,
        events_send_batch=f"{events}/send/batch",
        event_definitions=f"{events}/event-definitions",
        contacts_batch_read=f"{contacts}/batch/read",
        contacts_batch_create=f"{contacts}/batch/create",
        contacts_batch_update=f"{contacts}/batch/update",
        contacts_batch_upsert=f"{contacts}/batch/upsert",
        contacts_search=f"{contacts}/search",
        contact_properties=f"/crm/properties/{version}/contacts",
        timeline_batch="/integrators/timeline/2026-03/events/batch",
        dated_timeline=True,
        crm_validation_rules=validation_rules,
    )


PATHS: dict[str, ApiPaths] = {
    "v3": ApiPaths(
        version="v3",
        events_send_batch="/events/v3/send/batch",
        event_definitions="/events/v3/event-definitions",
        contacts_batch_read="/crm/v3/objects/contacts/batch/read",
        contacts_batch_create="/crm/v3/objects/contacts/batch/create",
        contacts_batch_update="/crm/v3/objects/contacts/batch/update",
        contacts_batch_upsert="/crm/v3/objects/contacts/batch/upsert",
        contacts_search="/crm/v3/objects/contacts/search",
        contact_properties="/crm/v3/properties/contacts",
        timeline_batch="/integrators/timeline/v3/events/batch/create",
        dated_timeline=False,
        crm_validation_rules=False,
    ),
    # 2026-03 kept the events API under /events/{version}; 2026-09 moved it to /events/custom/.
    "2026-03": _dated("2026-03", "/events/2026-03", validation_rules=False),
    "2026-09": _dated("2026-09", "/events/custom/2026-09", validation_rules=True),
}

FORMS_SUBMIT = "/submissions/v3/integration/secure/submit"
"""The Forms API lives on api.hsforms.com and has no dated version yet."""
OAUTH_TOKEN = "/oauth/v1/token"  # noqa: S105 - a URL path, not a secret
"""OAuth stays where HubSpot keeps it (the v1 token endpoint; deprecated February 2027)."""


def paths_for(version: str) -> ApiPaths:
    """The path table of a configured version (config validation rejects unknown ones)."""
    return PATHS[version]
