"""Event-loop instructions per delivered event for a whole batch of the worker, counted by
callgrind: ``delivery_instructions.py``'s sibling, which covers the rest of the loop's share.

Run by hand, never in CI. Fill a store first (``delivery_cpu.py --keep DIR``), then::

    python benchmarks/delivery_instructions.py --config DIR/forwarder-fill.toml
    python benchmarks/delivery_worker_instructions.py --config DIR/forwarder-fill.toml

It builds delivery as the server does (``DeliveryWiring``, uvloop, the settled collector),
against a sandbox in its own process on ``--load-cpu``, and runs the conversions worker's
own per-batch code: ``_form_batch`` (the lease) then ``_deliver`` (map, identify, inputs,
envelope, the httpx send and its answer, the classifier, the attempt record, ``finish``, the
quality tally, metrics, the log line), 2 then 6 batches of 500, under ``valgrind
--tool=callgrind --separate-threads=yes`` with instrumentation switched on around the rounds
only; the figure is the main thread's instructions of the 4 extra batches / 2,000. The SQLite
writer's work runs on its own thread and is not counted. The store is copied first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.callgrind import copy_sqlite, instrument, thread_totals  # noqa: E402 - path fix
from benchmarks.processes import process, wait_http  # noqa: E402
from benchmarks.warm_worker import warm_worker  # noqa: E402
from forwarder.config import load_settings  # noqa: E402
from forwarder.storage import sqlite_path  # noqa: E402
from tests.support import free_port  # noqa: E402

BATCH = 500


async def rounds(config: Path, store: Path, sandbox: str, n: int) -> None:
    """Inside callgrind: ``n`` batches of the conversions worker, instrumented."""
    async with warm_worker(config, store, sandbox) as worker:
        instrument(True)
        for _ in range(n):
            await worker._deliver(await worker._form_batch())
        instrument(False)


def count(config: Path, sandbox: str, n: int) -> int:
    """Main-thread instructions of a run of ``n`` batches, on a fresh copy of the store."""
    source = sqlite_path(load_settings(config).storage.url)
    with tempfile.TemporaryDirectory() as tmp:
        store = copy_sqlite(source, Path(tmp))
        args = ("--config", str(config), "--store", str(store), "--sandbox", sandbox)
        return thread_totals(__file__, *args, "--inside", str(n))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the filled store's config")
    parser.add_argument("--load-cpu", default="0", help="the sandbox's CPU")
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sandbox", help=argparse.SUPPRESS)
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside is not None:
        import uvloop

        uvloop.run(rounds(args.config, args.store, args.sandbox, args.inside))
        return
    port = free_port()
    sandbox = f"http://127.0.0.1:{port}"
    portal_id = next(iter(load_settings(args.config).portals.values())).portal_id
    cmd = [sys.executable, "-m", "forwarder", "sandbox", "--port", str(port)]
    cmd += ["--portal-id", str(portal_id), "--events-rps", "10000", "--limit-10s", "1000000"]
    cmd += ["--daily", "1000000000", "--define", "order_completed:revenue"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        process(cmd, Path(tmp) / "sandbox.log", args.load_cpu) as proc,
    ):
        wait_http(f"{sandbox}/_sandbox", proc)
        few, many = count(args.config, sandbox, 2), count(args.config, sandbox, 6)
    print(f"main-thread instructions per event (worker batch): {(many - few) / (4 * BATCH):,.0f}")


if __name__ == "__main__":
    main()
