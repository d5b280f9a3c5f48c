"""Delivery benchmark: drain a backlog into the sandbox at a time-scaled envelope.

Run by hand, never in CI::

    python benchmarks/delivery.py                     # 200,000 conversions + 50,000 contacts
    python benchmarks/delivery.py --events 20000 --contacts 5000   # a quick look

For each envelope (``events`` with conversions, ``crm`` with contact upserts):

1. **fill**: the backlog goes through the real ingest (``POST /v1/batch`` on the whole app,
   in-process) with ``server.delivery = false``, into a fresh SQLite file (``synchronous=full``).
2. **drain**: a second app on the same file, delivery on, against its in-process sandbox
   (``httpx.ASGITransport``) whose envelope is time-scaled like the forwarder's
   (``limits.time_scale``). Measured from the start of delivery to the last ``delivered``.
3. **latency** (conversions): a producer posts at half of the envelope's capacity for a while;
   each event's latency is the sandbox's ``receivedAt`` minus the moment its ``POST`` was
   answered (accepted and durable). Both are ``time.monotonic()`` in this one process.

Figures: envelope utilisation = achieved requests per window / allowed (HubSpot's allowance,
and the forwarder's own share of it after ``safety``), inputs per request, 429s, drain time
against the theoretical minimum (events / batch size / allowed rate at HubSpot's allowance).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import math
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import (
    ContactSettings,
    EventMapping,
    LimitSettings,
    PortalSettings,
    Secret,
    ServerSettings,
    Settings,
    SourceSettings,
    StorageSettings,
)
from forwarder.delivery.destinations import stable_uuid
from forwarder.delivery.envelopes import scaled
from forwarder.hubspot.paths import DEFAULT_API_VERSION, paths_for
from forwarder.sandbox import Sandbox, SandboxConfig
from forwarder.telemetry import Redactor, configure_logging

KEY = "srv_bench_key_0123456789"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}
PORTAL_ID = 123456
CHUNK = 2_500
PATHS = paths_for(DEFAULT_API_VERSION)
"""The paths the benchmark's portal (default API version) calls, as the attempt log names them."""


@dataclass(frozen=True)
class Envelope:
    """One envelope under test."""

    name: str
    destination: str
    route: str
    batch_size: int
    allowed: int
    """HubSpot's allowance per window (before ``safety``)."""
    window_s: float
    """The window after time scaling."""


def settings_for(db: Path, limits: LimitSettings, *, delivery: bool) -> Settings:
    portal = PortalSettings(
        portal_id=PORTAL_ID,
        max_delay_s=1.0,
        events=(EventMapping(event="Order Completed", custom_event="order_completed"),),
        contacts=ContactSettings(upsert=True, properties={"plan": "plan"}),
        limits=limits,
    )
    return Settings(
        server=ServerSettings(log_requests=False, delivery=delivery),
        storage=StorageSettings(url=f"sqlite:///{db}", max_backlog=10_000_000),
        sources=(SourceSettings(name="bench", write_key=Secret(KEY), portal="main"),),
        portals={"main": portal},
    )


def with_plan(_: str, config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(config, contact_properties=("plan",))


def track(i: int, prefix: str) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"user-{i}",
        "messageId": f"{prefix}-{i}",
        "event": "Order Completed",
        "properties": {},
        "context": {"traits": {"email": f"user{i}@example.com"}},
    }


def identify(i: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"user-{i}",
        "messageId": f"identify-{i}",
        "traits": {"email": f"lead{i}@example.com", "plan": "pro"},
    }


async def post(client: AsyncTestClient, events: list[dict[str, Any]]) -> None:  # type: ignore[type-arg]
    response = await client.post("/v1/batch", json={"batch": events}, headers=AUTH)
    assert response.status_code == 200, response.text


async def fill(db: Path, limits: LimitSettings, events: list[dict[str, Any]]) -> float:
    """The backlog through the real ingest, nothing delivered; events/s."""
    app = create_app(settings_for(db, limits, delivery=False), configure_sandbox=with_plan)
    started = time.perf_counter()
    async with AsyncTestClient(app=app) as client:
        for start in range(0, len(events), CHUNK):
            await post(client, events[start : start + CHUNK])
    return len(events) / (time.perf_counter() - started)


