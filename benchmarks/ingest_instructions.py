"""Instructions per batched event of ingest, counted by callgrind, main and writer threads.

Run by hand, never in CI (deterministic where CPU times of a few µs drift by 20 % on a busy
machine)::

    python benchmarks/ingest_instructions.py                 # callgrind, 2 then 6 batches
    python benchmarks/ingest_instructions.py --fill          # delivery_cpu.py's fill instead
    python benchmarks/ingest_instructions.py --cpu 2000 --tasks 16   # thread CPU, no valgrind

It builds the forwarder as ``forwarder serve`` does (``create_app``, then ``heap.settle``) with
``benchmarks/ingest.py``'s ``delivered`` configuration (a mapped ``Order Completed``, SQLite with
``synchronous = "full"``, the request log line on, to a file), but with delivery off, so that
only ingest is counted: the definitions are loaded from a sandbox in its own process (not under
valgrind), as a serving process with delivery on loads them at start. The body is the
``delivered`` app's batch: 100 events, each with its own ``messageId``, ``userId`` and
``context.traits.email`` (the same 100 users every request, as ``ingest.py`` sends them).
With ``--fill``, ``delivery_cpu.py``'s fill instead: its events (1,000 users in turn) and no
definitions loaded (its server runs with delivery off). ``--cpu N`` reads each thread's CPU
time (``/proc``) over N requests, ``--tasks`` of them in flight, and prints µs per event.

Requests go through ``IngestService.process`` (the fast path's entry: authentication, body,
validation, accept, the group commit, the log line) one after another, each answered before
the next, after ``--warm`` requests uncounted. With ``valgrind --tool=callgrind
--separate-threads=yes --instr-atstart=no`` the instrumentation is switched on around the
counted requests only; the figure is each thread's instructions of the 4 extra requests of the
second run / 400 events. Thread 1 is the event loop; the SQLite writer is the busiest of the
others (the checkpointer and asyncio's executor threads are listed too).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.callgrind import instrument, thread_totals  # noqa: E402 - after the path fix
from tests.support import free_port  # noqa: E402

BATCH = 100
WRITE_KEY = "bench_write_key_0123456789"
CONFIG = """
[server]
log_requests = true
log_format = "json"
delivery = false

[storage]
url = "sqlite:///{db}"
synchronous = "full"

[[sources]]
name = "bench"
write_key = "{key}"
kind = "server"
portal = "main"

[portals.main]
portal_id = 1
base_url = "{sandbox}"
access_token = "{token}"
unmapped_events = "reject"

