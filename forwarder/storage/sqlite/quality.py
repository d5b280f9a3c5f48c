"""SQL of the hourly attribution-quality counters (run on the SQLite writer thread)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from forwarder.storage.base import QUALITY_RETENTION_H, TOTALLED_METRICS, QualityCount


def add(conn: sqlite3.Connection, counts: Sequence[QualityCount]) -> None:
    """Add to the counters and the all-time totals, and forget hours past retention (one
    indexed range delete); the caller's transaction makes it one write."""
    conn.executemany(
        "INSERT INTO quality (hour, source, event_type, metric, n) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (hour, source, event_type, metric) DO UPDATE SET n = n + excluded.n",
        [(c.hour, c.source, c.event_type, c.metric, c.n) for c in counts],
    )
    totals: dict[tuple[str, str], int] = {}
    for c in counts:
        if c.metric in TOTALLED_METRICS:
            totals[(c.source, c.metric)] = totals.get((c.source, c.metric), 0) + c.n
    conn.executemany(
        "INSERT INTO ingest_totals (source, metric, n) VALUES (?, ?, ?)"
        " ON CONFLICT (source, metric) DO UPDATE SET n = n + excluded.n",
        [(source, metric, n) for (source, metric), n in totals.items()],
    )
    newest = max(c.hour for c in counts)
    conn.execute("DELETE FROM quality WHERE hour < ?", (newest - QUALITY_RETENTION_H,))


def totals(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """The all-time ingest totals per (source, metric)."""
    rows = conn.execute("SELECT source, metric, n FROM ingest_totals").fetchall()
    return {(source, metric): int(n) for source, metric, n in rows}


def between(conn: sqlite3.Connection, first: int, last: int) -> list[QualityCount]:
    """Every counter of the hours ``first`` to ``last`` (at most retention's worth)."""
    first = max(first, last - QUALITY_RETENTION_H)
    rows = conn.execute(
        "SELECT hour, source, event_type, metric, n FROM quality WHERE hour BETWEEN ? AND ?",
        (first, last),
    ).fetchall()
    return [QualityCount(*row) for row in rows]