def arrived(sandbox: Sandbox, destination: str) -> int:
    if destination == "conversions":
        return sum(len(events) for events in sandbox.events.received.values())
    return len(sandbox.contacts.by_id)


async def delivered(app: Any, destination: str) -> int:
    counts = await app.state.storage.counts()
    return int(counts.get(("main", destination, "delivered"), 0))


async def drain(db: Path, limits: LimitSettings, envelope: Envelope, total: int) -> dict[str, Any]:
    """Deliver the backlog; the figures of the drain."""
    app = create_app(settings_for(db, limits, delivery=True), configure_sandbox=with_plan)
    async with AsyncTestClient(app=app):
        sandbox: Sandbox = app.state.sandboxes["main"].state.sandbox
        started = time.perf_counter()
        # Watch the sandbox, not storage: ``counts()`` scans the open items, and polling it
        # would compete with delivery for the SQLite writer thread.
        while arrived(sandbox, envelope.destination) < total:  # noqa: ASYNC110 - polls memory
            await asyncio.sleep(0.02)
        drain_s = time.perf_counter() - started
        while await delivered(app, envelope.destination) < total:  # noqa: ASYNC110 - last acks
            await asyncio.sleep(0.2)
        statuses = {s: n for (r, s), n in sandbox.statuses.items() if r == envelope.route}
        times = request_times(db, sandbox_route(envelope))
        return report(envelope, total, drain_s, statuses, sandbox.rate_stats(), limits, times)


def request_times(db: Path, route: str) -> list[float]:
    """When each request to ``route`` was answered (the forwarder's attempt log, wall clock)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT at FROM attempts WHERE route = ? ORDER BY at", (route,))
        return [float(r[0]) for r in rows]


def report(
    envelope: Envelope,
    total: int,
    drain_s: float,
    statuses: dict[int, int],
    rates: dict[str, Any],
    limits: LimitSettings,
    times: list[float],
) -> dict[str, Any]:
    """Utilisation = achieved requests per window (first to last request) / allowed.

    Also the least time a perfect limiter needs from the first to the last request: a
    sliding-window log starting empty lets ``own`` requests go at once and ``own`` more each
    window after, so n requests need (ceil(n / own) - 1) windows.
    """
    requests = sum(statuses.values())
    ok = sum(n for s, n in statuses.items() if s < 300)
    own = scaled(envelope.allowed, limits.safety)
    span_s = times[-1] - times[0]
    least_s = (math.ceil(len(times) / own) - 1) * envelope.window_s
    steady = len(times) / span_s * envelope.window_s if span_s > 2 * envelope.window_s else None
    rate = envelope.allowed / envelope.window_s
    return {
        "envelope": envelope.name,
        "window_s": envelope.window_s,
        "events": total,
        "requests": requests,
        "status": statuses,
        "429": statuses.get(429, 0),
        "inputs_per_request": round(total / ok, 1),
        "share_of_max_batch": round(total / ok / envelope.batch_size, 3),
        "drain_s": round(drain_s, 2),
        "minimum_s": round(total / envelope.batch_size / rate, 2),
        "minimum_own_share_s": round(total / envelope.batch_size / (own / envelope.window_s), 2),
        "allowed_per_window": envelope.allowed,
        "own_per_window": own,
        "first_to_last_request_s": round(span_s, 2),
        "least_first_to_last_s": round(least_s, 2),
        "achieved_per_window": None if steady is None else round(steady, 2),
        "utilisation_of_allowance": None if steady is None else round(steady / envelope.allowed, 3),
        "utilisation_of_own_share": None if steady is None else round(steady / own, 3),
        "sandbox_peaks": {
            k: rates[k] for k in ("peakInTenSecondWindow", "peakEventSendsPerSecond")
        },
    }


async def latency(db: Path, limits: LimitSettings, envelope: Envelope, duration_s: float) -> Any:
    """Post at half the envelope's event capacity; accepted -> received by the sandbox."""
    capacity = scaled(envelope.allowed, limits.safety) * envelope.batch_size / envelope.window_s
    tick_s = 0.05
    per_tick = max(1, round(capacity / 2 * tick_s))
    accepted: dict[str, float] = {}
    app = create_app(settings_for(db, limits, delivery=True), configure_sandbox=with_plan)
    async with AsyncTestClient(app=app) as client:
        sandbox: Sandbox = app.state.sandboxes["main"].state.sandbox
        begin = time.monotonic()
        n = 0
        while time.monotonic() - begin < duration_s:
            await asyncio.sleep(max(0.0, begin + n * tick_s - time.monotonic()))
            batch = [track(n * per_tick + k, "latency") for k in range(per_tick)]
            await post(client, batch)
            now = time.monotonic()  # the POST is answered once the events are durable
            accepted.update((e["messageId"], now) for e in batch)
            n += 1
        while arrived(sandbox, "conversions") < len(accepted):  # noqa: ASYNC110 - polls memory
            await asyncio.sleep(0.05)
        received = {e.uuid: e.received_at for e in sandbox.received_events()}
    samples = sorted(received[stable_uuid(PORTAL_ID, m)] - at for m, at in accepted.items())
    p = statistics.quantiles(samples, n=100, method="inclusive")
    late_s = time.monotonic() - begin - duration_s
    return {
        "envelope_events_per_s": round(capacity),
        "offered_events_per_s": round(len(accepted) / duration_s),
        "events": len(accepted),
        "p50_s": round(p[49], 3),
        "p99_s": round(p[98], 3),
        "max_s": round(samples[-1], 3),
        "target_p99_s": 1.0 + 0.5,
        "producer_overrun_s": round(late_s, 2),
    }