[[portals.main.events]]
event = "Order Completed"
custom_event = "order_completed"
properties = {{ revenue = "revenue" }}
"""


def body(n: int, fill: bool = False) -> bytes:
    """The ``n``-th request's batch, as ``benchmarks/ingest.py``'s ``delivered`` app sends it
    (``fill``: as ``benchmarks/delivery_cpu.py`` fills its store, 1,000 users in turn)."""
    if fill:
        from benchmarks.delivery_cpu import event

        events = [event(n * BATCH + i, "run") for i in range(BATCH)]
        return json.dumps({"batch": events}).encode()
    events = [
        {
            "userId": f"user-{i}",
            "messageId": f"r{n}-{i}",
            "event": "Order Completed",
            "properties": {"revenue": 42, "currency": "EUR"},
            "context": {"traits": {"email": f"user-{i}@example.com"}},
            "type": "track",
        }
        for i in range(BATCH)
    ]
    return json.dumps({"batch": events}).encode()


async def ingest(
    config: Path, warm: int, counted: int, *, callgrind: bool, tasks: int, fill: bool
) -> None:
    """Inside the measured process: ``warm`` requests, then ``counted`` ones measured."""
    import msgspec

    from forwarder import heap
    from forwarder.app import create_app
    from forwarder.config import load_settings, secrets_of
    from forwarder.storage import create_storage
    from forwarder.telemetry import Redactor, configure_logging

    settings = load_settings(config)
    log = (config.parent / "forwarder.log").open("w")
    configure_logging(Redactor(secrets_of(settings)), fmt="json", stream=log)
    storage = create_storage(settings.storage, dedup_window_s=settings.dedup.window_s)
    app = create_app(settings, storage=storage)  # as with delivery on: not a shared store
    service, engine = app.state.ingest, app.state.engine
    await storage.open()
    if not fill:  # an ingest-only replica (``delivery = false``) does not load them
        await engine.load_definitions()
    heap.settle()
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"authorization": auth, "content-type": "application/json"}
    bodies = [body(n, fill) for n in range(warm + counted)]

    async def one(raw: bytes) -> None:
        async def read() -> bytes:
            return raw

        status, content, _ = await service.process("/v1/batch", headers, read, None)
        answer = msgspec.json.decode(content)
        if status != 200 or answer["accepted"] != BATCH:
            raise SystemExit(f"ingest answered {status}: {content!r}")

    async def run(chunk: list[bytes]) -> None:
        for start in range(0, len(chunk), tasks):
            await asyncio.gather(*(one(raw) for raw in chunk[start : start + tasks]))

    await run(bodies[:warm])
    if callgrind:
        instrument(True)
    else:
        threads0, wall0 = _thread_cpu(), time.monotonic()
    await run(bodies[warm:])
    if callgrind:
        instrument(False)
    else:
        wall = time.monotonic() - wall0
        events = counted * BATCH
        spent = {k: v - threads0.get(k, 0.0) for k, v in _thread_cpu().items()}
        report = {k: round(v / events * 1e6, 2) for k, v in spent.items() if v > 0}
        report["total"] = round(sum(spent.values()) / events * 1e6, 2)
        print(json.dumps({"us_per_event": report, "events_per_s_wall": round(events / wall)}))
    await storage.close()


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process, by thread name (``/proc``)."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            name = names.get(int(task.name), "other")
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def count(
    sandbox_url: str, warm: int, counted: int, keep: Path | None = None, *, fill: bool = False
) -> list[int]:
    """Instructions per thread (in creation order) of a run of ``counted`` requests; with
    ``keep``, callgrind's files are copied into its folder ``<counted>`` (for
    ``callgrind_annotate``)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), sandbox_url)
        args = ("--config", str(config), "--warm", str(warm), "--inside", str(counted))
        kept = None if keep is None else keep / str(counted)
        return thread_totals(__file__, *args, *(["--fill"] if fill else []), cwd=ROOT, keep=kept)


def write_config(work: Path, sandbox_url: str) -> Path:
    """A configuration for a fresh store in ``work``."""
    from forwarder.sandbox import DEFAULT_TOKEN

    config = work / "forwarder.toml"
    token = DEFAULT_TOKEN
    config.write_text(
        CONFIG.format(db=work / "f.db", key=WRITE_KEY, sandbox=sandbox_url, token=token)
    )
    return config


@contextlib.contextmanager
def sandbox() -> object:
    """A ``forwarder sandbox`` in its own process that defines ``order_completed``."""
    port = free_port()
    cmd = [sys.executable, "-m", "forwarder", "sandbox", "--port", str(port), "--portal-id", "1"]
    cmd += ["--define", "order_completed:revenue"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_sandbox", timeout=1):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the sandbox did not answer within 30 s") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=int, default=30, help="requests before counting")
    parser.add_argument("--cpu", type=int, help="thread CPU of this many requests, no valgrind")
    parser.add_argument("--keep", type=Path, help="copy callgrind's files into this folder")
    parser.add_argument(
        "--fill",
        action="store_true",
        help="delivery_cpu.py's fill: its events, definitions not loaded (delivery off)",
    )
    parser.add_argument("--tasks", type=int, default=1, help="requests in flight (--cpu)")
    args = parser.parse_args()
    if args.inside is not None:
        asyncio.run(
            ingest(args.config, args.warm, args.inside, callgrind=True, tasks=1, fill=args.fill)
        )
        return
    with sandbox() as url:
        if args.cpu:
            with tempfile.TemporaryDirectory() as tmp:
                config = write_config(Path(tmp), url)
                coro = ingest(
                    config, args.warm, args.cpu, callgrind=False, tasks=args.tasks, fill=args.fill
                )
                asyncio.run(coro)
            return
        few = count(url, args.warm, 2, args.keep, fill=args.fill)
        many = count(url, args.warm, 6, args.keep, fill=args.fill)
    per = [(m - f) / (4 * BATCH) for f, m in zip(few, many, strict=False)]
    writer = max(range(1, len(per)), key=lambda i: per[i]) if len(per) > 1 else None
    print(f"main thread: {per[0]:,.0f} instructions per event")
    if writer is not None:
        print(f"writer thread: {per[writer]:,.0f} instructions per event")
    print("all threads:", ", ".join(f"{p:,.0f}" for p in per), f"(sum {sum(per):,.0f})")


if __name__ == "__main__":
    main()
