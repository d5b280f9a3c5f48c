"""Alert conditions from snapshots of the forwarder (pure: no I/O, no clock)."""

from __future__ import annotations

from typing import Literal, NamedTuple

import msgspec

from forwarder.config import AlertRules

Severity = Literal["critical", "warning"]


class Requests(NamedTuple):
    """Running totals of requests to HubSpot since start."""

    total: int = 0
    throttled: int = 0
    """Answered 429."""
    failed: int = 0
    """5xx, timeouts, refused connections."""


class TypeScore(NamedTuple):
    """One event type's score over the last hour and the last day."""

    hour: float
    day: float
    sent_in_hour: int


class Snapshot(msgspec.Struct, frozen=True):
    """What the rules look at, taken at ``at``."""

    at: float
    paused: dict[str, str] = {}
    """``portal/destination`` -> reason."""
    dead_total: int = 0
    requests: Requests = Requests()
    latency_p95_ms: int | None = None
    quotas: dict[str, tuple[int, int]] = {}
    """Portal -> (used, cap) of the monthly custom-event quota."""
    scores: dict[str, TypeScore] = {}
    drift: int = 0
    storage_error: str | None = None


class Condition(NamedTuple):
    """One alert condition that holds now; ``key`` identifies it across snapshots."""

    key: str
    rule: str
    severity: Severity
    title: str
    summary: str
    """Plain words: what happened and what to do."""
    fields: dict[str, str]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def evaluate(now: Snapshot, then: Snapshot, rules: AlertRules) -> list[Condition]:
    """The conditions that hold in ``now``; ``then`` is the snapshot a window earlier."""
    found: list[Condition] = []
    if rules.storage and now.storage_error is not None:
        found.append(
            Condition(
                "storage",
                "storage",
                "critical",
                "Storage unavailable",
                "The store refuses writes: ingest answers 503 and producers must retry. "
                "Check the disk or Redis.",
                {"error": now.storage_error},
            )
        )
    if rules.paused:
        for queue, reason in sorted(now.paused.items()):
            found.append(
                Condition(
                    f"paused:{queue}",
                    "paused",
                    "critical",
                    f"Delivery paused: {queue}",
                    "HubSpot refused our credentials or scopes (401/403). Events stay queued; "
                    "fix the token or the app's scopes and delivery resumes on its own.",
                    {"queue": queue, "reason": reason},
                )
            )
    found += _growth(now, then, rules)
    found += _thresholds(now, rules)
    return found


def _growth(now: Snapshot, then: Snapshot, rules: AlertRules) -> list[Condition]:
    found = []
    window = f"{(now.at - then.at) / 60:.0f} min"
    added = now.dead_total - then.dead_total
    if rules.dead_letters and added >= rules.dead_letters:
        found.append(
            Condition(
                "dead_letters",
                "dead_letters",
                "warning",
                "Dead letters growing",
                f"{added} events were dead-lettered in the last {window}: HubSpot refused them "
                "for good. See the debugger's dead letters, fix the cause, then replay them.",
                {"added": str(added), "total": str(now.dead_total), "window": window},
            )
        )
    d = Requests(*(a - b for a, b in zip(now.requests, then.requests, strict=True)))
    if d.total >= rules.min_requests:
        for rule, part, limit, words in (
            ("throttled_share", d.throttled, rules.throttled_share, "answered 429 (rate limit)"),
            ("error_share", d.failed, rules.error_share, "failed (5xx, timeout, refused)"),
        ):
            share = _share(part, d.total)
            if limit and share >= limit:
                found.append(
                    Condition(
                        rule,
                        rule,
                        "warning",
                        f"HubSpot requests {words.split(' (')[0]}: {_pct(share)}",
                        f"{part} of {d.total} requests to HubSpot in the last {window} {words}. "
                        "Delivery retries them; if it lasts, check HubSpot's status and other "
                        "apps sharing the portal's limits.",
                        {"share": _pct(share), "requests": str(d.total), "window": window},
                    )
                )
    return found


def _thresholds(now: Snapshot, rules: AlertRules) -> list[Condition]:
    found = []
    p95 = now.latency_p95_ms
    if rules.p95_latency_s and p95 is not None and p95 > rules.p95_latency_s * 1000:
        found.append(
            Condition(
                "latency",
                "latency",
                "warning",
                "Events reach HubSpot late",
                f"95 % of conversions in the last hour took up to {p95 / 1000:.0f} s from "
                "acceptance to HubSpot: reports and workflows see them late.",
                {"p95_s": f"{p95 / 1000:.0f}", "threshold_s": f"{rules.p95_latency_s:.0f}"},
            )
        )
    for portal, (used, cap) in sorted(now.quotas.items()):
        share = _share(used, cap)
        if rules.quota_share and share >= rules.quota_share:
            found.append(
                Condition(
                    f"quota:{portal}",
                    "quota",
                    "warning",
                    f"Monthly event quota at {_pct(share)}: {portal}",
                    f"{used} of {cap} custom event completions of this month are used. At the "
                    "cap HubSpot refuses events until the month ends: raise the portal's quota "
                    "or send fewer event types.",
                    {"portal": portal, "used": str(used), "cap": str(cap)},
                )
            )
    for event_type, s in sorted(now.scores.items()):
        drop = s.day - s.hour
        if rules.score_drop and s.sent_in_hour >= rules.min_events and drop >= rules.score_drop:
            found.append(
                Condition(
                    f"score:{event_type}",
                    "score_drop",
                    "warning",
                    f"Attribution quality of {event_type} dropped to {s.hour:.1f}/10",
                    f"The quality score of {event_type} fell {drop:.1f} points (last hour "
                    f"{s.hour:.1f}, last day {s.day:.1f}). The debugger's quality view says "
                    "what lowers it.",
                    {"event_type": event_type, "hour": f"{s.hour:.1f}", "day": f"{s.day:.1f}"},
                )
            )
    if rules.conservation and now.drift:
        found.append(
            Condition(
                "conservation",
                "conservation",
                "critical",
                "Conservation drift: events unaccounted for",
                f"{now.drift} accepted items are neither delivered, failed nor queued. This is a "
                "bug: keep the store for investigation and report it.",
                {"drift": str(now.drift)},
            )
        )
    return found
