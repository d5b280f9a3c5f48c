"""SQLite writer-thread instructions per delivered event, counted by callgrind (deterministic on
a busy machine, where the writer's few µs of CPU per event drift by 20 %).

Run by hand, never in CI. Fill a store once (the real ingest, as ``delivery_cpu.py`` fills it),
then count on copies of it::

    python benchmarks/writer_instructions.py --fill /tmp/writer-fill --events 20000
    python benchmarks/writer_instructions.py --config /tmp/writer-fill/forwarder-fill.toml

Each round is what the delivery worker asks of the store for a batch HubSpot took: ``lease``
500 conversions items, ``record_attempts`` (queued, not awaited) and ``finish`` them
``delivered``, with the shared outcome a destination gives. The store is copied first (leasing
changes it), opened, one round runs to warm the caches, then 2 and 6 rounds run under
``valgrind --tool=callgrind --separate-threads=yes`` with instrumentation switched on around the
rounds only. The figure is the writer thread's instructions of the 4 extra rounds / 2,000
(the commit's fsync is kernel time: not counted). ``--by-job`` also prints them per storage
call, each measured alone in the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.callgrind import copy_sqlite, instrument, thread_totals  # noqa: E402 - path fix
from forwarder.config import load_settings  # noqa: E402
from forwarder.storage import sqlite_path  # noqa: E402
from forwarder.storage.base import Attempt  # noqa: E402
from forwarder.storage.outcomes import Outcome, Reason  # noqa: E402
from forwarder.storage.sqlite.store import SqliteStorage  # noqa: E402

BATCH = 500
LEASE_S = 120.0
DELIVERED = Outcome(Reason.DELIVERED, identifier="email", notes=("used email from the event",))
JOBS = ("lease", "record_attempts", "finish")


async def one_round(storage: SqliteStorage, portal: str, measured: str | None) -> None:
    """One delivered batch; with ``measured``, instrumentation is on around that call only."""
    if measured == "lease":
        instrument(True)
    items = await storage.lease(
        portal, "conversions", limit=BATCH, now=time.time(), lease_s=LEASE_S
    )
    if measured == "lease":
        instrument(False)
    assert len(items) == BATCH, f"the store ran out of items ({len(items)} leased)"
    ids = tuple(i.id for i in items)
    attempt = Attempt(ids, time.time(), "events.send_batch", 204, 80.0, reason=Reason.DELIVERED)
    if measured == "record_attempts":
        instrument(True)
    await storage.record_attempts([attempt])
    if measured == "record_attempts":
        await storage.attempts_of(())  # waits for the queued job
        instrument(False)
    if measured == "finish":
        instrument(True)
    await storage.finish(ids, "delivered", now=time.time(), outcome=DELIVERED)
    if measured == "finish":
        instrument(False)


async def rounds(config: Path, n: int, job: str | None) -> None:
    """Inside callgrind: ``n`` rounds (``job``: instrumented around that call alone)."""
    settings = load_settings(config)
    with tempfile.TemporaryDirectory() as tmp:
        store = copy_sqlite(sqlite_path(settings.storage.url), Path(tmp))
        storage = SqliteStorage(store, synchronous=settings.storage.synchronous)
        await storage.open()
        portal = next(iter(settings.portals))
        await one_round(storage, portal, None)  # caches warm, as in a running server
        if job is None:
            instrument(True)
        for _ in range(n):
            await one_round(storage, portal, job)
        if job is None:
            instrument(False)
        await storage.close()


def count(config: Path, n: int, job: str | None) -> dict[int, int]:
    """Instructions per thread (1 = main, 2 = the writer) of a run of ``n`` rounds."""
    args = ("--config", str(config), "--inside", str(n), *(["--job", job] if job else []))
    return dict(enumerate(thread_totals(__file__, *args), start=1))


def per_event(config: Path, job: str | None) -> dict[int, float]:
    few, many = count(config, 2, job), count(config, 6, job)
    return {t: (many[t] - few.get(t, 0)) / (4 * BATCH) for t in many}


def fill(work: Path, events: int) -> None:
    """A store of ``events`` delivered-path events through the real ingest (delivery off)."""
    from benchmarks.delivery_cpu import Bench

    work.mkdir(parents=True, exist_ok=True)
    args = argparse.Namespace(
        events=events, single=1, events_rps=10_000, server_cpu=None, load_cpu=None
    )
    Bench(args, "sqlite", work).fill()
    print(f"filled: {work / 'forwarder-fill.toml'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, help="the filled store's config")
    parser.add_argument("--fill", type=Path, metavar="DIR", help="fill a store in DIR")
    parser.add_argument("--events", type=int, default=20_000, help="events to fill")
    parser.add_argument("--by-job", action="store_true", help="also count each call alone")
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill is not None:
        fill(args.fill, args.events)
        return
    if args.inside is not None:
        asyncio.run(rounds(args.config, args.inside, args.job))
        return
    for job in (None, *JOBS) if args.by_job else (None,):
        threads = per_event(args.config, job)
        writer = threads.get(2, 0.0)
        others = {t: round(v) for t, v in threads.items() if t != 2 and abs(v) >= 1}
        print(
            f"{job or 'delivered batch'}: writer-thread instructions per event {writer:,.0f}"
            f" (other threads: {others})",
            flush=True,
        )


if __name__ == "__main__":
    main()
