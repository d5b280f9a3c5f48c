"""Event-loop instructions per event of each stage of a conversions batch, counted by
callgrind: where ``delivery_instructions.py``'s figure goes.

Run by hand, never in CI. Fill a store first (``delivery_cpu.py --keep DIR``), then::

    python benchmarks/delivery_stage_instructions.py --config DIR/forwarder-fill.toml

It leases one batch of 500 conversions items from a copy of the store, settles the collector
as a server does, and runs each stage 3 times on it (``decode`` includes freeing what it
made) with callgrind's instrumentation on around that stage only, dumping each stage apart;
the figure is the main thread's instructions of a stage / 1,500.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forwarder import heap  # noqa: E402 - after the path fix
from forwarder.config import load_settings  # noqa: E402
from forwarder.delivery.attribution import Attributor  # noqa: E402
from forwarder.delivery.destinations.conversions import Conversions  # noqa: E402
from forwarder.delivery.mapping import Mapper  # noqa: E402
from forwarder.delivery.quality import DeliveryTally  # noqa: E402
from forwarder.events.payload import decode_payload  # noqa: E402
from forwarder.hubspot.models import BatchInput  # noqa: E402
from forwarder.identity.resolve import Resolver  # noqa: E402
from forwarder.storage import create_storage, sqlite_path  # noqa: E402
from forwarder.tallies import QualityTally  # noqa: E402

BATCH = 500
REPS = 3


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], capture_output=True)


async def stages(config: Path, store: Path) -> None:
    """Inside callgrind: each stage ``REPS`` times, instrumented and dumped apart."""
    settings = load_settings(config)
    storage = create_storage(msgspec.structs.replace(settings.storage, url=f"sqlite:///{store}"))
    await storage.open()
    name, portal = next(iter(settings.portals.items()))
    items = await storage.lease(name, "conversions", limit=BATCH, now=time.time(), lease_s=3600)
    resolver = Resolver(name, portal.identity_order, storage)
    attributor = Attributor(name, portal.attribution, storage)
    mapper = Mapper(portal)
    destination = Conversions(portal, mapper, None, resolver, attributor)  # type: ignore[arg-type]
    tally, encoder, decode = (
        DeliveryTally(QualityTally()),
        msgspec.json.Encoder(),
        decode_payload,  # what ``map_and_identify`` decodes each leased event into
    )
    heap.settle()
    datas = [decode(i.event.payload) for i in items]
    people = await resolver.people(datas)
    senders = [i.event.source for i in items]

    def mapped_all() -> Any:
        return destination._map(items)  # ``map_and_identify`` as conversions call it

    mapped = (await mapped_all())[1]
    ready = destination._inputs(mapped)
    runs: list[tuple[str, Callable[[], Any]]] = [
        ("decode", lambda: [decode(i.event.payload) for i in items]),
        ("people", lambda: resolver.people(datas)),
        ("identities", lambda: resolver.identities(datas, people)),
        ("attribute", lambda: attributor.attribute(datas, senders, people)),
        ("conversion", lambda: mapper.conversions_of(datas)),
        ("map_and_identify", mapped_all),
        ("inputs", lambda: destination._inputs(mapped)),
        ("preview", lambda: destination.preview(items)),
        ("encode", lambda: encoder.encode(BatchInput([r.input for r in ready]))),
        ("tally", lambda: tally.delivered(ready, time.time())),  # type: ignore[arg-type]
    ]
    for label, run in runs:
        if asyncio.iscoroutine(warm := run()):
            await warm
        control("-i", "on")
        for _ in range(REPS):
            if asyncio.iscoroutine(done := run()):
                done = await done
            del done  # what a stage made is freed inside its count
        control("-i", "off")
        control("-d", label)
    await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the filled store's config")
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.store is not None:
        asyncio.run(stages(args.config, args.store))
        return
    source = sqlite_path(load_settings(args.config).storage.url)
    with tempfile.TemporaryDirectory() as tmp:
        for f in source.parent.glob(source.name + "*"):
            shutil.copy(f, Path(tmp) / f.name)
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--instr-atstart=no"]
        cmd += [
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--config",
            str(args.config),
        ]
        subprocess.run(
            [*cmd, "--store", str(Path(tmp) / source.name)], check=True, capture_output=True
        )
        for dump in sorted(
            Path(tmp).glob("callgrind.out.*-01"),
            key=lambda p: int(p.name.split(".")[2].split("-")[0]),
        ):
            text = dump.read_text()
            label = next(x for x in text.splitlines() if x.startswith("desc: Trigger")).split()[-1]
            total = int(next(x for x in text.splitlines() if x.startswith("totals:")).split()[1])
            print(f"{label:18} {total / (REPS * BATCH):>8,.0f} instructions per event")


if __name__ == "__main__":
    main()
