"""Event-loop instructions per delivered event, counted by callgrind (deterministic on a busy
machine, where CPU times of a few µs drift by 20 %).

Run by hand, never in CI. Fill a store first with ``delivery_cpu.py``'s fill (the server
with ``delivery = false``), keep its config, then::

    python benchmarks/delivery_instructions.py --config /tmp/fill/forwarder-fill.toml

It leases one batch of 500 conversions items and runs ``Conversions.preview`` (map, identify,
inputs), the request body's encoding and the quality tally of it, 2 then 6 times, under
``valgrind --tool=callgrind --separate-threads=yes`` with instrumentation switched on around
the rounds only; the figure is the main thread's instructions of the 4 extra rounds / 2,000.
A SQLite store is copied first (leasing changes it); a Redis store gives up 500 items a run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.callgrind import copy_sqlite, instrument, thread_totals  # noqa: E402
from forwarder.config import load_settings  # noqa: E402 - after the path fix
from forwarder.delivery.attribution import Attributor  # noqa: E402
from forwarder.delivery.destinations.conversions import Conversions  # noqa: E402
from forwarder.delivery.mapping import Mapper  # noqa: E402
from forwarder.delivery.quality import DeliveryTally  # noqa: E402
from forwarder.hubspot.models import BatchInput  # noqa: E402
from forwarder.identity.resolve import Resolver  # noqa: E402
from forwarder.storage import create_storage, sqlite_path  # noqa: E402
from forwarder.tallies import QualityTally  # noqa: E402

BATCH = 500


async def rounds(config: Path, n: int) -> None:
    """Inside callgrind: ``n`` rounds of one batch, instrumented."""
    settings = load_settings(config)
    storage_settings = settings.storage
    with tempfile.TemporaryDirectory() as tmp:
        if storage_settings.url.startswith("sqlite"):
            url = f"sqlite:///{copy_sqlite(sqlite_path(storage_settings.url), Path(tmp))}"
            storage_settings = msgspec.structs.replace(storage_settings, url=url)
        storage = create_storage(storage_settings)
        await storage.open()
        name, portal = next(iter(settings.portals.items()))
        items = await storage.lease(name, "conversions", limit=BATCH, now=time.time(), lease_s=3600)
        resolver = Resolver(name, portal.identity_order, storage)
        attributor = Attributor(name, portal.attribution, storage)
        destination = Conversions(portal, Mapper(portal), None, resolver, attributor)  # type: ignore[arg-type]
        tally, encoder = DeliveryTally(QualityTally()), msgspec.json.Encoder()
        await destination.preview(items)  # caches warm, as in a running server
        instrument(True)
        for _ in range(n):
            ready = await destination.preview(items)
            encoder.encode(BatchInput([r.input for r in ready]))  # type: ignore[union-attr]
            tally.delivered(ready, time.time())  # type: ignore[arg-type]
        instrument(False)
        await storage.close()


def count(config: Path, n: int) -> int:
    """Main-thread instructions of a run of ``n`` rounds."""
    return thread_totals(__file__, "--config", str(config), "--inside", str(n))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the filled store's config")
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside is not None:
        asyncio.run(rounds(args.config, args.inside))
        return
    few, many = count(args.config, 2), count(args.config, 6)
    print(f"main-thread instructions per event: {(many - few) / (4 * BATCH):,.0f}")


if __name__ == "__main__":
    main()
