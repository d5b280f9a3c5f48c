"""The HubSpot outage scenario, shared by the test and ``benchmarks/run_all.py``.

A real ``forwarder serve`` delivers to a sandbox process at a small envelope (``EVENTS_RPS``
requests a second). A producer sends at a steady rate throughout. For ``outage_s`` the sandbox
answers half the event sends with 503 and leaves the rest hanging (the forwarder's timeout cuts
them), then it recovers. A sampler records, every ``SAMPLE_S``, the queue depth (open items in
the SQLite file), the events received by the sandbox and the event sends the forwarder made.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.processes import (
    SandboxProcess,
    item_states,
    sandbox_process,
    serve_config,
    uuid_of,
    wait_until,
)
from tests.support import SERVER_KEY, ServerProcess, free_port

EVENTS_RPS = 4
"""The forwarder's envelope for event sends, in requests a second (500 events each at most)."""
INGEST_PER_S = 200
SAMPLE_S = 0.25
TIMEOUT_S = 1.0


@dataclass
class OutageRun:
    """What one run measured."""

    outage_s: float
    acknowledged: set[str] = field(default_factory=set)
    samples: list[dict[str, float]] = field(default_factory=list)
    outage_started: float = 0.0
    outage_ended: float = 0.0
    drained_at: float = 0.0
    sends_during_outage: int = 0
    sends_total: int = 0
    backlog_at_recovery: int = 0
    max_attempts_per_item: int = 0
    received: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)

    def trace(self) -> dict[str, Any]:
        """The samples and the phase marks, for ``benchmarks/chart.py``."""
        return {
            "outage_s": self.outage_s,
            "outage_started": self.outage_started,
            "outage_ended": self.outage_ended,
            "drained_at": self.drained_at,
            "envelope_requests_per_s": EVENTS_RPS,
            "backlog_at_recovery": self.backlog_at_recovery,
            "sends_during_outage": self.sends_during_outage,
            "max_attempts_per_item": self.max_attempts_per_item,
            "ingest_per_s": INGEST_PER_S,
            "samples": self.samples,
        }


def _open_items(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute(
            "SELECT COUNT(*) FROM items WHERE state IN ('pending', 'leased')"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def _sends(db: Path, since: float = 0.0, until: float = 1e12) -> int:
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute(
            "SELECT COUNT(*) FROM attempts WHERE route LIKE '%send%' AND at >= ? AND at < ?",
            (since, until),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def _max_attempts(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute(
            "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM attempt_items GROUP BY item_id)"
        ).fetchone()
    finally:
        conn.close()
    return int(row[0] or 0)


def _received_count(sandbox: SandboxProcess) -> int:
    body = httpx.get(f"{sandbox.url}/_sandbox", timeout=10).json()
    return int(sum(body["events"].values()))


class _Producer(threading.Thread):
    def __init__(self, url: str, run: OutageRun) -> None:
        super().__init__()
        self.url, self.run_, self.stop = url, run, threading.Event()

    def run(self) -> None:
        per_tick, tick_s, n = INGEST_PER_S // 10, 0.1, 0
        with httpx.Client(base_url=self.url, auth=(SERVER_KEY, ""), timeout=10) as http:
            next_at = time.monotonic()
            while not self.stop.is_set():
                batch = [
                    {
                        "type": "track",
                        "userId": f"u{i % 50}",
                        "event": "Order Completed",
                        "messageId": f"o-{n}-{i}",
                        "context": {"traits": {"email": f"u{i % 50}@example.com"}},
                    }
                    for i in range(per_tick)
                ]
                response = http.post("/v1/batch", json={"batch": batch})
                assert response.status_code == 200, response.text
                self.run_.acknowledged |= {e["messageId"] for e in batch}
                n += 1
                next_at += tick_s
                time.sleep(max(0.0, next_at - time.monotonic()))


class _Sampler(threading.Thread):
    def __init__(self, db: Path, sandbox: SandboxProcess, run: OutageRun, t0: float) -> None:
        super().__init__()
        self.db, self.sandbox, self.run_, self.t0 = db, sandbox, run, t0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.run_.samples.append(
                {
                    "t": round(time.time() - self.t0, 3),
                    "queue_depth": _open_items(self.db),
                    "received": _received_count(self.sandbox),
                    "sends": _sends(self.db),
                }
            )
            time.sleep(SAMPLE_S)


def run_outage(
    tmp: Path,
    outage_s: float,
    before_s: float = 2.0,
    tail_s: float = 1.0,
    drain_timeout_s: float = 330.0,
) -> OutageRun:
    """Steady traffic, an outage of ``outage_s``, recovery; measured (see the module doc)."""
    run = OutageRun(outage_s)
    db = tmp / "forwarder.db"
    port = free_port()
    extra = f"concurrency = 4\n\n[portals.main.limits]\nevents_per_s = {EVENTS_RPS}\nsafety = 1.0\n"
    config = serve_config(db, port, "{url}", extra=extra).replace(
        "request_timeout_s = 2.0", f"request_timeout_s = {TIMEOUT_S}"
    )
    with sandbox_process() as sandbox:
        server = ServerProcess(tmp, config.replace("{url}", sandbox.url)).start(port)
        t0 = time.time()
        producer, sampler = _Producer(server.url, run), _Sampler(db, sandbox, run, t0)
        try:
            producer.start()
            sampler.start()
            time.sleep(before_s)
            sandbox.script(
                {"route": "events.send_batch", "status": 503, "errorRate": 0.5},
                {"route": "events.send_batch", "hang": True, "hangS": outage_s + 5},
            )
            run.outage_started = time.time() - t0
            time.sleep(outage_s)
            sandbox.clear_faults()
            run.outage_ended = time.time() - t0
            run.backlog_at_recovery = _open_items(db)
            time.sleep(tail_s)
            producer.stop.set()
            producer.join()
            expected = {uuid_of(m) for m in run.acknowledged}
            # Drained: the sandbox has every event and no item of ours is still open. A request
            # that hung past our timeout may land late; its replay is then a dropped duplicate.
            wait_until(
                lambda: _open_items(db) == 0 and set(sandbox.received_uuids()) >= expected,
                timeout_s=drain_timeout_s,
                every_s=SAMPLE_S,
            )
            run.drained_at = time.time() - t0
            time.sleep(SAMPLE_S * 2)
        finally:
            sampler.stop.set()
            producer.stop.set()
            server.stop()
        run.received = dict(sandbox.received_uuids())
        run.states = item_states(db)
        run.sends_total = _sends(db)
        run.max_attempts_per_item = _max_attempts(db)
        run.sends_during_outage = _sends(db, t0 + run.outage_started, t0 + run.outage_ended)
    return run
