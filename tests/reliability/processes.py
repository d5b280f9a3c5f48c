"""Real processes for fault tests: a standalone sandbox that outlives forwarder restarts, a
``forwarder serve`` pointed at it, and what the tests read back (sandbox log, SQLite, /proc)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from forwarder.delivery.destinations import stable_uuid
from tests.support import (
    SANDBOX_PORTAL_ID,
    SandboxProcess,
    sandbox_process,
    serve_config,
)

PORTAL_ID = SANDBOX_PORTAL_ID
# The sandbox process and the config pointing at it live in tests.support (shared with the
# delivery and replica tests); the reliability tests import them from here too.
__all__ = ["PORTAL_ID", "SandboxProcess", "sandbox_process", "serve_config"]


def uuid_of(message_id: str) -> str:
    """The uuid the conversions destination gives a messageId."""
    return stable_uuid(PORTAL_ID, message_id)


def item_states(db: Path) -> dict[str, int]:
    """Item counts by state, straight from the SQLite file (the server may be dead)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall()
    finally:
        conn.close()
    return {state: n for state, n in rows}


def stored_message_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT message_id FROM events")}
    finally:
        conn.close()


def rss_kb(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_until(check: Any, timeout_s: float, every_s: float = 0.2) -> None:
    """Poll a synchronous ``check`` until true, or fail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"condition not met within {timeout_s} s")