async def run_envelope(
    envelope: Envelope, limits: LimitSettings, events: list[dict[str, Any]]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "forwarder.db"
        fill_rate = await fill(db, limits, events)
        figures = await drain(db, limits, envelope, len(events))
        figures["fill_events_per_s"] = round(fill_rate)
        return figures


def sandbox_route(envelope: Envelope) -> str:
    if envelope.destination == "conversions":
        return PATHS.events_send_batch
    return PATHS.contacts_batch_upsert


def events_envelope(per_s: int, scale: float) -> Envelope:
    return Envelope("events", "conversions", "events.send_batch", 500, per_s, 1.0 / scale)


def show(figures: dict[str, Any]) -> None:
    print(msgspec.json.format(msgspec.json.encode(figures)).decode(), flush=True)


async def main(args: argparse.Namespace) -> None:
    if args.events:
        limits = LimitSettings(events_per_s=args.events_per_s, time_scale=args.events_scale)
        envelope = events_envelope(args.events_per_s, args.events_scale)
        show(await run_envelope(envelope, limits, [track(i, "b") for i in range(args.events)]))
    if args.contacts:
        limits = LimitSettings(crm_per_10s=args.crm_per_10s, time_scale=args.crm_scale)
        envelope = Envelope(
            "crm", "contacts", "contacts.batch_upsert", 100, args.crm_per_10s, 10.0 / args.crm_scale
        )
        show(await run_envelope(envelope, limits, [identify(i) for i in range(args.contacts)]))
    if args.latency_s:
        per_s = args.latency_events_per_s
        limits = LimitSettings(events_per_s=per_s)
        with tempfile.TemporaryDirectory() as tmp:
            figures = await latency(
                Path(tmp) / "forwarder.db", limits, events_envelope(per_s, 1.0), args.latency_s
            )
        show({"latency": figures})


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="conversions backlog")
    parser.add_argument("--events-per-s", type=int, default=10, help="HubSpot's send rate")
    parser.add_argument("--events-scale", type=float, default=1.0, help="time scale (events)")
    parser.add_argument("--contacts", type=int, default=100_000, help="contact upserts backlog")
    parser.add_argument("--crm-per-10s", type=int, default=190, help="CRM 10-second window")
    parser.add_argument("--crm-scale", type=float, default=2.5, help="time scale (CRM)")
    parser.add_argument("--latency-s", type=float, default=20.0, help="latency phase length")
    parser.add_argument(
        "--latency-events-per-s", type=int, default=4, help="envelope of the latency phase"
    )
    return parser.parse_args()


if __name__ == "__main__":
    # Warnings only: a log line per batch would measure the terminal, not the forwarder.
    configure_logging(Redactor([KEY]), level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main(parse()))
