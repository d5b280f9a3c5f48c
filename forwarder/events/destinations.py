"""The names of the destination queues an event can go to, one per HubSpot API we call.

They are stored with every item, labelled on metrics and shown by the debugger and the CLI, so
they live here, below everything that routes, delivers or reads items. A ``StrEnum`` compares
equal to the stored text, so items written by earlier releases read back unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class DestinationName(StrEnum):
    """A destination queue of a portal."""

    CONVERSIONS = "conversions"
    """Custom behavioral events (the events ``send/batch`` path)."""
    TIMELINE = "timeline"
    """Timeline events on the contact's record."""
    CONTACTS = "contacts"
    """Contact upserts from ``identify``."""
    FORMS = "forms"
    """Form submissions from ``identify`` (when a form is configured)."""
