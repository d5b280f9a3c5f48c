"""What the benchmarks share about the processes they start: start one with its output in a
file (pinned to a CPU when asked), wait for its HTTP answer, read its CPU and memory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    """Until ``url`` answers 200; raises if ``proc`` exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


@contextlib.contextmanager
def process(
    command: list[str], log: Path, cpu: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running from the repository (on CPU ``cpu`` if given), output appended to
    ``log``; terminated (killed after 20 s) on leaving."""
    pinned = ["taskset", "-c", cpu, *command] if cpu is not None else command
    with log.open("ab") as out:
        proc = subprocess.Popen(pinned, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of a process in kB, from ``/proc``."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def thread_cpu_s(pid: int) -> dict[str, float]:
    """User + system CPU seconds per thread of a process, from ``/proc/<pid>/task``: the main
    thread as ``main``, the others as ``<name>-<tid>`` (Python does not name its OS threads,
    so the name is mostly the process's; threads that ended are not counted)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        key = "main" if task.name == str(pid) else f"{name}-{task.name}"
        out[key] = (int(fields[11]) + int(fields[12])) / TICKS_PER_S
    return out
