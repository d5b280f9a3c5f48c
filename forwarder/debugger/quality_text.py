"""The quality report as terminal lines (``forwarder quality``), from the API's JSON."""

from __future__ import annotations

from typing import Any


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{round(share * 100)}%"


def _ms(value: int | None) -> str:
    if value is None:
        return "-"
    return f"<={value / 1000:g}s" if value >= 1000 else f"<={value}ms"


def figure_lines(f: dict[str, Any], indent: str = "  ") -> list[str]:
    """One event type's (or source's) figures in three lines."""
    sent_with = " ".join(f"{k} {_pct(v)}" for k, v in f["sentWith"].items())
    failures = "; ".join(f"{r['reason']} ({r['count']})" for r in f["topFailures"])
    rejections = "; ".join(f"{r['reason']} ({r['count']})" for r in f["topRejections"])
    lines = [
        f"{indent}received {f['received']}  accepted {f['accepted']}  rejected {f['rejected']}  "
        f"duplicates {f['duplicates']}  sent {f['sent']} ({sent_with})  "
        f"resolved {_pct(f['resolved'])}",
        f"{indent}held {f['held']} -> released {f['released']} / expired unidentified "
        f"{f['expiredUnidentified']}  dead {f['dead']}  dropped {f['dropped']}  "
        f"latency p50 {_ms(f['latencyP50Ms'])} p95 {_ms(f['latencyP95Ms'])}  "
        f"campaign {_pct(f['campaignCoverage'])}",
    ]
    if rejections:
        lines.append(f"{indent}rejected because: {rejections}")
    if failures:
        lines.append(f"{indent}failed because: {failures}")
    return lines


def report_lines(body: dict[str, Any]) -> list[str]:
    """The whole report, worst event type first."""
    lines = [f"attribution quality, last {body['window']} (worst first)"]
    if not body["eventTypes"]:
        lines.append("no events in this window")
    for q in body["eventTypes"]:
        lines.append(f"{q['eventType']}: {q['score']:.1f}/10")
        lines += [f"  - {why}" for why in q["loweredBy"]]
        lines += figure_lines(q["figures"])
        if len(q["sources"]) > 1:
            for s in q["sources"]:
                lines.append(f"  source {s['source']}:")
                lines += figure_lines(s["figures"], indent="    ")
    return lines
