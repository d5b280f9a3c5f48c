"""Ingest benchmark: the real forwarder against a bare Litestar+msgspec endpoint, side by side.

Run by hand, never in CI (the machine is shared and noisy, so only the ratios of one run mean
something)::

    apt-get install -y wrk
    python benchmarks/ingest.py                      # uvicorn and granian, 2 rounds
    python benchmarks/ingest.py --servers uvicorn --rounds 1 --duration 5
    python benchmarks/ingest.py --write              # also update benchmarks/RESULTS.md
    python benchmarks/ingest.py --apps bare,delivered --base /work/wt/base --probe

``--base TREE`` runs every app but ``bare`` a second time from another checkout (``app@base``:
its servers and sandboxes with ``PYTHONPATH=TREE``), measured in the same rounds, interleaved
with this tree's: an A/B of a change in one run. ``--probe`` loads ``loop_probe/`` into every
server: each stall of its event loop longer than 5 ms is written with the stacks it ran
(``loop-<server>-<app>.jsonl`` in the kept temp dir; see ``loop_probe/sitecustomize.py``).
An app and its twin are measured at the same constant rate (see ``_latency_rate``), the base
first in every other round.

For each ASGI server it starts the apps of ``--apps``, all one worker on uvloop with the
access log off:

* ``bare``: ``benchmarks/bare_app.py``, decodes the body with msgspec and answers;
* ``durable``: ``forwarder serve`` with a fresh SQLite file, ``synchronous = "full"`` and
  ``log_requests = true`` (production: one JSON line per request, written to a file), delivery
  off (an ingest-only replica); the body is an unmapped track event without ``messageId``;
* ``durable-nolog``: the same with ``log_requests = false``;
* ``held``: the real path with delivery running: ``forwarder serve`` (SQLite as ``durable``,
  ``log_requests = true``) with a mapping for ``Order Completed`` and delivery on, against a
  sandbox in its own process (``forwarder sandbox``) at the envelope ``--envelope-rps`` sends
  of 500 events per second (portal ``events_per_s`` the same); the body is a mapped
  ``Order Completed`` with a unique ``messageId`` and no identity (held, never delivered);
* ``delivered``: the same with ``context.traits.email`` in the body (identity linked,
  delivered: the backlog drains at the envelope while the load runs);
* ``delivered-redis``: ``delivered`` on Redis storage (127.0.0.1:6379, or ``--redis-port``, or
  with ``--redis-cpu N`` a redis-server of its own pinned to CPU N; a
  fresh key prefix, deleted at the end).
* ``delivered-proc``, ``delivered-redis-proc``: ``delivered`` and ``delivered-redis`` with
  delivery in a child process (``server.delivery_processes = 1``), pinned to the load CPU.

and measures, rounds interleaved so drift hits every app alike:

* single: peak requests/s of ``POST /v1/track`` (one event a request; ``__SEQ__`` in a body
  becomes a number unique to the request, so nothing is deduplicated), by ``wrk``;
* batch: peak events/s of ``POST /v1/batch`` with 100 such events per request, by ``wrk``;
* with each peak, the CPU the app's processes spent per request (single) and per event (batch),
  from ``/proc`` (a Redis app's redis-server is counted apart, with ``--redis-cpu``: Redis is
  the limit of its batch peak on a 2-core machine). The "CPU ratio vs bare" is bare's
  CPU per request over the app's, the throughput ratio each would reach with a core to itself;
  it moves far less than the throughput ratio when the host takes CPU from one measurement;
* latency: p50/p99 at a constant rate, by ``benchmarks/loadgen.py`` (open loop, latency
  counted from when a request was due): half of the ``delivered`` app's single-event peak of
  the same round and server when ``delivered`` runs (every SQLite app at the same rate), else
  half of each app's own peak. The Redis apps always run at half their own single peak: they
  cannot sustain half of SQLite's, and a queue growing for the whole run measures nothing but
  its length.

Each app runs alone while it is measured (``alone``: the others stopped), and goes on for
``SETTLE_S`` after a peak measurement, so that the requests wrk left in flight are answered
before the next measurement begins.

Servers run on CPU 1 and the load generators on CPU 0 (``taskset``), so they do not steal each
other's core; the forwarder's SQLite writer thread shares CPU 1 with its event loop. The
sandboxes run on the load CPU.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.processes import cpu_s  # noqa: E402

WRITE_KEY = "bench_write_key_0123456789"
TRACK = {"userId": "user-42", "event": "Signed Up", "properties": {"plan": "pro", "value": 42}}
ORDER = {
    "userId": "user-__USER__",
    "messageId": "__SEQ__",
    "event": "Order Completed",
    "properties": {"revenue": 42, "currency": "EUR"},
}
EMAIL = {"traits": {"email": "user-__USER__@example.com"}}
BATCH_SIZE = 100
SETTLE_S = 1.0
"""After a peak measurement, the app finishes what wrk left in flight (up to 64 batch requests,
~150 ms of work) before it is stopped or measured again: else that work, frozen by ``alone``,
ran at the start of the app's latency phase and was counted in its p99."""
BEGIN, END = "<!-- ingest.py:begin -->", "<!-- ingest.py:end -->"
APPS = (
    "bare",
    "durable",
    "durable-nolog",
    "held",
    "delivered",
    "delivered-proc",
    "delivered-redis",
    "delivered-redis-proc",
)
REAL_PATH = ("held", "delivered", "delivered-proc", "delivered-redis", "delivered-redis-proc")
PORTAL_ID = 1

CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
server = "{server}"
log_requests = {log_requests}
log_format = "json"
# Ingest alone: the delivery workers (which here would feed the in-process sandbox on the same
# core) are off, as on an ingest-only replica. Delivery has its own benchmark.
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
base_url = "sandbox"
unmapped_events = "auto"
"""

REAL_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
server = "{server}"
log_requests = true
log_format = "json"
delivery_processes = {processes}

[storage]
url = "{url}"
synchronous = "full"

[[sources]]
name = "bench"
write_key = "{key}"
kind = "server"
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


@dataclass
class Target:
    """One running app under one server."""

    server: str
    app: str
    port: int
    proc: subprocess.Popen[bytes]
    single_body: Path
    batch_body: Path
    sandbox: subprocess.Popen[bytes] | None = None
    redis_prefix: str | None = None
    redis_pid: int | None = None
    """A Redis app on ``--redis-cpu``'s server: that redis-server's pid (its CPU, ``_peak``)."""
    tree: str = ""
    """"base" for an app run from ``--base``, else empty (this tree)."""
    single: list[float] = field(default_factory=list)
    batch: list[float] = field(default_factory=list)
    single_cpu: list[float] = field(default_factory=list)
    """µs of the app's CPU per request of each round's single peak (``_peak``)."""
    batch_cpu: list[float] = field(default_factory=list)
    """µs of the app's CPU per event of each round's batch peak."""
    single_redis_cpu: list[float] = field(default_factory=list)
    """A Redis app on ``--redis-cpu``'s server: that redis-server's µs of CPU per request of
    each round's single peak (no other app runs meanwhile: ``alone``)."""
    batch_redis_cpu: list[float] = field(default_factory=list)
    """The same per event of each round's batch peak."""
    latency: list[dict[str, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.server}/{self.label}"

    @property
    def label(self) -> str:
        return f"{self.app}@{self.tree}" if self.tree else self.app

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(args: argparse.Namespace, tree: str, log_name: str) -> dict[str, str]:
    """A child's environment: the tree it runs from (``--base``), the loop probe (``--probe``)."""
    env = dict(os.environ)
    # Children run in the temp dir (``python -m`` puts the working directory first on
    # ``sys.path``): the code is this tree's, or the base's, by ``PYTHONPATH`` alone.
    paths = [str(Path(args.base).resolve() if tree else HERE.parent)]
    if args.probe:
        paths.append(str(HERE / "loop_probe"))
        env["LOOP_PROBE_LOG"] = str(Path(args.work) / f"loop-{log_name}.jsonl")
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _start_sandbox(
    work: Path, args: argparse.Namespace, tree: str = ""
) -> tuple[subprocess.Popen[bytes], str]:
    """A ``forwarder sandbox`` process at the envelope, on the load CPU."""
    port = _free_port()
    log = open(work / f"sandbox-{port}.log", "wb")  # noqa: SIM115 - lives as long as the sandbox
    cmd = [sys.executable, "-m", "forwarder", "sandbox", "--port", str(port)]
    cmd += ["--portal-id", str(PORTAL_ID), "--events-rps", str(args.envelope_rps)]
    cmd += ["--define", "order_completed:revenue"]
    env = dict(os.environ, PYTHONPATH=str(Path(args.base).resolve() if tree else HERE.parent))
    proc = subprocess.Popen(
        ["taskset", "-c", args.load_cpu, *cmd], stdout=log, stderr=log, env=env, cwd=work
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/_sandbox", timeout=1):  # noqa: S310
            return proc, url
        time.sleep(0.2)
    raise SystemExit("the sandbox did not answer within 30 s")


def _real_config(
    target_port: int,
    server: str,
    app: str,
    work: Path,
    sandbox: str,
    args: argparse.Namespace,
    name: str,
) -> tuple[str, str | None]:
    prefix = None
    if "redis" in app:
        prefix = f"bench-ingest-{secrets.token_hex(4)}"
        url = f"redis://127.0.0.1:{args.redis_port}/0?prefix={prefix}"
    else:
        url = f"sqlite:///{work / f'{name}.db'}"
    from forwarder.sandbox import DEFAULT_TOKEN

    text = REAL_CONFIG.format(
        port=target_port,
        server=server,
        url=url,
        key=WRITE_KEY,
        portal_id=PORTAL_ID,
        sandbox=sandbox,
        token=DEFAULT_TOKEN,
        rps=args.envelope_rps,
        processes=1 if app.endswith("-proc") else 0,
    )
    return text, prefix


def _start(server: str, app: str, work: Path, args: argparse.Namespace, tree: str = "") -> Target:
    port = _free_port()
    name = f"{server}-{app}{'-' + tree if tree else ''}"
    log = open(work / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the server
    single, batch = _bodies(work, app)
    sandbox, prefix = None, None
    if app == "bare":
        cmd = [sys.executable, str(HERE / "bare_app.py"), "--port", str(port), "--server", server]
    else:
        config = work / f"{name}.toml"
        if app in REAL_PATH:
            sandbox, sandbox_url = _start_sandbox(work, args, tree)
            text, prefix = _real_config(port, server, app, work, sandbox_url, args, name)
        else:
            text = CONFIG.format(
                port=port,
                server=server,
                log_requests="false" if app.endswith("nolog") else "true",
                db=work / f"{server}-{app}.db",
                key=WRITE_KEY,
            )
        config.write_text(text)
        cmd = [sys.executable, "-m", "forwarder", "serve", "--config", str(config)]
    env = _env(args, tree, name)
    proc = subprocess.Popen(
        ["taskset", "-c", args.server_cpu, *cmd], stdout=log, stderr=log, env=env, cwd=work
    )
    target = Target(server, app, port, proc, single, batch, sandbox, prefix, tree=tree)
    _wait_ready(target)
    if app.endswith("-proc"):
        _pin_children(proc.pid, args.load_cpu)
    return target


def _pin_children(pid: int, cpu: str) -> None:
    """The delivery process off the server's CPU (taskset's affinity is inherited): on the load
    CPU, the only other one of a 2-core machine."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += (task / "children").read_text().split()
        if children:
            for child in children:
                subprocess.run(["taskset", "-p", "-c", cpu, child], check=True, capture_output=True)
            return
        time.sleep(0.2)
    raise SystemExit("the delivery process did not start within 30 s")


def _post(url: str, body: bytes, timeout: float = 2.0) -> int:
    token = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - our own loopback URL
        url,
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - as above
        status: int = response.status
        return status


def _wait_ready(target: Target) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if target.proc.poll() is not None:
            raise SystemExit(f"{target.name} exited with {target.proc.returncode}")
        body = (
            target.single_body.read_bytes().replace(b"__SEQ__", b"ready").replace(b"__USER__", b"0")
        )
        with contextlib.suppress(OSError):
            if _post(target.url("/v1/track"), body) == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{target.name} did not answer within 30 s")


def _wrk(url: str, body_file: Path, args: argparse.Namespace, duration: float) -> tuple[float, int]:
    """wrk's requests/s and the number of requests it completed."""
    env = dict(
        os.environ,
        BODY_FILE=str(body_file),
        AUTH_B64=base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
        SEQ_PREFIX=secrets.token_hex(4),
    )
    cmd = ["taskset", "-c", args.load_cpu, "wrk", "-t1", f"-c{args.connections}"]
    cmd += [f"-d{duration:g}s", "--timeout", "10s", "-s", str(HERE / "post_seq.lua"), url]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise SystemExit(f"wrk against {url} saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in ", out)
    assert match is not None, out
    assert done is not None, out
    return float(match.group(1)), int(done.group(1))


def _peak(
    t: Target, path: str, body: Path, args: argparse.Namespace
) -> tuple[float, float, float | None]:
    """A peak measurement of ``t``: requests/s, and µs of CPU per request of the app's
    processes (the server and its delivery processes; not a sandbox, wrk or redis-server) and
    of the benchmark's own redis-server when ``t`` is a Redis app and there is one.

    Throughput on this shared machine moves with what else the host runs; the CPU a request
    costs moves far less, so the CPU ratio against bare says what the throughput ratio would
    be with the core to each app alone."""
    family = _family(t.proc.pid)
    redis = t.redis_pid
    before = sum(cpu_s(pid) for pid in family)
    redis_before = cpu_s(redis) if redis else 0.0
    rps, done = _wrk(t.url(path), body, args, args.duration)
    spent = sum(cpu_s(pid) for pid in family) - before
    redis_spent = cpu_s(redis) - redis_before if redis else None
    per = 1e6 / max(done, 1)
    return rps, spent * per, None if redis_spent is None else redis_spent * per


def _loadgen(target: Target, rate: float, args: argparse.Namespace) -> dict[str, float]:
    cmd = ["taskset", "-c", args.load_cpu, sys.executable, str(HERE / "loadgen.py")]
    cmd += ["--url", target.url("/v1/track"), "--rate", f"{rate:.0f}"]
    cmd += ["--duration", f"{args.duration:g}", "--body-file", str(target.single_body)]
    cmd += ["--seq-prefix", secrets.token_hex(4)]
    cmd += ["--auth-user", WRITE_KEY, "--connections", str(args.connections)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out)
    if result["errors"] or result["lost_connections"]:
        raise SystemExit(f"loadgen against {target.name} saw errors: {result}")
    return result


def _bodies(work: Path, app: str) -> tuple[Path, Path]:
    """The single and batch bodies of an app (``__SEQ__``: unique per request)."""
    if app in ("durable", "durable-nolog"):
        single = TRACK
        events = [dict(TRACK, type="track", userId=f"user-{i}") for i in range(BATCH_SIZE)]
    else:
        # bare decodes the delivered body: the same bytes as the app it is compared with
        email = app != "held"
        single = dict(ORDER, context=EMAIL) if email else ORDER
        events = []
        for i in range(BATCH_SIZE):
            event = dict(single, type="track", messageId=f"__SEQ__-{i}", userId=f"user-{i}")
            if email:
                event["context"] = {"traits": {"email": f"user-{i}@example.com"}}
            events.append(event)
    track = work / f"{app}-track.json"
    track.write_text(json.dumps(single))
    batch = work / f"{app}-batch.json"
    batch.write_text(json.dumps({"batch": events}))
    return track, batch


def _latency_rate(targets: list[Target], t: Target) -> float:
    """Half the delivered path's peak of this round and server when it runs, else half t's;
    a Redis app's rate is always half its own peak (it cannot sustain half of SQLite's). With
    ``--base`` an app and its twin run at the same rate: half the higher of their peaks."""
    delivered = any(d.server == t.server and d.app == "delivered" for d in targets)
    app = "delivered" if delivered and "redis" not in t.app else t.app
    pair = [d for d in targets if d.server == t.server and d.app == app]
    return max(d.single[-1] for d in pair) / 2


def _family(pid: int) -> list[int]:
    """A process and its descendants (a server's delivery processes)."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid] + [p for kid in kids for p in _family(int(kid))]


def _mark(t: Target, phase: str, args: argparse.Namespace) -> None:
    """With ``--probe``: a line in ``t``'s stall log where a measurement begins or ends."""
    if args.probe:
        path = Path(args.work) / f"loop-{t.server}-{t.app}{'-' + t.tree if t.tree else ''}.jsonl"
        with path.open("a") as log:
            log.write(json.dumps({"phase": phase, "at": round(time.time(), 3)}) + "\n")


@contextlib.contextmanager
def alone(targets: list[Target], t: Target) -> Iterator[None]:
    """Only ``t`` runs while it is measured: the other apps, their sandboxes and the delivery
    still draining their backlogs are stopped (SIGSTOP) and go on afterwards (SIGCONT), so one
    app's delivery never takes CPU from another's measurement."""
    others = [o for o in targets if o is not t]
    pids = [p for o in others for proc in (o.proc, o.sandbox) if proc for p in _family(proc.pid)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def _twins_swapped(targets: list[Target]) -> list[Target]:
    """``targets`` with each app and its ``--base`` twin in each other's place: every other
    round measures the base first, so neither tree always follows the same app."""
    out = list(targets)
    for i, t in enumerate(targets):
        if t.tree and i > 0 and targets[i - 1].app == t.app and not targets[i - 1].tree:
            out[i - 1], out[i] = t, targets[i - 1]
    return out


def measure(targets: list[Target], args: argparse.Namespace, work: Path) -> None:
    """Rounds of single, batch and constant-rate latency, interleaved across targets; each
    measurement with only its own app running."""
    for t in targets:  # warm up: first requests, imports, SQLite pages
        with alone(targets, t):
            _wrk(t.url("/v1/track"), t.single_body, args, 2)
    for n in range(args.rounds):
        order = targets if n % 2 == 0 else _twins_swapped(targets)
        for t in order:
            with alone(targets, t):
                rps, cpu, redis = _peak(t, "/v1/track", t.single_body, args)
                time.sleep(SETTLE_S)
            t.single.append(rps)
            t.single_cpu.append(cpu)
            if redis is not None:
                t.single_redis_cpu.append(redis)
            print(
                f"round {n + 1} {t.name:24} single {rps:9.0f} req/s {cpu:7.1f} µs CPU a request"
                + (f" (redis-server {redis:.1f})" if redis is not None else ""),
                flush=True,
            )
        for t in order:
            with alone(targets, t):
                batch, cpu, redis = _peak(t, "/v1/batch", t.batch_body, args)
                time.sleep(SETTLE_S)
            t.batch.append(batch * BATCH_SIZE)
            t.batch_cpu.append(cpu / BATCH_SIZE)
            if redis is not None:
                t.batch_redis_cpu.append(redis / BATCH_SIZE)
            print(
                f"round {n + 1} {t.name:24} batch  {t.batch[-1]:9.0f} events/s "
                f"{t.batch_cpu[-1]:7.2f} µs CPU an event"
                + (f" (redis-server {redis / BATCH_SIZE:.2f})" if redis is not None else ""),
                flush=True,
            )
        for t in order:
            with alone(targets, t):
                _mark(t, f"latency {n + 1}", args)
                t.latency.append(_loadgen(t, _latency_rate(targets, t), args))
                _mark(t, "end", args)
            lat = t.latency[-1]
            print(
                f"round {n + 1} {t.name:24} @{lat['rate_target']:.0f}/s "
                f"p50 {lat['p50_ms']:.2f} ms p99 {lat['p99_ms']:.2f} ms",
                flush=True,
            )


def _median_latency(t: Target, key: str) -> float:
    return statistics.median(x[key] for x in t.latency)


def _ratio(value: float, bare: list[float] | None) -> str:
    """``value`` over the bare app's median, or "-" when ``bare`` was not in ``--apps``."""
    return f"{value / statistics.median(bare):.2f}" if bare else "-"


def _cpu_ratio(cpu: float, bare: float | None) -> str:
    """Bare's CPU per request over the app's: the throughput ratio with a core to each."""
    return f"{bare / cpu:.2f}" if bare and cpu else "-"


def table(targets: list[Target]) -> str:
    """The results as a Markdown table (medians over rounds; ratios against the same server)."""
    bare = {t.server: t for t in targets if t.app == "bare"}
    rows = [
        "| server | app | single req/s | ratio vs bare | CPU µs a request | CPU ratio vs bare "
        "| batch events/s | ratio vs bare | CPU µs an event | rate (½ peak) | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in targets:
        b = bare.get(t.server)
        single, batch = statistics.median(t.single), statistics.median(t.batch)
        cpu, batch_cpu = statistics.median(t.single_cpu), statistics.median(t.batch_cpu)
        bare_cpu = statistics.median(b.single_cpu) if b else None
        rows.append(
            f"| {t.server} | {t.label} | {single:,.0f} | {_ratio(single, b.single if b else None)} "
            f"| {cpu:.1f} | {_cpu_ratio(cpu, bare_cpu)} "
            f"| {batch:,.0f} | {_ratio(batch, b.batch if b else None)} | {batch_cpu:.2f} "
            f"| {_median_latency(t, 'rate_target'):,.0f} | {_median_latency(t, 'p50_ms'):.2f} "
            f"| {_median_latency(t, 'p99_ms'):.2f} |"
        )
    return "\n".join(rows)


def rounds_table(targets: list[Target]) -> str:
    """Every round's figures, so a p99 over 20 ms in any round shows."""
    bare = {t.server: t for t in targets if t.app == "bare"}
    rows = [
        "| server | app | round | single req/s | CPU µs a request | CPU ratio vs bare "
        "| batch events/s | CPU µs an event | redis-server µs a request / an event "
        "| rate | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in targets:
        b = bare.get(t.server)
        for n, lat in enumerate(t.latency):
            cpu = t.single_cpu[n]
            redis = "-"
            if t.single_redis_cpu:
                redis = f"{t.single_redis_cpu[n]:.1f} / {t.batch_redis_cpu[n]:.2f}"
            rows.append(
                f"| {t.server} | {t.label} | {n + 1} | {t.single[n]:,.0f} | {cpu:.1f} "
                f"| {_cpu_ratio(cpu, b.single_cpu[n] if b else None)} "
                f"| {t.batch[n]:,.0f} | {t.batch_cpu[n]:.2f} | {redis} "
                f"| {lat['rate_target']:,.0f} | {lat['p50_ms']:.2f} | {lat['p99_ms']:.2f} |"
            )
    return "\n".join(rows)


def _machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for name in ("uvicorn", "granian", "litestar", "msgspec", "uvloop"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{name} {version(name)}")
    return (
        f"{os.cpu_count()} × {cpu}, Linux {platform.release()}, "
        f"Python {platform.python_version()}; {', '.join(versions)}"
    )


def report(targets: list[Target], args: argparse.Namespace, argv: list[str]) -> str:
    """The Markdown block ``--write`` puts into RESULTS.md."""
    command = "python benchmarks/ingest.py " + " ".join(argv)
    return "\n".join(
        [
            BEGIN,
            f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- machine: {_machine()}",
            f"- command: `{command.strip()}`",
            f"- load: wrk -t1 -c{args.connections}, {args.duration:g} s per measurement, "
            f"{args.rounds} rounds (medians); servers on CPU {args.server_cpu}, load on CPU "
            f"{args.load_cpu}",
            f"- real path: sandbox envelope {args.envelope_rps} sends/s × 500 events "
            "(portal `events_per_s` the same, `safety` 0.9)",
            "",
            table(targets),
            "",
            rounds_table(targets),
            END,
        ]
    )


def _write(block: str) -> None:
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(head + block + tail)


@contextlib.contextmanager
def running(args: argparse.Namespace, work: Path) -> Iterator[list[Target]]:
    """Start every app under every server; stop them all at the end."""
    targets: list[Target] = []
    try:
        for server in args.servers.split(","):
            for app in args.apps.split(","):
                if app not in APPS:
                    raise SystemExit(f"unknown app {app!r}; known: {', '.join(APPS)}")
                targets.append(_start(server, app, work, args))
                if args.base and app != "bare":
                    targets.append(_start(server, app, work, args, tree="base"))
        yield targets
    finally:
        procs = [t.proc for t in targets] + [t.sandbox for t in targets if t.sandbox]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for t in targets:
            if t.redis_prefix:
                _delete_redis_keys(t.redis_prefix, args.redis_port)


@contextlib.contextmanager
def _own_redis(args: argparse.Namespace) -> Iterator[int | None]:
    """With ``--redis-cpu``: a redis-server of the benchmark's own on a free port, pinned to
    that CPU and keeping nothing on disk (as the machine's), for the Redis apps. Unpinned, the
    machine's redis-server is woken on the CPU of the forwarder that writes to it and takes
    30-40 % of the CPU the forwarder is pinned to, which a Redis on its own host would not.
    Yields its pid (taskset execs redis-server: its CPU is this pid's), or None."""
    if not args.redis_cpu:
        yield None
        return
    args.redis_port = _free_port()
    cmd = ["taskset", "-c", args.redis_cpu, "redis-server", "--port", str(args.redis_port)]
    cmd += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ping = ["redis-cli", "-p", str(args.redis_port), "PING"]
        for _ in range(50):
            if proc.poll() is not None:
                raise SystemExit(f"redis-server on CPU {args.redis_cpu} exited ({proc.returncode})")
            if subprocess.run(ping, capture_output=True, text=True).stdout.strip() == "PONG":
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the benchmark's redis-server did not answer within 5 s")
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _delete_redis_keys(prefix: str, port: int) -> None:
    scan = ["redis-cli", "-p", str(port), "--scan", "--pattern", f"{prefix}:*"]
    keys = subprocess.run(scan, capture_output=True, text=True, check=True).stdout.split()
    for start in range(0, len(keys), 500):
        delete = ["redis-cli", "-p", str(port), "DEL", *keys[start : start + 500]]
        subprocess.run(delete, capture_output=True)


def main() -> None:
    """Parse arguments, run every measurement, print (and optionally write) the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", default="uvicorn,granian")
    parser.add_argument("--apps", default=",".join(APPS), help=f"of {', '.join(APPS)}")
    parser.add_argument(
        "--envelope-rps", type=int, default=2, help="event sends/s of 500 (the real-path apps)"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", default="1")
    parser.add_argument("--load-cpu", default="0")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, dbs)")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--base", help="another checkout: every app but bare also runs from it")
    parser.add_argument("--probe", action="store_true", help="log the servers' loop stalls")
    parser.add_argument(
        "--redis-port", type=int, default=6379, help="the Redis apps' server (127.0.0.1)"
    )
    parser.add_argument(
        "--redis-cpu",
        help="start a redis-server of its own pinned to this CPU (e.g. the load CPU, as the"
        " sandbox) instead of using --redis-port's",
    )
    argv = sys.argv[1:]
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="forwarder-bench-"))
    args.work = str(work)
    try:
        with _own_redis(args) as redis_pid, running(args, work) as targets:
            for t in targets:
                if t.redis_prefix:
                    t.redis_pid = redis_pid
            measure(targets, args, work)
        block = report(targets, args, [a for a in argv if a != "--write"])
        print(block)
        if args.write:
            _write(block)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
