"""Requests per second the sandbox serves on this machine.

Starts ``python -m forwarder.sandbox`` in a subprocess (limits raised so nothing is refused)
and drives it with a lean keep-alive HTTP/1.1 client (raw asyncio streams: httpx would be the
bottleneck). Usage: ``python benchmarks/sandbox.py [--seconds 5] [--connections 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time

BODY = json.dumps(
    {"eventName": "pe12345678_purchase", "email": "a@example.com", "properties": {"amount": "1"}}
).encode()
REQUEST = (
    b"POST /events/v3/send HTTP/1.1\r\nHost: sandbox\r\n"
    b"Authorization: Bearer pat-na1-sandbox-token\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY


async def _worker(port: int, deadline: float, statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < deadline:
        writer.write(REQUEST)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        statuses[status] = statuses.get(status, 0) + 1
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                await reader.readexactly(int(line[15:]))
    writer.close()


async def _drive(port: int, seconds: float, connections: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(_worker(port, deadline, statuses) for _ in range(connections)))
    return statuses


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "forwarder.sandbox",
            "--port",
            str(port),
            "--events-rps",
            "1000000",
            "--define",
            "purchase:amount",
        ]
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        statuses = asyncio.run(_drive(port, args.seconds, args.connections))
    finally:
        server.terminate()
        server.wait(10)
    total = sum(statuses.values())
    print(f"{total / args.seconds:.0f} requests/s over {args.seconds:.0f} s, statuses {statuses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
