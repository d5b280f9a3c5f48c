"""DEBUG ONLY (issue 17 p99 hunt, to be reverted): timings of the writer, checkpoints, GC and
the event loop, written as JSON lines to ``$FORWARDER_TRACE`` when it is set."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
from typing import Any

PATH = os.environ.get("FORWARDER_TRACE")
ON = bool(PATH)
_buf: list[Any] = []
_gc_start: dict[str, float] = {}
_hist: list[int] = []


def rec(kind: str, **fields: Any) -> None:
    """One record, stamped with the monotonic clock (shared with other processes on Linux)."""
    fields["t"] = time.monotonic()
    fields["k"] = kind
    _buf.append(fields)


def _flush_forever() -> None:
    assert PATH is not None
    with open(PATH, "a") as out:
        while True:
            time.sleep(0.5)
            items = _buf[:]
            del _buf[: len(items)]
            for item in items:
                out.write(json.dumps(item) + "\n")
            out.flush()


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    name = threading.current_thread().name
    if phase == "start":
        _gc_start[name] = time.monotonic()
    else:
        began = _gc_start.pop(name, None)
        if began is not None:
            ms = (time.monotonic() - began) * 1000
            rec("gc", gen=info["generation"], ms=ms, th=name, got=info["collected"])
            if info["generation"] == 2 and ms > 30 and len(_hist) < 3:
                _hist.append(1)
                import collections

                objs = gc.get_objects()
                top = collections.Counter(type(o).__qualname__ for o in objs).most_common(25)
                rec("hist", total=len(objs), top=top, frozen=gc.get_freeze_count())


async def _ticker() -> None:
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.001)
        lag = time.monotonic() - before - 0.001
        if lag > 0.002:
            rec("lag", ms=lag * 1000)


_started = False
_tasks: list[asyncio.Task[None]] = []


def start() -> None:
    """Start the flusher, GC hook and loop ticker (once per process)."""
    global _started
    if not ON or _started:
        return
    _started = True
    threading.Thread(target=_flush_forever, name="trace-flush", daemon=True).start()
    gc.callbacks.append(_on_gc)
    _tasks.append(asyncio.get_running_loop().create_task(_ticker()))


_shm: dict[str, int] = {}


def wal_frames(path: Any) -> tuple[int, int]:
    """mxFrame and nBackfill from the wal-index (-shm) header."""
    name = f"{path}-shm"
    fd = _shm.get(name)
    if fd is None:
        try:
            fd = _shm[name] = os.open(name, os.O_RDONLY)
        except OSError:
            return -1, -1
    head = os.pread(fd, 100, 0)
    if len(head) < 100:
        return -1, -1
    return int.from_bytes(head[16:20], "little"), int.from_bytes(head[96:100], "little")
