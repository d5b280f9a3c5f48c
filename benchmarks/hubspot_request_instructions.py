"""Event-loop instructions of one HubSpot request, counted by callgrind: what of the HTTP stack
(httpx, httpcore, h11, anyio, the loop) a delivered batch pays per request and what per event.

Run by hand, never in CI. Fill a store first (``delivery_cpu.py --keep DIR``), then::

    python benchmarks/hubspot_request_instructions.py --config DIR/forwarder-fill.toml

It builds delivery as the server does (``DeliveryWiring``, uvloop, the settled collector) against
a sandbox in its own process, prepares conversions batches of 500 from a copy of the store, and
counts the main thread's instructions of 1 and then 4 sends of each kind, each dumped apart; a
kind's figure is (4 sends - 1 send) / 3, so the counting's own start and stop cancel out:

- ``batch``: the conversions destination's ``send`` of a prepared batch (encode, request,
  answer), as the worker calls it;
- ``empty``: the client's ``send_event_batch`` of no input (the same request, a 13-byte body);
- ``build``: httpx's ``build_request`` alone (URL, headers, cookies, body stream).

``batch`` - ``empty`` is what grows with the events of a request.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.callgrind import VALGRIND, copy_sqlite, totals  # noqa: E402 - after the path fix
from benchmarks.processes import process, wait_http  # noqa: E402
from benchmarks.warm_worker import warm_worker  # noqa: E402
from forwarder.config import load_settings  # noqa: E402
from forwarder.storage import sqlite_path  # noqa: E402
from tests.support import free_port  # noqa: E402

BATCH = 500
KINDS = ("batch", "empty", "build")


def control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(os.getpid())], capture_output=True)


async def sends(config: Path, store: str, sandbox: str) -> None:
    """Inside callgrind: 1 then 4 sends of each kind, instrumented and dumped apart."""
    async with warm_worker(config, store, sandbox) as worker:
        batches = [await worker.destination.prepare(await worker._form_batch()) for _ in range(5)]
        client, route = worker._client, worker.destination.route
        runs: dict[str, Callable[[int], Awaitable[object]]] = {
            "batch": lambda i: worker.destination.send(client, batches[i]),  # type: ignore[arg-type]
            "empty": lambda i: client.send_event_batch([]),
        }
        for kind in KINDS:
            for n in (1, 4):
                control("-i", "on")
                for i in range(n):
                    if kind == "build":
                        client._http.build_request("POST", route, content=b'{"inputs":[]}')
                    else:
                        await runs[kind](i)
                control("-i", "off")
                control("-d", f"{kind}-{n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the filled store's config")
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--sandbox", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.store is not None:
        import uvloop

        uvloop.run(sends(args.config, args.store, args.sandbox))
        return
    port = free_port()
    sandbox = f"http://127.0.0.1:{port}"
    portal_id = next(iter(load_settings(args.config).portals.values())).portal_id
    cmd = [sys.executable, "-m", "forwarder", "sandbox", "--port", str(port)]
    cmd += ["--portal-id", str(portal_id), "--events-rps", "10000", "--limit-10s", "1000000"]
    cmd += ["--daily", "1000000000", "--define", "order_completed:revenue"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        process(cmd, Path(tmp) / "sandbox.log", "0") as proc,
    ):
        wait_http(f"{sandbox}/_sandbox", proc)
        store = copy_sqlite(sqlite_path(load_settings(args.config).storage.url), Path(tmp))
        out = Path(tmp) / "callgrind.out"
        inside = [sys.executable, __file__, "--config", str(args.config)]
        inside += ["--store", str(store), "--sandbox", sandbox]
        run = [*VALGRIND, f"--callgrind-out-file={out}", *inside]
        subprocess.run(run, check=True, capture_output=True)
        counted = {}
        for dump in Path(tmp).glob("callgrind.out.*-01"):  # the main thread's dumps
            text = dump.read_text()
            label = next(x for x in text.splitlines() if x.startswith("desc: Trigger"))
            counted[label.split()[-1]] = totals(dump)
    per_request = {kind: (counted[f"{kind}-4"] - counted[f"{kind}-1"]) / 3 for kind in KINDS}
    for kind in KINDS:
        print(f"{kind:6} {per_request[kind]:>12,.0f} instructions per request")
    request = per_request["empty"] / BATCH
    grows = (per_request["batch"] - per_request["empty"]) / BATCH
    print(f"per event of a batch of {BATCH}: the request {request:,.0f}, its body {grows:,.0f}")


if __name__ == "__main__":
    main()
