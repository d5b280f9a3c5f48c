"""The quality report's bodies (``GET /admin/api/quality``), published in the OpenAPI document.

Shares are fractions from 0 to 1 (None when there is nothing to divide by); latencies are the
upper bound of the bucket the percentile falls in, in milliseconds.
"""

from __future__ import annotations

from typing import Literal

from forwarder.debugger.models import Model

Window = Literal["hour", "day", "week"]


class Reason(Model):
    """One reason and how many events it covers."""

    reason: str
    count: int


class Figures(Model):
    """Attribution quality of some events over the window."""

    received: int
    """Events that reached ingest (accepted, duplicates and rejected)."""
    accepted: int
    rejected: int
    top_rejections: list[Reason]
    duplicates: int
    sent: int
    """Conversions HubSpot accepted."""
    sent_with: dict[str, float | None]
    """Share of ``sent`` per identifier: ``objectId``, ``email``, ``utk``."""
    resolved: float | None
    """Share of ``sent`` that went with a contact id or an email (a utk alone may stay an
    anonymous visitor)."""
    held: int
    """Conversions parked for lack of identity."""
    released: int
    """Held conversions an identify released."""
    expired_unidentified: int
    """Held conversions whose hold ran out."""
    dead: int
    dropped: int
    top_failures: list[Reason]
    """Why events ended dead or dropped, most frequent first."""
    latency_p50_ms: int | None
    """Accepted -> HubSpot acknowledged, median."""
    latency_p95_ms: int | None
    campaign_coverage: float | None
    """Share of ``sent`` that carried a campaign or an ad click id."""


class SourceFigures(Model):
    """One source's share of an event type."""

    source: str
    figures: Figures


class EventTypeQuality(Model):
    """One event type: its score, what lowers it, its figures, per source."""

    event_type: str
    score: float
    """0 (attribution useless) to 10 (every event identified, delivered, on time)."""
    lowered_by: list[str]
    """What takes points off, worst first, in plain words with what to do."""
    figures: Figures
    sources: list[SourceFigures]


class QualityReport(Model):
    """Quality per event type over one window of whole hours (plus the current one)."""

    window: Window
    since: float
    """Start of the first hour counted."""
    generated_at: float
    event_types: list[EventTypeQuality]
    """Worst score first."""
