"""Attribution quality per event type and source, from the store's hourly counters, and one
score (0-10) per event type with the parts that lower it in plain words."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from forwarder.debugger.quality_models import (
    EventTypeQuality,
    Figures,
    QualityReport,
    Reason,
    SourceFigures,
    Window,
)
from forwarder.storage.base import QualityCount
from forwarder.storage.roles import Counters
from forwarder.tallies import LATENCY_BOUNDS_MS

WINDOW_HOURS: dict[str, int] = {"hour": 1, "day": 24, "week": 168}
"""Whole hours before the current one that a window adds up (counters are hourly)."""
IDENTIFIERS = ("objectId", "email", "utk")
_TOP = 5


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _top(counts: Mapping[str, int], prefix: str) -> list[Reason]:
    found = Counter({m[len(prefix) :]: n for m, n in counts.items() if m.startswith(prefix)})
    return [Reason(reason=r, count=n) for r, n in found.most_common(_TOP)]


def percentile_ms(counts: Mapping[str, int], q: float) -> int | None:
    """The latency bucket bound under which a share ``q`` of sent conversions arrived."""
    buckets = [(b, counts.get(f"latency_le:{b}", 0)) for b in LATENCY_BOUNDS_MS]
    total = sum(n for _, n in buckets)
    if not total:
        return None
    seen = 0
    for bound, n in buckets:
        seen += n
        if seen >= q * total:
            return bound
    return LATENCY_BOUNDS_MS[-1]


def figures(counts: Mapping[str, int]) -> Figures:
    """Figures from one group's summed counters (metric -> count)."""
    sent = counts.get("sent", 0)
    failures = Counter({m: n for m, n in counts.items() if m.startswith(("dead:", "dropped:"))})
    top_failures = [
        Reason(reason=m.partition(":")[2], count=n) for m, n in failures.most_common(_TOP)
    ]
    return Figures(
        received=counts.get("received", 0),
        accepted=counts.get("accepted", 0),
        rejected=counts.get("rejected", 0),
        top_rejections=_top(counts, "rejected:"),
        duplicates=counts.get("duplicate", 0),
        sent=sent,
        sent_with={k: _share(counts.get(f"sent:{k}", 0), sent) for k in IDENTIFIERS},
        resolved=_share(counts.get("resolved", 0), sent),
        held=counts.get("held", 0),
        released=counts.get("released", 0),
        expired_unidentified=counts.get("expired", 0),
        dead=counts.get("dead", 0),
        dropped=counts.get("dropped", 0),
        top_failures=top_failures,
        latency_p50_ms=percentile_ms(counts, 0.5),
        latency_p95_ms=percentile_ms(counts, 0.95),
        campaign_coverage=_share(counts.get("campaign", 0), sent),
    )


def _pct(share: float) -> str:
    return f"{round(share * 100)} %"


def _duration(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms // 1000} s"
    if ms < 3_600_000:
        return f"{ms // 60_000} min"
    return f"{ms // 3_600_000} h"


def _parts(name: str, f: Figures) -> list[tuple[float, str]]:
    """(points lost, why in plain words) for each part of the score."""
    parts: list[tuple[float, str]] = []
    if f.resolved is not None and f.resolved < 1:
        missing = 1 - f.resolved
        parts.append(
            (
                3 * missing,
                f"{_pct(missing)} of {name} events had no email or contact id when sent (only "
                f"a utk): add an identify before {name} so HubSpot ties it to a contact",
            )
        )
    settled = f.released + f.expired_unidentified
    if settled and f.expired_unidentified:
        share = f.expired_unidentified / settled
        parts.append(
            (
                2 * share,
                f"{_pct(share)} of held {name} events expired unidentified: identify visitors "
                "earlier (sign-up, login, checkout) so held conversions are released",
            )
        )
    if f.received and f.rejected:
        share = f.rejected / f.received
        why = f" (mostly: {f.top_rejections[0].reason})" if f.top_rejections else ""
        parts.append(
            (
                2 * share,
                f"{_pct(share)} of {name} events were rejected at ingest{why}: fix the producer",
            )
        )
    failed = f.dead + f.dropped
    if failed and f.accepted:
        share = min(1.0, failed / f.accepted)
        why = f" (mostly: {f.top_failures[0].reason})" if f.top_failures else ""
        parts.append(
            (
                2 * share,
                f"{_pct(share)} of {name} events never reached HubSpot{why}: see dead letters",
            )
        )
    if f.received and f.duplicates:
        share = f.duplicates / f.received
        parts.append(
            (
                share,
                f"{_pct(share)} of {name} events were duplicates: the producer sends the same "
                "messageId again (harmless, but it hides retries gone wrong)",
            )
        )
    if f.latency_p95_ms is not None and f.latency_p95_ms > 300_000:
        slow = min(1.0, f.latency_p95_ms / 3_600_000)
        parts.append(
            (
                slow,
                f"5 % of {name} events took more than {_duration(f.latency_p95_ms)} to reach "
                "HubSpot: reports and workflows see them late",
            )
        )
    if f.campaign_coverage is not None and f.campaign_coverage < 1:
        missing = 1 - f.campaign_coverage
        parts.append(
            (
                0.5 * missing,
                f"{_pct(missing)} of sent {name} events carried no campaign or click id: keep "
                "utm parameters (context.campaign) and click ids on the events",
            )
        )
    return parts


def score(name: str, f: Figures) -> tuple[float, list[str]]:
    """The 0-10 score and the parts that lower it (worth 0.1 point or more), worst first."""
    parts = sorted(_parts(name, f), key=lambda p: -p[0])
    lost = sum(points for points, _ in parts)
    return round(max(0.0, 10 - lost), 1), [why for points, why in parts if points >= 0.1]


def _sum(rows: Iterable[QualityCount]) -> dict[tuple[str, str], dict[str, int]]:
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for r in rows:
        group = out[(r.event_type, r.source)]
        group[r.metric] = group.get(r.metric, 0) + r.n
    return out


def report(rows: Iterable[QualityCount], window: Window, now: float) -> QualityReport:
    """Quality per event type (and per source within it), worst score first."""
    by_type: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for (event_type, source), counts in _sum(rows).items():
        by_type[event_type][source] = counts
    out = []
    for event_type, per_source in by_type.items():
        total: Counter[str] = Counter()
        for counts in per_source.values():
            total.update(counts)
        f = figures(total)
        points, lowered_by = score(event_type, f)
        sources = [
            SourceFigures(source=s, figures=figures(c)) for s, c in sorted(per_source.items())
        ]
        out.append(
            EventTypeQuality(
                event_type=event_type,
                score=points,
                lowered_by=lowered_by,
                figures=f,
                sources=sources,
            )
        )
    out.sort(key=lambda q: (q.score, q.event_type))
    first = int(now // 3600) - WINDOW_HOURS[window]
    return QualityReport(window=window, since=first * 3600.0, generated_at=now, event_types=out)


async def quality(storage: Counters, window: Window, now: float) -> QualityReport:
    """Read the window's counters from the store and report on them."""
    last = int(now // 3600)
    rows = await storage.quality_hours(last - WINDOW_HOURS[window], last)
    return report(rows, window, now)
