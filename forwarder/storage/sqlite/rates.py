"""SQL of the per-minute HubSpot request counts (run on the SQLite writer thread)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from forwarder.storage.base import RATE_RETENTION_MIN, RateCount


def add(conn: sqlite3.Connection, counts: Sequence[RateCount]) -> None:
    """Add to the counts and forget minutes past retention (one indexed range delete)."""
    conn.executemany(
        "INSERT INTO rate_minutes (minute, portal, route, outcome, n) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (minute, portal, route, outcome) DO UPDATE SET n = n + excluded.n",
        [(c.minute, c.portal, c.route, c.outcome, c.n) for c in counts],
    )
    newest = max(c.minute for c in counts)
    conn.execute("DELETE FROM rate_minutes WHERE minute < ?", (newest - RATE_RETENTION_MIN,))


def between(conn: sqlite3.Connection, first: int, last: int) -> list[RateCount]:
    """Every count of the minutes ``first`` to ``last``."""
    rows = conn.execute(
        "SELECT minute, portal, route, outcome, n FROM rate_minutes WHERE minute BETWEEN ? AND ?",
        (max(first, last - RATE_RETENTION_MIN), last),
    ).fetchall()
    return [RateCount(*row) for row in rows]
