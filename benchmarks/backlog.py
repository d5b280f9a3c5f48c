"""Backlog benchmark: peak RSS while holding 1,000,000 events, and the time to drain them.

Run by hand, never in CI::

    python benchmarks/backlog.py                          # 1,000,000 events, 20 sends/s
    python benchmarks/backlog.py --events 100000 --events-rps 10   # a quick look

1. **fill** (in-process, *bypasses HTTP*): ``SqliteStorage.append`` in batches of ``CHUNK``
   writes ``--events`` accepted track events into a fresh SQLite file, each with one pending
   ``conversions`` item. The payloads are what ingest stores for a Segment SDK track event
   (stamped timestamps, ``context`` with library, page, user agent, ip and ``traits.email``,
   ``properties`` with an order), ~0.9 kB each, 20,000 distinct users. Ingest throughput has
   its own benchmark; going through HTTP here would only make the fill take minutes.
2. **drain**: a standalone sandbox (``python -m forwarder sandbox --events-rps R``) and
   ``forwarder serve`` on the file, its portal pointed at the sandbox with ``events_per_s = R``
   and ``unmapped_events = "auto"`` (the event definition is created on the first send). Every
   ``SAMPLE_S`` the server's ``VmRSS``/``VmHWM`` are read from ``/proc/<pid>/status`` and the
   sandbox's received count from ``/_sandbox``, until every event is in the sandbox.

Figures: peak RSS (``VmHWM``, which also covers start-up and moments between samples), drain
time from the server's start to the last event received, against the theoretical minimum
``events / 500 / R`` (HubSpot's allowance) and ``events / 500 / (R * safety)`` (the share the
forwarder allows itself), event-send requests and 429s answered by the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import memory_kb, process, wait_http  # noqa: E402
from forwarder.sandbox import DEFAULT_TOKEN  # noqa: E402 - after the path fix for tests.support
from forwarder.storage.base import NewEvent  # noqa: E402
from forwarder.storage.sqlite import SqliteStorage  # noqa: E402
from tests.support import SERVER_KEY, free_port  # noqa: E402

PORTAL_ID = 123456
CHUNK = 10_000
USERS = 20_000
BATCH = 500
SAMPLE_S = 0.5
SAFETY = 0.9
RSS_TARGET_MB = 300

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
log_format = "json"
log_requests = false

[storage]
url = "sqlite:///{db}"

[[sources]]
name = "backend"
write_key = "{key}"
portal = "main"

[portals.main]
portal_id = {portal_id}
base_url = "{sandbox}"
access_token = "{token}"
unmapped_events = "auto"

[portals.main.limits]
events_per_s = {rps}
safety = {safety}
"""


def payload(n: int, at: str) -> dict[str, Any]:
    """What ingest stores for the ``n``-th track event of a Segment SDK (after stamping)."""
    user = n % USERS
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{user:06d}",
        "anonymousId": f"anon-{user:06d}-5f1c0a7e",
        "messageId": f"backlog-{n:09d}",
        "properties": {
            "order_id": f"ord-{n:09d}",
            "revenue": 25 + n % 400,
            "currency": "EUR",
            "coupon": "SPRING" if n % 7 == 0 else None,
            "items": 1 + n % 5,
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.2"},
            "ip": f"203.0.113.{n % 250}",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
            "page": {
                "path": "/checkout/complete",
                "url": "https://shop.example.com/checkout/complete",
                "referrer": "https://shop.example.com/cart",
                "title": "Thank you for your order",
            },
            "traits": {"email": f"user-{user:06d}@example.com"},
        },
        "originalTimestamp": at,
        "timestamp": at,
        "sentAt": at,
        "receivedAt": at,
    }


async def _fill(db: Path, events: int) -> float:
    storage = SqliteStorage(db, synchronous="normal")
    await storage.open()
    encode = msgspec.json.Encoder().encode
    started = time.monotonic()
    try:
        for start in range(0, events, CHUNK):
            now = time.time()
            at = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
            chunk = [
                NewEvent(
                    portal="main",
                    message_id=f"backlog-{n:09d}",
                    source="backend",
                    type="track",
                    name="Order Completed",
                    received_at=now,
                    payload=encode(payload(n, at.replace("+00:00", "Z"))),
                    destinations=("conversions",),
                )
                for n in range(start, min(events, start + CHUNK))
            ]
            await storage.append(chunk, now=now, dedup_window_s=86400.0)
    finally:
        await storage.close()
    return time.monotonic() - started


