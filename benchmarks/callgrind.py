"""Callgrind for the ``*_instructions.py`` benchmarks: instruction counts are deterministic on a
busy machine, where CPU times of a few µs drift by 20 %.

A script runs itself under :func:`thread_totals` (valgrind with counting off at start and each
thread apart), switches counting on around what it measures with :func:`instrument`, and gets
each thread's instructions back, main thread first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VALGRIND = ("valgrind", "--tool=callgrind", "--separate-threads=yes", "--instr-atstart=no")


def instrument(on: bool, pid: int | None = None) -> None:
    """Counting on or off in a process running under callgrind (this one by default)."""
    state = "on" if on else "off"
    subprocess.run(["callgrind_control", "-i", state, str(pid or os.getpid())], capture_output=True)


def totals(dump: Path) -> int:
    """The instructions of one callgrind dump (its ``totals:`` line, else its ``summary:``)."""
    found = {}
    for line in dump.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            found[line.split(":")[0]] = int(line.split()[1])
    return found.get("totals", found.get("summary", 0))


def thread_totals(
    script: str | Path, *args: str, cwd: Path | None = None, keep: Path | None = None
) -> list[int]:
    """Run ``python script *args`` under callgrind: the instructions of each thread, in creation
    order (the main thread first). With ``keep``, the dumps are copied there (for
    ``callgrind_annotate``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [*VALGRIND, f"--callgrind-out-file={out}", sys.executable, str(script), *args]
        subprocess.run(cmd, check=True, capture_output=True, cwd=cwd)
        dumps = sorted(Path(tmp).glob("callgrind.out-*"), key=lambda p: int(p.name[-2:]))
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for dump in dumps:
                shutil.copy(dump, keep / dump.name)
        return [totals(dump) for dump in dumps]


def copy_sqlite(source: Path, into: Path) -> Path:
    """A copy of a SQLite store (with its ``-wal`` and ``-shm`` files) in ``into``: the path
    to open. Counting leases changes a store, so each count runs on a fresh copy."""
    for f in source.parent.glob(source.name + "*"):
        shutil.copy(f, into / f.name)
    return into / source.name
