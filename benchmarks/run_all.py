"""Run every benchmark in one go and write ``benchmarks/RESULTS.md``, one block per section.

    pip install -e '.[bench]'; apt-get install -y wrk
    python benchmarks/run_all.py                 # everything, short sizes (~7 min)
    python benchmarks/run_all.py --only outage   # one section

Each section owns the text between ``<!-- run_all:NAME:begin -->`` and ``<!-- run_all:NAME:end
-->`` (``ingest.py --write`` keeps its own ``ingest.py`` block), so a section run alone leaves
the others as they were. Sections: ``ingest`` (durable vs bare, batch events/s, latency at half
load), ``delivery`` (envelope utilisation, 429s, end-to-end latency), ``replicas``, ``outage``
(the outage scenario of ``tests/reliability/test_outage.py`` and its chart), ``backlog`` (peak
RSS while holding 1,000,000 events and the time to drain them against the theoretical minimum,
``benchmarks/backlog.py``: ~3 min).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
TRACE = HERE / "results" / "outage.json"
CHART = HERE / "results" / "outage.png"


def _run(*command: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    return (done.stdout + done.stderr).strip()


def write_block(name: str, text: str) -> None:
    """Replace (or append) the block ``name`` in RESULTS.md."""
    begin, end = f"<!-- run_all:{name}:begin -->", f"<!-- run_all:{name}:end -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(updated)


def ingest(long: bool) -> None:
    rounds = ["--rounds", "2"] if long else ["--servers", "uvicorn", "--rounds", "1"]
    print(_run(sys.executable, "benchmarks/ingest.py", *rounds, "--write"))


def _json_objects(text: str) -> list[dict[str, object]]:
    """The JSON objects printed one after another (``delivery.py`` prints one per phase)."""
    decoder, objects, at = json.JSONDecoder(), [], text.find("{")
    while at != -1:
        obj, end = decoder.raw_decode(text, at)
        objects.append(obj)
        at = text.find("{", end)
    return objects


def delivery(long: bool) -> None:
    # Short: half the backlogs of the hand-run defaults (the ratios do not depend on size).
    sizes = [] if long else ["--events", "100000", "--contacts", "50000", "--latency-s", "15"]
    command = ["benchmarks/delivery.py", *sizes]
    out = _run(sys.executable, *command)
    try:
        phases = _json_objects(out)
    except json.JSONDecodeError:
        phases = []
    if not phases:
        write_block("delivery", f"## Delivery, side by side\n\n```\n{out}\n```")
        return
    tables = []
    for phase in phases:
        tables.append("| figure | value |\n| --- | --- |\n" + "\n".join(_table(phase)))
    body = "\n\n".join(tables)
    write_block(
        "delivery",
        f"""## Delivery, side by side (run_all)

`python {" ".join(command)}`: the figures as the script prints them, one table per phase
(conversions drain, contact upserts drain, latency at half the envelope); what they mean is
in the Delivery section above.

{body}
""",
    )


def _table(figures: dict[str, object], prefix: str = "") -> list[str]:
    rows = []
    for key, value in figures.items():
        if isinstance(value, dict):
            rows += _table(value, f"{prefix}{key}.")
        else:
            rows.append(f"| {prefix}{key} | {value} |")
    return rows


def replicas(long: bool) -> None:
    out = _run(sys.executable, "benchmarks/replicas.py")
    try:
        figures = _json_objects(out)[0]
    except (json.JSONDecodeError, IndexError):
        write_block("replicas", f"## Replicas (`benchmarks/replicas.py`)\n\n```\n{out}\n```")
        return
    rows = "\n".join(_table(figures))
    write_block(
        "replicas",
        "## Replicas, side by side (run_all: `python benchmarks/replicas.py`)\n\n"
        f"What they mean: the Replicas section above.\n\n| figure | value |\n| --- | --- |\n{rows}",
    )


def outage(long: bool) -> None:
    test = "test_outage_of_a_minute" if long else "test_outage_of_six_seconds"
    marker = ["-m", "slow", "--runxfail"] if long else []
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *marker]
    TRACE.unlink(missing_ok=True)
    target = "tests/reliability/test_outage.py"
    out = _run(*command, target, "-k", test, env={"OUTAGE_TRACE": str(TRACE)})
    trace = json.loads(TRACE.read_text())
    _run(sys.executable, "benchmarks/chart.py", str(TRACE), str(CHART))
    drain_s = trace["drained_at"] - trace["outage_ended"]
    envelope_s = trace["backlog_at_recovery"] / (trace["envelope_requests_per_s"] * 500)
    verdict = out.splitlines()[-1] if out else "(no output)"
    allowed = trace["envelope_requests_per_s"] * trace["outage_s"]
    write_block(
        "outage",
        f"""## HubSpot outage (`tests/reliability/test_outage.py`)