def fill(db: Path, events: int) -> float:
    """Write ``events`` accepted events with one pending conversions item each; seconds taken."""
    return asyncio.run(_fill(db, events))


def _received(sandbox: str) -> int:
    body = httpx.get(f"{sandbox}/_sandbox", timeout=30).json()
    return int(sum(body["events"].values()))


@dataclass
class Result:
    """What one run measured."""

    events: int
    events_rps: int
    safety: float = SAFETY
    """The portal's ``limits.safety``: the share of HubSpot's allowance the forwarder takes."""
    fill_s: float = 0.0
    ready_s: float = 0.0
    """From the server's start to ``/readyz`` answering (start-up on the full file)."""
    rss_at_ready_mb: float = 0.0
    peak_rss_mb: float = 0.0
    """The largest ``VmRSS`` sampled."""
    hwm_mb: float = 0.0
    """``VmHWM`` at the end: the true peak, between samples and at start-up included."""
    drain_s: float = 0.0
    minimum_s: float = 0.0
    minimum_own_s: float = 0.0
    sends: dict[int, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    db_mb: float = 0.0
    send_ms: tuple[float, float] = (0.0, 0.0)
    """p50 and p99 of the event sends' duration, from the attempts table (sandbox answer time)."""
    rates: list[int] = field(default_factory=list)
    """Events received by the sandbox per second, per tenth of the drain."""
    samples: list[dict[str, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.drain_s / self.minimum_s

    @property
    def drain_rate(self) -> float:
        """Events/s from the first sample with an event in the sandbox to the last sample."""
        started = [x for x in self.samples if x["received"] > 0]
        if len(started) < 2:
            return 0.0
        first, last = started[0], started[-1]
        return (last["received"] - first["received"]) / (last["t"] - first["t"])


def drain(db: Path, work: Path, result: Result, timeout_s: float) -> None:
    """Serve the filled file against a sandbox process until the sandbox has every event."""
    rps, sandbox_port, port = result.events_rps, free_port(), free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    sandbox_cmd = [sys.executable, "-m", "forwarder", "sandbox", "--port", str(sandbox_port)]
    sandbox_cmd += ["--portal-id", str(PORTAL_ID), "--events-rps", str(rps)]
    config = work / "forwarder.toml"
    config.write_text(
        CONFIG.format(
            port=port,
            db=db,
            key=SERVER_KEY,
            portal_id=PORTAL_ID,
            sandbox=sandbox,
            token=DEFAULT_TOKEN,
            rps=rps,
            safety=result.safety,
        )
    )
    serve_cmd = [sys.executable, "-m", "forwarder", "serve", "--config", str(config)]
    with process(sandbox_cmd, work / "sandbox.log") as sandbox_proc:
        wait_http(f"{sandbox}/_sandbox", sandbox_proc)
        with process(serve_cmd, work / "server.log") as server:
            t0 = time.monotonic()
            wait_http(f"http://127.0.0.1:{port}/readyz", server)
            result.ready_s = time.monotonic() - t0
            result.rss_at_ready_mb = memory_kb(server.pid)["VmRSS"] / 1024
            received = 0
            while received < result.events:
                if time.monotonic() - t0 > timeout_s:
                    raise RuntimeError(f"not drained in {timeout_s} s: {received} received")
                if server.poll() is not None:
                    raise RuntimeError(f"server exited: {(work / 'server.log').read_text()}")
                status = memory_kb(server.pid)
                received = _received(sandbox)
                result.samples.append(
                    {
                        "t": round(time.monotonic() - t0, 2),
                        "rss_kb": status["VmRSS"],
                        "hwm_kb": status["VmHWM"],
                        "received": received,
                    }
                )
                time.sleep(SAMPLE_S)
            result.drain_s = time.monotonic() - t0
            result.hwm_mb = memory_kb(server.pid)["VmHWM"] / 1024
            body = httpx.get(f"{sandbox}/_sandbox/requests", timeout=30).json()
            by_status = body["byRoute"].get("events.send_batch", {})
            result.sends = {int(s): n for s, n in by_status.items()}
            time.sleep(1.0)  # the last acks
    result.peak_rss_mb = max(s["rss_kb"] for s in result.samples) / 1024
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall()
        durations = sorted(
            r[0] for r in conn.execute("SELECT duration_ms FROM attempts WHERE route LIKE '%send%'")
        )
    finally:
        conn.close()
    result.states = {state: n for state, n in rows}
    result.db_mb = db.stat().st_size / 2**20
    if durations:
        result.send_ms = (durations[len(durations) // 2], durations[len(durations) * 99 // 100])
    tenth = max(1, len(result.samples) // 10)
    for a, b in zip(result.samples[::tenth], result.samples[tenth::tenth], strict=False):
        result.rates.append(round((b["received"] - a["received"]) / (b["t"] - a["t"])))


def run(events: int, rps: int, timeout_s: float, keep: Path | None, safety: float) -> Result:
    result = Result(events=events, events_rps=rps, safety=safety)
    result.minimum_s = events / BATCH / rps
    result.minimum_own_s = events / BATCH / (rps * safety)
    with tempfile.TemporaryDirectory(prefix="backlog-") as tmp:
        work = Path(tmp)
        db = work / "forwarder.db"
        print(f"filling {events:,} events ...", flush=True)
        result.fill_s = fill(db, events)
        print(f"filled in {result.fill_s:.1f} s; draining ...", flush=True)
        drain(db, work, result, timeout_s)
        if keep is not None:
            keep.write_text(json.dumps(asdict(result), indent=1))
    return result


def report(r: Result) -> str:
    """The Markdown block of RESULTS.md."""
    sent = sum(r.sends.values())
    p50, p99 = r.send_ms
    by_status = ", ".join(f"{s}: {n:,}" for s, n in sorted(r.sends.items()))
    rejected_429 = r.sends.get(429, 0)
    verdict = "met" if r.hwm_mb < RSS_TARGET_MB else "**not met**"
    load = os.getloadavg()
    envelope = r.events_rps * BATCH
    drain_verdict = f"**{r.drain_rate / envelope:.2f}** ({r.drain_rate:,.0f} of {envelope:,}/s)"
    return f"""- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}
- command: `python benchmarks/backlog.py --events {r.events} --events-rps {r.events_rps} \
--safety {r.safety:g}`
- load average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min)

| figure | value |
| --- | --- |
| backlog | {r.events:,} track events, one conversions item each (SQLite file {r.db_mb:,.0f} MB) |
| fill (in-process `SqliteStorage.append`, no HTTP) | {r.fill_s:.1f} s |
| start-up on the full file (to `/readyz`) | {r.ready_s:.1f} s |
| RSS when ready | {r.rss_at_ready_mb:.0f} MB |
| peak RSS while draining (largest `VmRSS` sample) | {r.peak_rss_mb:.0f} MB |
| peak RSS (`VmHWM`) | **{r.hwm_mb:.0f} MB** (target < {RSS_TARGET_MB} MB: {verdict}) |
| envelope | {r.events_rps} event sends/s at the sandbox; the forwarder's share × {r.safety:g} |
| drain (server start → last event in the sandbox) | **{r.drain_s:.1f} s** |
| minimum at HubSpot's allowance ({r.events:,} / {BATCH} / {r.events_rps}) | {r.minimum_s:.1f} s |
| minimum at the forwarder's share ({r.events_rps * r.safety:g}/s) | {r.minimum_own_s:.1f} s |
| ratio drain / minimum | **{r.ratio:.2f}** (vs own share: {r.drain_s / r.minimum_own_s:.2f}) |
| drain rate (first event in the sandbox to the last) ÷ envelope | {drain_verdict} |
| event-send requests (by status) | {sent:,} ({by_status}) |
| 429s | {rejected_429} |
| send duration p50 / p99 (sandbox answer, from `attempts`) | {p50:.0f} / {p99:.0f} ms |
| events/s delivered, per tenth of the drain | {", ".join(f"{x:,}" for x in r.rates)} |
| items at the end | {", ".join(f"{s}: {n:,}" for s, n in sorted(r.states.items()))} |
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--events-rps", type=int, default=20, help="sandbox's and portal's")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after (s)")
    parser.add_argument("--json", type=Path, default=None, help="keep the samples here")
    parser.add_argument(
        "--safety", type=float, default=SAFETY, help="the portal's limits.safety (1.0: alone)"
    )
    args = parser.parse_args()
    print(report(run(args.events, args.events_rps, args.timeout, args.json, args.safety)))


if __name__ == "__main__":
    main()
