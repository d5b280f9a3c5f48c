"""What Segment's and RudderStack's client libraries ask of their host beside events.

analytics.js (``@segment/analytics-next``) posts its own counters to ``{apiHost}/m`` and
RudderStack's browser SDK posts error reports to ``{dataPlaneUrl}/rsaMetrics``: both are
answered ``200`` and dropped, never stored as events. RudderStack's SDK also reads its source
from ``{configUrl}/sourceConfig/`` before sending anything, and Segment's libraries read their
settings from ``{cdn}/v1/projects/{writeKey}/settings``; pointed at the forwarder, both answers
are built from the forwarder's own source (no destinations: the forwarder is the one).
"""

from __future__ import annotations

from typing import Any

import msgspec

from forwarder.config import SourceSettings

METRICS_PATHS = frozenset({"/v1/m", "/rsaMetrics"})
"""Where the libraries post their own telemetry (answered, discarded)."""
SOURCE_CONFIG_PATHS = frozenset({"/sourceConfig", "/sourceConfig/"})
"""RudderStack's ``configUrl`` path (its SDK appends ``/sourceConfig/``)."""
ACCEPTED_METRICS = b'{"success":true}'
SETTINGS_PREFIX, SETTINGS_SUFFIX = "/v1/projects/", "/settings"
"""Segment's settings path around the write key."""
SETTINGS_CACHE = "private, max-age=300"
"""Sources change only with the forwarder's config; a page may reuse the answer a while."""

_encode = msgspec.json.Encoder().encode


def source_config(source: SourceSettings) -> bytes:
    """RudderStack's source configuration for ``source``: enabled, nothing to load.

    The SDK checks ``source.id``, ``source.config`` and ``source.destinations``; its error
    and metrics reporting stay off, so it never posts to RudderStack's own services.
    """
    off = {"enabled": False}
    body: dict[str, Any] = {
        "isHosted": False,
        "source": {
            "id": source.name,
            "name": source.name,
            "enabled": True,
            "workspaceId": "hubspot-forwarder",
            "config": {"statsCollection": {"errors": off, "metrics": off}},
            "destinations": [],
        },
    }
    return _encode(body)


def settings_key(path: str) -> str | None:
    """The write key in a Segment settings path, or None for any other path."""
    if not (path.startswith(SETTINGS_PREFIX) and path.endswith(SETTINGS_SUFFIX)):
        return None
    key = path[len(SETTINGS_PREFIX) : -len(SETTINGS_SUFFIX)]
    return key if key and "/" not in key else None


def segment_settings(write_key: str) -> bytes:
    """Segment's CDN settings for a valid key: the Segment.io destination and nothing else.

    No ``apiHost``: analytics-kotlin and analytics-swift replace their configured host with
    the settings' one, which would send the events elsewhere. Metrics sampling is off.
    """
    body: dict[str, Any] = {
        "integrations": {"Segment.io": {"apiKey": write_key}},
        "plugins": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
    }
    return _encode(body)
