"""Redis CPU per appended event as the key space grows: the Redis side of batch ingest.

Run by hand, never in CI (read the figures of one run together)::

    python benchmarks/redis_append.py                           # this tree, 5 phases
    python benchmarks/redis_append.py --base /tmp/base --runs 2  # and another tree, alternating
    python benchmarks/redis_append.py --config "hash-max-listpack-value 4096" --runs 2
                                        # and this tree on a server with that setting, alternating

Each run starts a ``redis-server`` of its own (``--port``, pinned to ``--redis-cpu``, nothing on
disk) and, in a child process with the tree first on ``PYTHONPATH``, calls that tree's
``RedisStorage.append`` with batches of 100 mapped ``Order Completed`` tracks (a unique
messageId, a user and an email in the payload, ~400 bytes, one destination), as a batch request
stores them. Each phase appends ``--batches`` batches and reports the server's CPU time over
the phase (``utime + stime`` of ``/proc/<pid>/stat``) per event, its keys and its memory per
event, so the cost of a growing store shows: Redis grows its hash tables by doubling and moves
every entry when it does, so a phase that crosses a power of two costs more.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import asyncio, json, os, sys, time, uuid
from forwarder.storage.base import NewEvent
from forwarder.storage.redis import RedisStorage

port, pid, phases, batches = (int(a) for a in sys.argv[1:5])


def cpu() -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def payload(i: int) -> bytes:
    return json.dumps({
        "type": "track", "event": "Order Completed", "messageId": str(uuid.uuid4()),
        "userId": f"user-{i}", "timestamp": "2026-12-06T10:00:00.000Z",
        "context": {"traits": {"email": f"u{i}@example.com"}, "ip": "10.0.0.1"},
        "properties": {"order_id": f"o-{i}", "total": 42.5, "currency": "USD"},
    }).encode()


async def main() -> None:
    storage = RedisStorage(f"redis://127.0.0.1:{port}/0", prefix="bench")
    await storage.open()
    n = 0
    for _ in range(phases):
        before, started = cpu(), time.perf_counter()
        for _ in range(batches):
            now = time.time()
            events = [
                NewEvent("main", str(uuid.uuid4()), "backend", "track", "Order Completed", now,
                         payload(n + j), ("conversions",))
                for j in range(100)
            ]
            n += 100
            await storage.append(events, now=now, dedup_window_s=86400)
        spent = cpu() - before
        info = await storage.client.info("memory")
        print(json.dumps({
            "events": n, "keys": await storage.client.dbsize(),
            "redis_us_per_event": 1e6 * spent / (batches * 100),
            "wall_s": time.perf_counter() - started,
            "memory_per_event": info["used_memory"] / n,
        }), flush=True)
    await storage.close()


asyncio.run(main())
"""


def run(tree: Path, args: argparse.Namespace, config: list[str]) -> list[dict[str, float]]:
    """One tree's phases on a fresh redis-server (``config``: more of its settings)."""
    server = subprocess.Popen(
        [
            "taskset",
            "-c",
            args.redis_cpu,
            "redis-server",
            "--port",
            str(args.port),
            "--save",
            "",
            "--appendonly",
            "no",
            *config,
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            ping = subprocess.run(["redis-cli", "-p", str(args.port), "PING"], capture_output=True)
            if ping.stdout.strip() == b"PONG":
                break
            time.sleep(0.1)
        env = {**os.environ, "PYTHONPATH": str(tree)}
        child = [
            sys.executable,
            "-c",
            CHILD,
            str(args.port),
            str(server.pid),
            str(args.phases),
            str(args.batches),
        ]
        out = subprocess.run(
            ["taskset", "-c", args.client_cpu, *child],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=tree,
        )
        return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, help="another tree, measured alternately")
    parser.add_argument("--runs", type=int, default=1, help="runs of each tree")
    parser.add_argument("--phases", type=int, default=5)
    parser.add_argument("--batches", type=int, default=2500, help="100-event batches a phase")
    parser.add_argument("--port", type=int, default=6391)
    parser.add_argument("--redis-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    parser.add_argument(
        "--config",
        help='a redis-server setting, e.g. "hash-max-listpack-value 4096": this tree '
        "is also measured on a server with it, alternately",
    )
    args = parser.parse_args()
    trees = [("this", HERE.parent, [])] + ([("base", args.base.resolve(), [])] if args.base else [])
    if args.config:
        name, *value = args.config.split()
        trees.append((f"this, {args.config}", HERE.parent, [f"--{name}", *value]))
    print(
        "| tree | run | "
        + " | ".join(f"phase {p + 1}" for p in range(args.phases))
        + " | mean µs | bytes/event at the end |"
    )
    print("|---|---:|" + "---:|" * (args.phases + 2))
    for r in range(args.runs):
        for name, tree, config in trees if r % 2 == 0 else trees[::-1]:
            phases = run(tree, args, config)
            cells = [f"{p['redis_us_per_event']:.1f}" for p in phases]
            mean = sum(p["redis_us_per_event"] for p in phases) / len(phases)
            print(
                f"| {name} | {r + 1} | "
                + " | ".join(cells)
                + f" | {mean:.1f} | {phases[-1]['memory_per_event']:.0f} |",
                flush=True,
            )
    print(
        f"\nphases of {args.batches * 100:,} events; keys at the end of each: "
        + ", ".join(f"{p['keys']:,}" for p in phases)
    )


if __name__ == "__main__":
    main()
