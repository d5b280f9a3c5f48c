"""Delivery CPU benchmark: server CPU per delivered event, on SQLite and on Redis.

Run by hand, never in CI (the machine is shared; read the figures of one run together)::

    python benchmarks/delivery_cpu.py                          # 100,000 events, SQLite and Redis
    python benchmarks/delivery_cpu.py --events 20000           # a quick look
    python benchmarks/delivery_cpu.py --backends sqlite --events 1000000 --events-rps 20

For each backend (a fresh SQLite file, ``synchronous = "full"``; or Redis on 127.0.0.1:6379
under a fresh key prefix):

1. **fill** through the real ingest over HTTP: ``forwarder serve`` with ``delivery = false``
   (an ingest-only replica), ``--single`` single-event ``POST /v1/track`` one after the other,
   then the backlog as ``POST /v1/batch`` of 100 events. Every event is a mapped
   ``Order Completed`` track with a unique ``messageId`` and ``context.traits.email`` (so its
   identity is linked at ingest and it is delivered), 1,000 distinct users. The server's CPU per
   single request and per batched event is reported too (``/proc``, as below): ingest's cost
   without the noise of a throughput figure.
2. **drain**: ``forwarder serve`` on the same store with delivery on, against a sandbox in its
   own process (``forwarder sandbox``) whose event envelope is ``--events-rps``; the portal's
   ``events_per_s`` is the same (the forwarder allows itself ``safety`` = 0.9 of it). With the
   default 10,000 sends/s HubSpot is not the limit and the figure is the server's CPU.

The forwarder runs on CPU ``--server-cpu``, the sandbox and this script on ``--load-cpu``.
Every ``SAMPLE_S`` the server's CPU time (``utime + stime`` of ``/proc/<pid>/stat``: its event
loop, its SQLite writer thread, everything in the process) and RSS, and the sandbox's received
count are sampled. CPU per delivered event = CPU time between the first sample with an event
received and the last event received, divided by the events received in between (start-up is
not counted). Events/s per core = the inverse.

On Redis, ``redis-cli MONITOR`` runs during both phases and counts the commands carrying the
run's key prefix (every key and every script call carries it): round trips per ingest request
(single, batch) and per delivered batch (per event-send request the sandbox answered), minus
the idle rate of the same server measured before the phase.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.processes import cpu_s, memory_kb, process, thread_cpu_s, wait_http  # noqa: E402
from forwarder.sandbox import DEFAULT_TOKEN  # noqa: E402 - after the path fix for tests.support
from tests.support import SERVER_KEY, free_port  # noqa: E402

PORTAL_ID = 123456
USERS = 1_000
BATCH = 100
SEND_BATCH = 500
SAMPLE_S = 0.25
IDLE_S = 3.0
STALL_S = 30.0
SAFETY = 0.9
"""The share of the envelope the forwarder allows itself (``limits.safety``, default)."""
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()}

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
log_format = "json"
log_requests = false
delivery = {delivery}

[storage]
url = "{url}"
synchronous = "full"
max_backlog = 10000000

[[sources]]
name = "backend"
write_key = "{key}"
portal = "main"

[portals.main]
portal_id = {portal_id}
base_url = "{sandbox}"
access_token = "{token}"
unmapped_events = "reject"

[[portals.main.events]]
event = "Order Completed"
custom_event = "order_completed"
properties = {{ revenue = "revenue" }}

[portals.main.limits]
events_per_s = {rps}
"""


def event(n: int, run: str) -> dict[str, Any]:
    """The ``n``-th mapped event of a run: unique ``messageId``, an email, 1,000 users."""
    user = n % USERS
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"user-{user:04d}",
        "messageId": f"{run}-{n:09d}",
        "properties": {"revenue": 25 + n % 400, "currency": "EUR", "order_id": f"o-{n}"},
        "context": {"traits": {"email": f"user-{user:04d}@example.com"}},
    }


