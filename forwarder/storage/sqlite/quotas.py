"""SQL of the quota counts (run on the SQLite writer thread, so each call is atomic)."""

from __future__ import annotations

import sqlite3

_COUNT = "SELECT used FROM quota_usage WHERE portal = ? AND name = ? AND period = ?"


def _count(conn: sqlite3.Connection, portal: str, name: str, period: str) -> int:
    row = conn.execute(_COUNT, (portal, name, period)).fetchone()
    return 0 if row is None else int(row[0])


def spend(
    conn: sqlite3.Connection, portal: str, name: str, period: str, n: int, cap: int
) -> tuple[bool, int]:
    """Add ``n`` to the period's count unless that passes ``cap``; earlier periods go."""
    conn.execute(
        "DELETE FROM quota_usage WHERE portal = ? AND name = ? AND period != ?",
        (portal, name, period),
    )
    used = _count(conn, portal, name, period)
    if used + n > cap:
        return False, used
    conn.execute(
        "INSERT INTO quota_usage (portal, name, period, used) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (portal, name, period) DO UPDATE SET used = used + excluded.used",
        (portal, name, period, n),
    )
    return True, used + n


def raise_to(conn: sqlite3.Connection, portal: str, name: str, period: str, used: int) -> int:
    """Make the period's count at least ``used``; the count after."""
    conn.execute(
        "INSERT INTO quota_usage (portal, name, period, used) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (portal, name, period) DO UPDATE SET used = max(used, excluded.used)",
        (portal, name, period, used),
    )
    return _count(conn, portal, name, period)
