"""What leaves the admin API: never a secret; personal data masked when the setting says so."""

from __future__ import annotations

from typing import Any

from forwarder.config import Settings, secrets_of
from forwarder.telemetry import Redactor

_PERSONAL_KEYS = frozenset(
    {
        "email",
        "userid",
        "anonymousid",
        "hubspotutk",
        "hutk",
        "ip",
        "phone",
        "firstname",
        "lastname",
        "name",
        "address",
        "street",
        "birthday",
        "previousid",
        "contactid",
    }
)
_PERSONAL_KINDS = frozenset({"email", "userId", "anonymousId", "utk", "contactId", "objectId"})


def mask_value(value: str) -> str:
    """``jane@example.com`` -> ``j***@example.com``; ``user-123`` -> ``us***``."""
    local, at, domain = value.partition("@")
    if at:
        return f"{local[:1]}***@{domain}"
    return f"{value[:2]}***" if len(value) > 4 else "***"


class Masker:
    """Configured once: which secrets to scrub and whether to mask personal data."""

    def __init__(self, settings: Settings) -> None:
        self.personal = settings.server.mask_personal_data
        self._redactor = Redactor(secrets_of(settings))

    def text(self, value: str | None) -> str | None:
        """A free text (an error message, a note): secrets removed."""
        return None if value is None else str(self._redactor.scrub(value))

    def identifier(self, kind: str | None, value: str | None) -> str | None:
        """An identifier value, masked when personal data is masked."""
        if value is None:
            return None
        if self.personal and (kind is None or kind in _PERSONAL_KINDS):
            return mask_value(value)
        return self.text(value)

    def payload(self, data: dict[str, Any]) -> dict[str, Any]:
        """An event payload: secrets (by value and by key name) removed, personal data masked."""
        scrubbed: dict[str, Any] = self._redactor.scrub(data)
        scrubbed.pop("writeKey", None)
        return self._mask(scrubbed, None) if self.personal else scrubbed

    def _mask(self, node: Any, parent: str | None) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                # "name" is a person's only under traits (elsewhere: a page, a campaign).
                lowered = key.lower()
                personal = lowered in _PERSONAL_KEYS and (lowered != "name" or parent == "traits")
                if personal and isinstance(value, str | int) and not isinstance(value, bool):
                    out[key] = mask_value(str(value))
                else:
                    out[key] = self._mask(value, key)
            return out
        if isinstance(node, list):
            return [self._mask(v, parent) for v in node]
        return node