@dataclass
class Monitor:
    """``redis-cli MONITOR``, counting the commands that carry one key prefix.

    A round trip is a command a client sent; the commands a Lua script runs inside Redis show
    in MONITOR as ``[0 lua]`` and are counted apart (``in_scripts``).
    """

    prefix: str
    count: int = 0
    in_scripts: int = 0
    by_command: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-cli", "MONITOR"], stdout=subprocess.PIPE)
        needle = f'"{self.prefix}'.encode()
        stdout = self.proc.stdout
        assert stdout is not None

        def read() -> None:
            for line in stdout:
                if needle not in line:
                    continue
                if b" lua] " in line:
                    self.in_scripts += 1
                    continue
                self.count += 1
                name = line.split(b'"', 2)[1].decode().lower()
                self.by_command[name] = self.by_command.get(name, 0) + 1

        threading.Thread(target=read, daemon=True).start()
        time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()

    def snapshot(self) -> tuple[int, dict[str, int]]:
        time.sleep(0.3)  # MONITOR lines trail the commands a little
        return self.count, dict(self.by_command)


def received(sandbox: str) -> int:
    body = httpx.get(f"{sandbox}/_sandbox", timeout=30).json()
    return int(sum(body["events"].values()))


def sends(sandbox: str) -> dict[int, int]:
    body = httpx.get(f"{sandbox}/_sandbox/requests", timeout=30).json()
    return {int(s): n for s, n in body["byRoute"].get("events.send_batch", {}).items()}


@dataclass
class Run:
    """One backend's figures."""

    backend: str
    events: int
    events_rps: int
    fill: dict[str, float] = field(default_factory=dict)
    drain: dict[str, Any] = field(default_factory=dict)
    trips: dict[str, Any] = field(default_factory=dict)


