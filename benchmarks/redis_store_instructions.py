"""What the Redis store costs a delivering process per event, in instructions (callgrind), and
what it costs Redis: deterministic where CPU times of a few µs drift by 20 % on a busy machine.

Run by hand, never in CI::

    python benchmarks/redis_store_instructions.py              # every call of a batch together
    python benchmarks/redis_store_instructions.py --steps      # and each call on its own

It starts a ``redis-server`` of its own (``--port``, AOF on as in production, ``hz 1`` so its
timer adds little) under ``valgrind --tool=callgrind`` with instrumentation off, fills it through
the real ingest (``delivery_cpu.py``'s fill: ``forwarder serve`` with ``delivery = false``, mapped
``Order Completed`` tracks of 1,000 users with an email each), then runs a client under callgrind
too. Per round the client asks the store what a worker asks it per delivered batch of 500:
``lease``, ``people_of`` (the batch's userIds), ``touches_of`` (the same), ``record_attempts``
(one attempt) and ``finish`` (delivered, one outcome). Its instrumentation, and the server's, is
switched on around the rounds only; the figures are the extra instructions of 6 rounds over 2,
per event: the client's main thread (the store's Python and redis-py, the event loop's share of
its awaits) and the whole Redis server (scripts, replies, AOF).

The event's keys come from a table by its ``messageId``, not by decoding its payload: decoding,
identity choice and mapping are the delivery code's cost, not the store's (see
``delivery_instructions.py``). With ``--steps`` each call but the lease is counted as what
rounds without it save (a lease needs none of them); the lease is what remains.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import delivery_cpu  # noqa: E402 - after the path fix
from benchmarks.callgrind import VALGRIND, instrument, totals  # noqa: E402
from benchmarks.processes import cpu_s  # noqa: E402
from forwarder.identity.keys import person_keys  # noqa: E402
from forwarder.storage.base import Attempt, Key  # noqa: E402
from forwarder.storage.outcomes import Outcome, Reason  # noqa: E402
from forwarder.storage.redis.store import RedisStorage  # noqa: E402

BATCH = 500
STEPS = ("lease", "people_of", "touches_of", "record_attempts", "finish")
DELIVERED = Outcome(Reason.DELIVERED, identifier="email", notes=("used email from graph",))


def instrument_all(on: bool, *pids: int) -> None:
    for pid in pids:
        instrument(on, pid)


class Round:
    """One delivered batch's storage calls, step by step (``STEPS``)."""

    def __init__(self, storage: RedisStorage, run_id: str) -> None:
        self.storage = storage
        self.keys: list[list[Key]] = [
            person_keys(delivery_cpu.event(n, run_id)) for n in range(delivery_cpu.USERS)
        ]
        self.items: list[Any] = []
        self.own: list[list[Key]] = []

    async def lease(self) -> None:
        self.items = await self.storage.lease(
            "main", "conversions", limit=BATCH, now=time.time(), lease_s=120.0
        )
        users, keys = delivery_cpu.USERS, self.keys
        self.own = [keys[int(i.event.message_id[-9:]) % users] for i in self.items]

    async def people_of(self) -> None:
        wanted = list(dict.fromkeys(k for keys in self.own for k in keys))
        await self.storage.people_of("main", wanted)

    async def touches_of(self) -> None:
        wanted = list(dict.fromkeys(k for keys in self.own for k in keys if k[0] == "userId"))
        await self.storage.touches_of("main", wanted)

    async def record_attempts(self) -> None:
        ids = tuple(i.id for i in self.items)
        attempt = Attempt(ids, time.time(), "/events/v3/send/batch", 204, 12.5, None, None)
        await self.storage.record_attempts([attempt])

    async def finish(self) -> None:
        ids = [i.id for i in self.items]
        await self.storage.finish(ids, "delivered", now=time.time(), outcome=DELIVERED)

    def step(self, name: str) -> Callable[[], Awaitable[None]]:
        step: Callable[[], Awaitable[None]] = getattr(self, name)
        return step


async def rounds(url: str, run_id: str, n: int, without: str, server: int) -> None:
    """Inside callgrind: a warm-up round, then ``n`` rounds instrumented, each without the step
    ``without`` (none when empty)."""
    storage = RedisStorage(url)
    await storage.open()
    work = Round(storage, run_id)
    for name in STEPS:  # scripts loaded, connections made, caches warm
        await work.step(name)()
    steps = [work.step(name) for name in STEPS if name != without]
    instrument_all(True, server, os.getpid())  # the client counts least of the switching
    for _ in range(n):
        for step in steps:
            await step()
    instrument_all(False, os.getpid(), server)
    await storage.close()


