"""A loop-stall probe for the benchmarks: where the event loop of a server spends its long turns.

Loaded by Python at start-up when this directory is on ``PYTHONPATH`` (``sitecustomize``) and
``LOOP_PROBE_LOG`` names a file; does nothing otherwise. ``benchmarks/ingest.py --probe`` sets
both for the servers it starts.

A task on the loop stamps a heartbeat every millisecond; a thread watches it. When the heartbeat
is older than ``LOOP_PROBE_MS`` (default 5), the loop is stuck in one callback: the thread samples
the loop thread's stack (every ``switchinterval``, 5 ms: it needs the GIL) until the heartbeat
moves again, then writes one JSON line: when the stall began (epoch seconds), how long it lasted,
and the distinct stacks sampled (innermost project frames), with counts::

    {"at": 1765012345.123, "ms": 11.8, "stacks": [[3, ["worker.py:262 _deliver", ...]]]}
"""

from __future__ import annotations

import asyncio
import asyncio.events
import json
import os
import sys
import threading
import time
from collections import Counter
from typing import Any

_LOG = os.environ.get("LOOP_PROBE_LOG")
_THRESHOLD_S = float(os.environ.get("LOOP_PROBE_MS", "5")) / 1000
_BEAT_S = 0.001
_DEPTH = 14


def _stack(frame: Any) -> tuple[str, ...]:
    """The innermost frames, file name and line and function, outermost last."""
    out: list[str] = []
    while frame is not None and len(out) < _DEPTH:
        code = frame.f_code
        out.append(f"{os.path.basename(code.co_filename)}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return tuple(out)


def _cpu_s() -> dict[str, float]:
    """Per thread of this process (name/tid), seconds on a CPU so far, and for the whole
    process (``runqueue``) seconds spent runnable but waiting for a CPU (``/proc``
    schedstat): which thread ran during a stall (the loop's own, the SQLite writer's: the
    GIL), or whether the process waited for a CPU (other processes on its core)."""
    out: dict[str, float] = {"runqueue": 0.0}
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                on_cpu, waiting, _ = f.read().split()
        except (OSError, ValueError):
            continue
        out[names.get(int(task), task)] = int(on_cpu) / 1e9
        out["runqueue"] += int(waiting) / 1e9
    return out


class _Probe:
    def __init__(self, loop: asyncio.AbstractEventLoop, ident: int, path: str) -> None:
        self.loop, self.ident = loop, ident
        self.beat = time.perf_counter()
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
        loop.call_soon_threadsafe(self._start)
        threading.Thread(target=self._watch, name="loop-probe", daemon=True).start()

    def _start(self) -> None:
        self.task = self.loop.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            self.beat = time.perf_counter()
            await asyncio.sleep(_BEAT_S)

    def _watch(self) -> None:
        while True:
            time.sleep(_BEAT_S)
            seen = self.beat
            if time.perf_counter() - seen < _THRESHOLD_S:
                continue
            stacks: Counter[tuple[str, ...]] = Counter()
            others: Counter[str] = Counter()
            cpu_before = _cpu_s()
            while self.beat == seen:
                frames = sys._current_frames()
                for ident, frame in frames.items():
                    if ident == self.ident:
                        stacks[_stack(frame)] += 1
                    elif ident != threading.get_ident():
                        others[_stack(frame)[0]] += 1
                time.sleep(_BEAT_S)
            cpu = {
                name: round((s - cpu_before.get(name, 0.0)) * 1000, 2)
                for name, s in _cpu_s().items()
                if s - cpu_before.get(name, 0.0) > 0.0005
            }
            ms = (self.beat - seen) * 1000 - _BEAT_S * 1000
            line = {
                "at": round(time.time() - (time.perf_counter() - seen), 3),
                "ms": round(ms, 2),
                "cpu_ms": cpu,
                "stacks": [[n, list(s)] for s, n in stacks.most_common(4)],
                "others": others.most_common(4),
            }
            self.out.write(json.dumps(line) + "\n")


_probes: dict[int, _Probe] = {}


def _install() -> None:
    original = asyncio.events._set_running_loop

    def set_running_loop(loop: asyncio.AbstractEventLoop | None) -> None:
        original(loop)
        main = threading.current_thread() is threading.main_thread()
        if loop is not None and _LOG and main and id(loop) not in _probes:
            _probes[id(loop)] = _Probe(loop, threading.get_ident(), _LOG)

    # uvloop takes asyncio's at import: patched before anything imports it.
    asyncio.events._set_running_loop = set_running_loop
    asyncio._set_running_loop = set_running_loop  # type: ignore[attr-defined]


if _LOG:
    _install()
