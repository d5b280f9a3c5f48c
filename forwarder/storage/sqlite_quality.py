"""SQL of the hourly attribution-quality counters (run on the SQLite writer thread)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from forwarder.storage.base import QUALITY_RETENTION_H, QualityCount


def add(conn: sqlite3.Connection, counts: Sequence[QualityCount]) -> None:
    """Add to the counters and forget hours past retention (one indexed range delete)."""
    conn.executemany(
        "INSERT INTO quality (hour, source, event_type, metric, n) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (hour, source, event_type, metric) DO UPDATE SET n = n + excluded.n",
        [(c.hour, c.source, c.event_type, c.metric, c.n) for c in counts],
    )
    newest = max(c.hour for c in counts)
    conn.execute("DELETE FROM quality WHERE hour < ?", (newest - QUALITY_RETENTION_H,))


def between(conn: sqlite3.Connection, first: int, last: int) -> list[QualityCount]:
    """Every counter of the hours ``first`` to ``last`` (at most retention's worth)."""
    first = max(first, last - QUALITY_RETENTION_H)
    rows = conn.execute(
        "SELECT hour, source, event_type, metric, n FROM quality WHERE hour BETWEEN ? AND ?",
        (first, last),
    ).fetchall()
    return [QualityCount(*row) for row in rows]
