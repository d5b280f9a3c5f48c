"""Replicas on Redis: aggregate ingest of two replicas vs one, one Redis replica vs SQLite, and
Redis round trips per accepted event, in one run.

    python benchmarks/replicas.py [--seconds 8] [--concurrency 32] [--batch 10]

Each setup runs ingest-only replicas (``server.delivery = false``: delivery has its own
benchmark) against a private redis-server (AOF on, ``appendfsync everysec``) or a SQLite file;
a closed-loop client posts ``/v1/batch`` requests of ``--batch`` track events round-robin over
the replicas. Round trips are counted from ``INFO commandstats`` deltas of the commands a client
sends (``EVALSHA``/``EVAL``, and plain ``GET``/``SET``; the scripts' inner commands are not round
trips). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.replicas.cluster import AUTH, start_redis, start_sandbox
from tests.replicas.cluster import replica_config as _config
from tests.support import ServerProcess, free_port

CLIENT_COMMANDS = ("evalsha", "eval", "get", "set")


def replica_config(storage_url: str, port: int, sandbox_url: str) -> str:
    return _config(storage_url, port, sandbox_url).replace(
        "log_requests = false\n", "log_requests = false\ndelivery = false\n"
    )


def round_trips(url: str) -> int:
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in CLIENT_COMMANDS)


async def load(urls: list[str], seconds: float, concurrency: int, batch: int) -> int:
    """Events acknowledged by the replicas in ``seconds``."""
    accepted = 0
    targets = itertools.cycle(urls)
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(auth=AUTH, timeout=30) as http:
            while time.monotonic() < deadline:
                events = [
                    {
                        "type": "track",
                        "event": "Order Completed",
                        "userId": "u",
                        "messageId": uuid.uuid4().hex,
                    }
                    for _ in range(batch)
                ]
                response = await http.post(f"{next(targets)}/v1/batch", json={"batch": events})
                if response.status_code == 200:
                    accepted += batch

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return accepted


def run(tmp: Path, storage_url: str, n: int, sandbox_url: str, args: argparse.Namespace) -> float:
    replicas = []
    for i in range(n):
        home = tmp / f"{uuid.uuid4().hex[:6]}-{i}"
        home.mkdir()
        port = free_port()
        replicas.append(ServerProcess(home, replica_config(storage_url, port, sandbox_url)))
        replicas[-1].start(port)
    try:
        urls = [r.url for r in replicas]
        asyncio.run(load(urls, 1.0, args.concurrency, args.batch))  # warm-up
        started = time.monotonic()
        accepted = asyncio.run(load(urls, args.seconds, args.concurrency, args.batch))
        return accepted / (time.monotonic() - started)
    finally:
        for replica in replicas:
            replica.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        sandbox = start_sandbox(tmp)
        server = start_redis(tmp)
        redis.Redis.from_url(server.url).config_set("appendfsync", "everysec")
        try:
            before = round_trips(server.url)
            one = run(tmp, f"{server.url}?prefix=one", 1, sandbox.url, args)
            after = round_trips(server.url)
            accepted_one = redis.Redis.from_url(server.url).get("one:seq")
            two = run(tmp, f"{server.url}?prefix=two", 2, sandbox.url, args)
            sqlite = run(tmp, f"sqlite:///{tmp / 'bench.db'}", 1, sandbox.url, args)
        finally:
            server.stop()
            sandbox.stop()
    events = int(accepted_one or 0)
    print(
        json.dumps(
            {
                "events_per_s": {
                    "redis_1_replica": round(one),
                    "redis_2_replicas": round(two),
                    "sqlite_1_replica": round(sqlite),
                },
                "two_vs_one_replica_on_redis": round(two / one, 2),
                "redis_vs_sqlite_one_replica": round(one / sqlite, 2),
                "redis_round_trips_per_accepted_event": round((after - before) / events, 3),
                "batch": args.batch,
                "concurrency": args.concurrency,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