Outage of {trace["outage_s"]:g} s (half the sends 503, the rest hang past a 1 s timeout),
ingest {trace["ingest_per_s"]} events/s throughout, envelope
{trace["envelope_requests_per_s"]} event-send requests/s (500 events each at most).

| figure | value |
| --- | --- |
| backlog at recovery | {trace["backlog_at_recovery"]:,} events |
| event sends during the outage | {trace["sends_during_outage"]} (envelope allows {allowed:g}) |
| most attempts of one item | {trace["max_attempts_per_item"]} |
| drain after recovery | {drain_s:.1f} s (envelope minimum {envelope_s:.1f} s) |
| test | {verdict} |

![queue depth and delivery rate through the outage](results/outage.png)
""",
    )


BACKLOG_INTRO = """## Backlog: 1,000,000 events held on disk, then drained (`benchmarks/backlog.py`)

A fresh SQLite file is filled in-process with 1,000,000 accepted track events (realistic
Segment payloads of ~0.9 kB with an email, one pending `conversions` item each) through
`SqliteStorage.append`; **the fill bypasses HTTP** (ingest has its own benchmark). Then
`forwarder serve` starts on the file with its portal pointed at a standalone sandbox process
(`--events-rps 20`, portal `events_per_s = 20`, default `safety = 0.9`, `unmapped_events =
"auto"`), and the server's `VmRSS`/`VmHWM` are read from `/proc` every 0.5 s until the sandbox
holds every event. Drain time counts from the server's start; the minimum is events / 500 per
request / allowed requests per second.
"""


def backlog(long: bool) -> None:
    out = _run(sys.executable, "benchmarks/backlog.py", "--events", "1000000", "--events-rps", "20")
    report = out[out.find("- date:") :] if "- date:" in out else f"```\n{out}\n```"
    write_block("backlog", f"{BACKLOG_INTRO}\n{report}")


SECTIONS: dict[str, Callable[[bool], None]] = {
    "ingest": ingest,
    "delivery": delivery,
    "replicas": replicas,
    "outage": outage,
    "backlog": backlog,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--long", action="store_true", help="the 60 s outage, 2 ingest rounds")
    args = parser.parse_args()
    started, load_before = time.monotonic(), os.getloadavg()
    lines = []
    for name in args.only or SECTIONS:
        print(f"== {name}", flush=True)
        begun, load = time.monotonic(), os.getloadavg()[0]
        SECTIONS[name](args.long)
        took = time.monotonic() - begun
        lines.append(f"| {name} | {took:.0f} s | {load:.2f} → {os.getloadavg()[0]:.2f} |")
    total_s, load_after = time.monotonic() - started, os.getloadavg()
    # The machine is shared: the load average says whether other work ran beside the benchmarks.
    write_block(
        "run",
        f"""## Last `run_all.py` run

{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {total_s / 60:.1f} min in all; load average
(1/5/15 min) {" / ".join(f"{x:.2f}" for x in load_before)} before,
{" / ".join(f"{x:.2f}" for x in load_after)} after (2 cores; the benchmarks' own servers
and load generators account for up to ~2.5 of it, more means other sessions ran beside them).

| section | took | 1-min load average, start → end |
| --- | --- | --- |
"""
        + "\n".join(lines),
    )
    print(RESULTS)


if __name__ == "__main__":
    main()