class Bench:
    """One backend: its store, its sandbox, its servers."""

    def __init__(
        self, args: argparse.Namespace, backend: str, work: Path, *, count_trips: bool = False
    ) -> None:
        self.args, self.backend, self.work, self.count_trips = args, backend, work, count_trips
        self.run_id = secrets.token_hex(4)
        self.prefix = f"bench-dcpu-{self.run_id}"
        if backend == "sqlite":
            self.url = f"sqlite:///{work / 'forwarder.db'}"
        else:
            self.url = f"redis://127.0.0.1:6379/0?prefix={self.prefix}"
        self.sandbox = f"http://127.0.0.1:{free_port()}"
        self.result = Run(backend, args.events, args.events_rps)
        self.sandbox_pid = 0

    def config(self, *, delivery: bool) -> tuple[Path, int]:
        port = free_port()
        path = self.work / f"forwarder-{'drain' if delivery else 'fill'}.toml"
        path.write_text(
            CONFIG.format(
                port=port,
                delivery=str(delivery).lower(),
                url=self.url,
                key=SERVER_KEY,
                portal_id=PORTAL_ID,
                sandbox=self.sandbox,
                token=DEFAULT_TOKEN,
                rps=self.args.events_rps,
            )
        )
        return path, port

    @contextlib.contextmanager
    def server(self, *, delivery: bool) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
        config, port = self.config(delivery=delivery)
        cmd = [sys.executable, "-m", "forwarder", "serve", "--config", str(config)]
        with process(cmd, self.work / "server.log", self.args.server_cpu) as proc:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/readyz", proc)
            yield proc, base

    @contextlib.contextmanager
    def profile(self, pid: int) -> Iterator[None]:
        """With ``--profile DIR``, py-spy records the server during the drain (raw stacks, to
        ``DIR/<backend>-drain.txt``; summarise with a collapsed-stack reader)."""
        if not self.args.profile:
            yield
            return
        out = Path(self.args.profile) / f"{self.backend}-drain.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["py-spy", "record", "-p", str(pid), "-r", "400", "-f", "raw", "-o", str(out)]
        spy = subprocess.Popen([*cmd, "--threads", "--nonblocking"], stdout=subprocess.DEVNULL)
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(timeout=30)
            print(f"{self.backend}: drain profile in {out}", flush=True)

    def monitor(self) -> Monitor | None:
        if not self.count_trips:
            return None
        monitor = Monitor(self.prefix)
        monitor.start()
        return monitor

    def idle_rate(self, monitor: Monitor | None) -> float:
        """Commands per second the server sends with nothing to do (housekeeping)."""
        if monitor is None:
            return 0.0
        before, _ = monitor.snapshot()
        time.sleep(IDLE_S)
        after, _ = monitor.snapshot()
        return (after - before) / IDLE_S

    def fill(self) -> None:
        args, total = self.args, self.args.events
        with self.server(delivery=False) as (proc, base):
            monitor = self.monitor()
            try:
                idle = self.idle_rate(monitor)
                with httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
                    singles = [event(n, self.run_id) for n in range(args.single)]
                    c0 = monitor.snapshot()[0] if monitor else 0
                    t0, cpu0 = time.monotonic(), cpu_s(proc.pid)
                    for body in singles:
                        client.post("/v1/track", json=body).raise_for_status()
                    single_s, cpu1 = time.monotonic() - t0, cpu_s(proc.pid)
                    c1 = monitor.snapshot()[0] if monitor else 0
                    t1, cpu_b = time.monotonic(), cpu_s(proc.pid)
                    for start in range(args.single, total, BATCH):
                        batch = [
                            event(n, self.run_id) for n in range(start, min(total, start + BATCH))
                        ]
                        client.post("/v1/batch", json={"batch": batch}).raise_for_status()
                    batch_s, cpu2 = time.monotonic() - t1, cpu_s(proc.pid)
                    c2, by_command = monitor.snapshot() if monitor else (0, {})
                requests = -(-(total - args.single) // BATCH)
                self.result.fill = {
                    "single_sequential_req_per_s": round(args.single / single_s),
                    "batch_sequential_events_per_s": round((total - args.single) / batch_s),
                    "single_cpu_us_per_request": round((cpu1 - cpu0) / args.single * 1e6, 1),
                    "batch_cpu_us_per_event": round(
                        (cpu2 - cpu_b) / (total - args.single) * 1e6, 1
                    ),
                }
                if monitor is not None:
                    self.result.trips["idle_commands_per_s_ingest_only"] = round(idle, 2)
                    self.result.trips["per_single_request"] = round(
                        (c1 - c0 - idle * single_s) / args.single, 2
                    )
                    self.result.trips["per_batch_request_of_100"] = round(
                        (c2 - c1 - idle * batch_s) / requests, 2
                    )
                    self.result.trips["ingest_commands"] = by_command
                    self.result.trips["ingest_commands_in_scripts"] = monitor.in_scripts
            finally:
                if monitor is not None:
                    monitor.stop()

    def drain(self) -> None:
        total = self.args.events
        samples: list[dict[str, Any]] = []
        monitor = self.monitor()
        try:
            with self.server(delivery=True) as (proc, _), self.profile(proc.pid):
                t0 = time.monotonic()
                c0 = monitor.snapshot()[0] if monitor else 0
                got, progress = 0, (0, t0)
                while got < total:
                    if time.monotonic() - progress[1] > STALL_S:
                        raise RuntimeError(
                            f"no event received for {STALL_S} s: {sends(self.sandbox)}"
                        )
                    got = received(self.sandbox)
                    samples.append(
                        {
                            "t": time.monotonic() - t0,
                            "cpu": cpu_s(proc.pid),
                            "threads": thread_cpu_s(proc.pid),
                            "sandbox_cpu": cpu_s(self.sandbox_pid),
                            "got": got,
                        }
                    )
                    samples[-1].update(memory_kb(proc.pid))
                    if got > progress[0]:
                        progress = (got, time.monotonic())
                    time.sleep(SAMPLE_S)
                end = samples[-1]
                c1, by_command = monitor.snapshot() if monitor else (0, {})
                in_scripts = monitor.in_scripts if monitor else 0
                idle = self.idle_rate(monitor)
                hwm = memory_kb(proc.pid)["VmHWM"]
                answered = sends(self.sandbox)
        finally:
            if monitor is not None:
                monitor.stop()
        first = next(s for s in samples if s["got"] > 0)
        events = end["got"] - first["got"]
        cpu = end["cpu"] - first["cpu"]
        envelope = self.args.events_rps * SEND_BATCH
        wall = end["t"] - first["t"]
        self.result.drain = {
            "cpu_us_per_event": round(cpu / events * 1e6, 1),
            "events_per_s_per_core": round(events / cpu),
            "events_per_s_wall": round(events / wall),
            "envelope_events_per_s": envelope,
            "drain_over_envelope": round(events / wall / envelope, 3),
            "drain_over_own_share": round(events / wall / (envelope * SAFETY), 3),
            "events_per_s_from_start": round(end["got"] / end["t"]),
            "measured_events": int(events),
            "cpu_s": round(cpu, 2),
            "cpu_us_per_event_by_thread": {
                name: round((spent - first["threads"].get(name, 0.0)) / events * 1e6, 1)
                for name, spent in end["threads"].items()
                if spent > first["threads"].get(name, 0.0)
            },
            "wall_s": round(wall, 2),
            "drain_from_start_s": round(end["t"], 2),
            "cpu_share_of_one_core": round(cpu / wall, 2),
            "sandbox_cpu_share_of_one_core": round(
                (end["sandbox_cpu"] - first["sandbox_cpu"]) / wall, 2
            ),
            "rss_at_first_event_mb": round(first["VmRSS"] / 1024, 1),
            "peak_rss_mb": round(max(s["VmRSS"] for s in samples) / 1024, 1),
            "hwm_mb": round(hwm / 1024, 1),
            "sends": answered,
            "events_per_send": round(total / max(1, answered.get(204, 0)), 1),
        }
        if monitor is not None:
            batches = sum(answered.values())
            self.result.trips["idle_commands_per_s_delivery"] = round(idle, 2)
            self.result.trips["per_delivered_batch"] = round(
                (c1 - c0 - idle * end["t"]) / batches, 2
            )
            self.result.trips["delivery_commands"] = by_command
            self.result.trips["delivery_commands_in_scripts"] = in_scripts

    def cleanup(self) -> None:
        if self.backend != "redis":
            return
        keys = subprocess.run(
            ["redis-cli", "--scan", "--pattern", f"{self.prefix}:*"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for start in range(0, len(keys), 500):
            subprocess.run(["redis-cli", "DEL", *keys[start : start + 500]], capture_output=True)


def run_backend(args: argparse.Namespace, backend: str, *, count_trips: bool = False) -> Run:
    """Fill and drain one backend; with ``count_trips``, under ``redis-cli MONITOR``; with
    ``--keep DIR``, fill only, into ``DIR`` (store and ``forwarder-fill.toml`` kept)."""
    with contextlib.ExitStack() as stack:
        if args.keep:
            tmp = str(Path(args.keep).resolve())
            Path(tmp).mkdir(parents=True, exist_ok=True)
        else:
            tmp = stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f"delivery-cpu-{backend}-")
            )
        bench = Bench(args, backend, Path(tmp), count_trips=count_trips)
        sandbox_cmd = [sys.executable, "-m", "forwarder", "sandbox"]
        sandbox_cmd += ["--port", bench.sandbox.rsplit(":", 1)[1], "--portal-id", str(PORTAL_ID)]
        sandbox_cmd += ["--events-rps", str(args.events_rps), "--limit-10s", "1000000"]
        sandbox_cmd += ["--daily", "1000000000", "--define", "order_completed:revenue"]
        try:
            with process(sandbox_cmd, Path(tmp) / "sandbox.log", args.load_cpu) as sandbox:
                wait_http(f"{bench.sandbox}/_sandbox", sandbox)
                bench.sandbox_pid = sandbox.pid
                started = time.monotonic()
                bench.fill()
                print(f"{backend}: filled in {time.monotonic() - started:.1f} s", flush=True)
                if not args.keep:
                    bench.drain()
        except Exception:
            print((Path(tmp) / "server.log").read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            if not args.keep:
                bench.cleanup()
        return bench.result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--events", type=int, default=100_000, help="backlog (with --single)")
    parser.add_argument("--single", type=int, default=500, help="of them, single-event posts")
    parser.add_argument("--events-rps", type=int, default=10_000, help="sandbox's and portal's")
    parser.add_argument(
        "--trips-events", type=int, default=10_000, help="backlog of the MONITOR pass (Redis)"
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy the server's drain into DIR/<backend>-drain.txt"
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="fill only, into DIR, and keep the store and its forwarder-fill.toml there "
        "(for delivery_instructions.py)",
    )
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--load-cpu", default="0")
    args = parser.parse_args()
    results = [run_backend(args, b) for b in args.backends.split(",")]
    if "redis" in args.backends.split(",") and args.trips_events:
        # MONITOR slows Redis several-fold, so round trips are counted in a pass of their own
        trips_args = argparse.Namespace(**{**vars(args), "events": args.trips_events})
        results.append(run_backend(trips_args, "redis", count_trips=True))
    print(json.dumps([r.__dict__ for r in results], indent=1))


if __name__ == "__main__":
    main()
