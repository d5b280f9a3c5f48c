"""A constant-rate (open-loop) HTTP/1.1 load generator on raw asyncio sockets + uvloop.

wrk measures peak throughput, but a closed loop cannot tell latency at a *given* load. This
sends one request every ``1/rate`` seconds on a pool of keep-alive connections; a request that
finds no idle connection waits in a queue, and its latency counts from when it was *due*, not
when it was sent, so a stalled server shows up in p99 instead of silently slowing the load
(no coordinated omission). Every ``__SEQ__`` in the body is replaced by a number unique to the
request (``--seq-prefix`` and a counter) and every ``__USER__`` by the counter modulo 1,000, so
each request can carry a new ``messageId``. Prints one JSON object::

    python benchmarks/loadgen.py --url http://127.0.0.1:8090/v1/track --rate 3000 \
        --duration 10 --body-file track.json --auth-user KEY
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import uvloop


class _Conn(asyncio.Protocol):
    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.due = 0.0
        self.need = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def send(self, due: float) -> None:
        self.due = due
        self.need = -1
        assert self.transport is not None
        self.transport.write(self.gen.next_request())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[: end + 2]).lower()  # keep the last header's CRLF
            start = head.find(b"content-length:")
            length = int(head[start + 15 : head.find(b"\r\n", start)]) if start >= 0 else 0
            self.need = end + 4 + length
            self.status = head[9:12]
        if len(self.buf) >= self.need:
            del self.buf[: self.need]
            self.gen.done(self, self.status == b"200")

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost += 1


class _Generator:
    def __init__(self, url: str, body: bytes, user: str | None, seq_prefix: str) -> None:
        self.url, self.body, self.user, self.seq_prefix = url, body, user, seq_prefix
        self.templated = b"__SEQ__" in body or b"__USER__" in body
        self.request = _request(url, body, user)
        self.n = 0
        self.idle: deque[_Conn] = deque()
        self.waiting: deque[float] = deque()
        self.latencies: list[float] = []
        self.errors = 0
        self.lost = 0
        self.measuring = False

    def next_request(self) -> bytes:
        if not self.templated:
            return self.request
        self.n += 1
        seq = f"{self.seq_prefix}-{self.n}".encode()
        body = self.body.replace(b"__SEQ__", seq).replace(b"__USER__", b"%d" % (self.n % 1000))
        return _request(self.url, body, self.user)

    def submit(self, due: float) -> None:
        if self.idle:
            self.idle.popleft().send(due)
        else:
            self.waiting.append(due)

    def done(self, conn: _Conn, ok: bool) -> None:
        if self.measuring:
            if ok:
                self.latencies.append(time.perf_counter() - conn.due)
            else:
                self.errors += 1
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)


def _tick(
    loop: asyncio.AbstractEventLoop,
    send_due: Callable[[], None],
    start: float,
    interval: float,
    end: float,
) -> None:
    """Wake the loop when requests fall due, until ``end``: a thread, because libuv's timers
    count whole milliseconds (a shorter ``asyncio.sleep`` came back at once, and the generator
    spun at 100 % of the load CPU, which it shares with the sandbox and, unpinned,
    redis-server), while ``time.sleep`` waits to the microsecond."""
    period = max(interval, _MIN_TICK_S)
    k = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        k = max(k + 1, int((now - start) / period) + 1)
        time.sleep(max(0.0, start + k * period - now))
        loop.call_soon_threadsafe(send_due)


_MIN_TICK_S = 0.0001


def _request(url: str, body: bytes, user: str | None) -> bytes:
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if user is not None:
        token = base64.b64encode(f"{user}:".encode()).decode()
        lines.append(f"Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def run(args: argparse.Namespace, body: bytes) -> dict[str, float]:
    """Warm up, then send at ``args.rate`` for ``args.duration`` seconds and summarise."""
    loop = asyncio.get_running_loop()
    gen = _Generator(args.url, body, args.auth_user, args.seq_prefix)
    parts = urlsplit(args.url)
    for _ in range(args.connections):
        _, conn = await loop.create_connection(lambda: _Conn(gen), parts.hostname, parts.port or 80)
        gen.idle.append(conn)
    interval = 1.0 / args.rate
    start = time.perf_counter()
    measured_from = start + args.warmup
    end = measured_from + args.duration
    sent = measured_from_sent = 0

    def send_due() -> None:
        nonlocal sent, measured_from_sent
        now = time.perf_counter()
        if not gen.measuring and now >= measured_from:
            gen.measuring = True
            measured_from_sent = sent
        due_count = min(int((now - start) / interval) + 1, int((end - start) / interval))
        while sent < due_count:
            gen.submit(start + sent * interval)
            sent += 1

    ticker = threading.Thread(target=_tick, args=(loop, send_due, start, interval, end))
    ticker.start()
    await asyncio.to_thread(ticker.join)
    measured_sent = sent - measured_from_sent
    # let the in-flight requests finish (their latency still counts)
    deadline = time.perf_counter() + 5
    busy = gen.waiting or len(gen.idle) < args.connections
    while busy and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)
        busy = gen.waiting or len(gen.idle) < args.connections
    gen.measuring = False
    lat = sorted(gen.latencies)
    return {
        "rate_target": args.rate,
        "rate_achieved": len(lat) / args.duration,
        "sent": measured_sent,
        "completed": len(lat),
        "errors": gen.errors,
        "lost_connections": gen.lost,
        "p50_ms": _quantile(lat, 0.50) * 1000,
        "p90_ms": _quantile(lat, 0.90) * 1000,
        "p99_ms": _quantile(lat, 0.99) * 1000,
        "max_ms": (lat[-1] if lat else float("nan")) * 1000,
    }


def main() -> None:
    """Parse arguments, run, print the summary as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--auth-user", help="Basic auth user name (the write key)")
    parser.add_argument("--seq-prefix", default="lg", help="prefix of the numbers for __SEQ__")
    args = parser.parse_args()
    with open(args.body_file, "rb") as f:
        body = f.read()
    print(json.dumps(uvloop.run(run(args, body))))


if __name__ == "__main__":
    main()
