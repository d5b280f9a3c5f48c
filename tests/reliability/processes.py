"""Real processes for fault tests: a standalone sandbox that outlives forwarder restarts, a
``forwarder serve`` pointed at it, and what the tests read back (sandbox log, SQLite, /proc)."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from forwarder.delivery.destinations import stable_uuid
from forwarder.sandbox import DEFAULT_TOKEN
from tests.support import SERVER_KEY, free_port

PORTAL_ID = 123456


class SandboxProcess:
    """``python -m forwarder sandbox`` on a loopback port; read and script it over HTTP."""

    def __init__(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.proc = proc

    def received_uuids(self) -> Counter[str]:
        body = httpx.get(f"{self.url}/_sandbox/events", timeout=30).json()
        return Counter(e["uuid"] for events in body["received"].values() for e in events)

    def requests(self, route: str = "events.send_batch") -> dict[int, int]:
        """Answers given on one route so far, by status."""
        body = httpx.get(f"{self.url}/_sandbox/requests", timeout=10).json()
        return {int(s): n for s, n in body["byRoute"].get(route, {}).items()}

    def script(self, *faults: dict[str, Any]) -> None:
        response = httpx.post(
            f"{self.url}/_sandbox/faults", json={"faults": list(faults), "replace": True}, timeout=5
        )
        response.raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.url}/_sandbox/faults", timeout=5).raise_for_status()


@contextlib.contextmanager
def sandbox_process(*extra: str) -> Iterator[SandboxProcess]:
    """A sandbox on a free port, killed at the end (hung requests must not delay the test)."""
    port = free_port()
    command = [sys.executable, "-m", "forwarder", "sandbox", "--port", str(port)]
    command += ["--portal-id", str(PORTAL_ID), *extra]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "sandbox exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_sandbox", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "sandbox did not start"
            time.sleep(0.05)
        yield SandboxProcess(url, proc)
    finally:
        proc.kill()
        proc.wait()


def serve_config(db: Path, port: int, sandbox_url: str, *, extra: str = "") -> str:
    """A server source on one portal delivered to ``sandbox_url``; ``extra`` goes at the end."""
    return f"""
[server]
host = "127.0.0.1"
port = {port}
log_format = "json"
log_requests = false

[storage]
url = "sqlite:///{db}"

[[sources]]
name = "backend"
write_key = "{SERVER_KEY}"
portal = "main"

[portals.main]
portal_id = {PORTAL_ID}
base_url = "{sandbox_url}"
access_token = "{DEFAULT_TOKEN}"
unmapped_events = "auto"
max_delay_s = 0.1
request_timeout_s = 2.0
{extra}
"""


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