async def timed(url: str, run_id: str, n: int, server: int) -> None:
    """Natively: ``n`` rounds after a warm-up, CPU µs per event of this thread by step and of
    the Redis server (``/proc``: noisy, unlike the instructions)."""
    storage = RedisStorage(url)
    await storage.open()
    work = Round(storage, run_id)
    for name in STEPS:
        await work.step(name)()
    spent = dict.fromkeys(STEPS, 0.0)
    redis0 = cpu_s(server)
    for _ in range(n):
        for name in STEPS:
            t0 = time.thread_time()
            await work.step(name)()
            spent[name] += time.thread_time() - t0
    redis_s = cpu_s(server) - redis0
    await storage.close()
    events = n * BATCH
    steps = ", ".join(f"{name} {s / events * 1e6:.2f}" for name, s in spent.items())
    print(f"µs per event: client {sum(spent.values()) / events * 1e6:.2f} ({steps})")
    print(f"µs per event: Redis {redis_s / events * 1e6:.2f}")


class Meter:
    """The client runs and the callgrind'ed server they drive."""

    def __init__(self, work: Path, url: str, run_id: str, server_pid: int) -> None:
        self.work, self.url, self.run_id, self.server_pid = work, url, run_id, server_pid
        self.dumps = 0

    def server_dump(self) -> int:
        """The server's instructions since its last dump (a dump zeroes them)."""
        before = set(self.work.glob("redis.out*"))
        subprocess.run(["callgrind_control", "-d", str(self.server_pid)], capture_output=True)
        for _ in range(200):
            new = set(self.work.glob("redis.out*")) - before
            if new:
                time.sleep(0.2)  # written whole before we read it
                return sum(totals(p) for p in new)
            time.sleep(0.05)
        raise RuntimeError("the server wrote no dump")

    def count(self, n: int, without: str) -> tuple[int, int]:
        """(client main-thread, server) instructions of a run of ``n`` rounds."""
        self.server_dump()  # zero what the server counted before
        out = self.work / f"client-{without or 'all'}-{n}.out"
        cmd = [*VALGRIND, f"--callgrind-out-file={out}", sys.executable, __file__]
        cmd += ["--inside", str(n), f"--without={without}", "--url", self.url]
        cmd += ["--run-id", self.run_id, "--server-pid", str(self.server_pid)]
        subprocess.run(cmd, check=True, capture_output=True)
        return totals(out.with_name(out.name + "-01")), self.server_dump()

    def per_event(self, without: str = "") -> tuple[float, float]:
        (c2, s2), (c6, s6) = self.count(2, without), self.count(6, without)
        return (c6 - c2) / (4 * BATCH), (s6 - s2) / (4 * BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, help="the backlog filled (default: what the runs lease, and more)"
    )
    parser.add_argument("--port", type=int, default=6392, help="the private redis-server's")
    parser.add_argument("--steps", action="store_true", help="and what each call costs")
    parser.add_argument("--timed", type=int, help="natively instead: CPU time of this many rounds")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this folder")
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--without", default="", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside is not None:
        asyncio.run(rounds(args.url, args.run_id, args.inside, args.without, args.server_pid))
        return
    # each figure is two runs leasing 1 + 2 and 1 + 6 batches: 10 batches
    args.events = args.events or (1 + 4 * args.steps) * 10 * BATCH + 2_000
    if args.timed:
        args.events = max(args.events, (args.timed + 1) * BATCH + 2_000)
    with tempfile.TemporaryDirectory(prefix="redis-store-instructions-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        server_cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        server_cmd += [f"--callgrind-out-file={work / 'redis.out'}"]
        server_cmd = [] if args.timed else server_cmd
        server_cmd += ["redis-server"]
        server_cmd += ["--port", str(args.port), "--dir", str(work), "--save", "", "--hz", "1"]
        server_cmd += ["--appendonly", "yes", "--appendfsync", "everysec"]
        server = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                ping = ["redis-cli", "-p", str(args.port), "PING"]
                if subprocess.run(ping, capture_output=True, text=True).stdout.strip() == "PONG":
                    break
                time.sleep(0.1)
            fill_args = argparse.Namespace(events=args.events, single=10, events_rps=10_000)
            fill_args.server_cpu, fill_args.load_cpu, fill_args.profile = None, None, None
            bench = delivery_cpu.Bench(fill_args, "redis", work)
            bench.url = f"redis://127.0.0.1:{args.port}/0?prefix={bench.prefix}&lease_s=3600"
            started = time.monotonic()
            bench.fill()
            print(f"filled {args.events} events in {time.monotonic() - started:.0f} s", flush=True)
            if args.timed:
                asyncio.run(timed(bench.url, bench.run_id, args.timed, server.pid))
                return
            meter = Meter(work, bench.url, bench.run_id, server.pid)
            client, redis = meter.per_event()
            print(f"per event, a batch's calls: client {client:,.0f}, Redis {redis:,.0f}")
            if args.steps:
                rest = (client, redis)
                for name in STEPS[1:]:
                    c, r = meter.per_event(name)
                    print(f"  {name}: client {client - c:,.0f}, Redis {redis - r:,.0f}")
                    rest = (rest[0] - client + c, rest[1] - redis + r)
                print(f"  lease (the rest): client {rest[0]:,.0f}, Redis {rest[1]:,.0f}")
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
