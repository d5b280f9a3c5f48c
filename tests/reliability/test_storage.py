"""Storage trouble under a real ``forwarder serve``: 503 with Retry-After, recovery without a
restart, and nothing acknowledged lost.

- *Locked*: a second connection holds SQLite's write lock (``BEGIN EXCLUSIVE``) longer than the
  server's busy timeout.
- *Full*: the server process gets a file-size limit (``RLIMIT_FSIZE`` through ``prlimit``) a
  little above its files' sizes, so SQLite's writes fail as on a full disk: a write cut short
  is ``SQLITE_FULL``, one that starts at the limit ``SQLITE_IOERR_WRITE`` (EFBIG); lifting the
  limit is the operator freeing space.
"""

from __future__ import annotations

import os
import resource
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.processes import (
    sandbox_process,
    serve_config,
    stored_message_ids,
    uuid_of,
    wait_until,
)
from tests.support import SERVER_KEY, ServerProcess, free_port


def _batch(prefix: str, n: int, pad: int = 0) -> dict[str, Any]:
    return {
        "batch": [
            {
                "type": "track",
                "userId": f"u{i % 9}",
                "event": "Order Completed",
                "messageId": f"{prefix}-{i}",
                "properties": {f"note{k}": "x" * 200 for k in range(pad)},
                "context": {"traits": {"email": f"u{i % 9}@example.com"}},
            }
            for i in range(n)
        ]
    }


def _ids(body: dict[str, Any]) -> set[str]:
    return {e["messageId"] for e in body["batch"]}


def test_locked_database_answers_503_with_retry_after_and_recovers_without_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "forwarder.db"
    port = free_port()
    with sandbox_process() as sandbox:
        server = ServerProcess(tmp_path, serve_config(db, port, sandbox.url)).start(port)
        try:
            with httpx.Client(base_url=server.url, auth=(SERVER_KEY, ""), timeout=20) as http:
                before = _batch("before", 50)
                assert http.post("/v1/batch", json=before).status_code == 200

                holder = sqlite3.connect(db, isolation_level=None, timeout=10)
                holder.execute("BEGIN EXCLUSIVE")
                try:
                    during = _batch("during", 50)
                    refused = http.post("/v1/batch", json=during)
                    ready = http.get("/readyz")
                finally:
                    holder.execute("ROLLBACK")
                    holder.close()
                after = _batch("after", 50)
                recovered = http.post("/v1/batch", json=after)
                assert http.get("/readyz").status_code == 200
            expected = {uuid_of(m) for m in _ids(before) | _ids(after)}
            wait_until(lambda: set(sandbox.received_uuids()) >= expected, timeout_s=20)
        finally:
            server.stop()
        received = sandbox.received_uuids()

    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "locked" in refused.json()["error"]
    assert ready.status_code == 503
    assert recovered.status_code == 200, recovered.text
    assert _ids(during).isdisjoint(stored_message_ids(db))
    assert set(received) == expected
    assert set(received.values()) == {1}


def _file_size_limit(pid: int, limit: int) -> None:
    """Move only the soft limit: raising it again needs no privilege."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))


def _largest_file(db: Path) -> int:
    return max(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def test_full_disk_answers_503_with_retry_after_and_recovers_when_space_returns(
    tmp_path: Path,
) -> None:
    db = tmp_path / "forwarder.db"
    port = free_port()
    acknowledged: set[str] = set()
    with sandbox_process() as sandbox:
        server = ServerProcess(tmp_path, serve_config(db, port, sandbox.url)).start(port)
        assert server.proc is not None
        pid = server.proc.pid
        try:
            with httpx.Client(base_url=server.url, auth=(SERVER_KEY, ""), timeout=20) as http:
                first = _batch("first", 50)
                assert http.post("/v1/batch", json=first).status_code == 200
                acknowledged |= _ids(first)
                # Not a multiple of SQLite's page or WAL frame size: the write that crosses it
                # is short, which SQLite reports as SQLITE_FULL.
                _file_size_limit(pid, _largest_file(db) + 300_001)
                refused: httpx.Response | None = None
                for n in range(100):
                    body = _batch(f"fill{n}", 100, pad=4)
                    response = http.post("/v1/batch", json=body)
                    if response.status_code == 200:
                        acknowledged |= _ids(body)
                        continue
                    refused, refused_ids = response, _ids(body)
                    break
                assert refused is not None, "the file-size limit was never reached"
                ready = http.get("/readyz")
                _file_size_limit(pid, resource.RLIM_INFINITY)
                after = _batch("after", 50)
                recovered = http.post("/v1/batch", json=after)
                acknowledged |= _ids(after)
                assert http.get("/readyz").status_code == 200
            expected = {uuid_of(m) for m in acknowledged}
            wait_until(lambda: set(sandbox.received_uuids()) >= expected, timeout_s=30)
        finally:
            if _alive(pid):
                _file_size_limit(pid, resource.RLIM_INFINITY)
            server.stop()
        received = sandbox.received_uuids()

    assert refused.status_code == 503, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    # A write cut short is SQLITE_FULL; one that starts at the limit is EFBIG, SQLITE_IOERR.
    assert any(w in refused.json()["error"] for w in ("full", "I/O error")), refused.text
    assert ready.status_code in (200, 503)
    assert recovered.status_code == 200, recovered.text
    assert refused_ids.isdisjoint(stored_message_ids(db))
    assert set(received) == expected
    assert set(received.values()) == {1}
    assert "Traceback" not in server.log()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
