"""Delivery in child processes (``server.delivery_processes``): the serving process keeps
ingest, the debugger and the admin API, and its event loop never runs delivery's CPU.

Each child runs ``forwarder deliver`` on the same store. A child that dies is restarted after a
pause that doubles while children keep dying (to 30 s); ``stop`` sends SIGTERM, lets each child
flush within the shutdown deadline, and kills what is left a few seconds after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Sequence

from forwarder.telemetry import Metrics, get_logger

_RESTART_FIRST_S = 1.0
_RESTART_MAX_S = 30.0
_HEALTHY_AFTER_S = 60.0
_KILL_AFTER_DEADLINE_S = 5.0


class DeliveryProcesses:
    """Starts, watches and stops ``n`` delivery processes."""

    def __init__(
        self, command: Sequence[str], n: int, *, deadline_s: float, metrics: Metrics
    ) -> None:
        """Args:
        command: the child's command line (``python -m forwarder deliver --config ...``).
        n: how many children.
        deadline_s: how long a child may flush after SIGTERM before it is killed (plus 5 s).
        """
        self.command = tuple(command)
        self.n = n
        self._deadline_s = deadline_s
        self._metrics = metrics
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.restarts = 0
        """Children that died and were started again."""
        self._log = get_logger("delivery")

    def running(self) -> int:
        """Children alive now."""
        return sum(1 for p in self._children.values() if p.returncode is None)

    def pids(self) -> list[int]:
        """Process ids of the children alive now."""
        return [p.pid for p in self._children.values() if p.returncode is None]

    async def start(self) -> None:
        """Start every child; each is kept running by its own task."""
        for slot in range(self.n):
            self._tasks.append(asyncio.create_task(self._keep(slot), name=f"delivery-proc-{slot}"))

    async def _keep(self, slot: int) -> None:
        pause_s = _RESTART_FIRST_S
        while not self._stopping:
            started = time.monotonic()
            child = await asyncio.create_subprocess_exec(*self.command)
            self._children[slot] = child
            self._log.info("delivery_process_started", slot=slot, pid=child.pid)
            try:
                code = await child.wait()
            except asyncio.CancelledError:
                if child.returncode is None:
                    child.kill()
                raise
            if self._stopping:
                return
            self.restarts += 1
            self._metrics.errors.labels("delivery", "process_exited").inc()
            if time.monotonic() - started > _HEALTHY_AFTER_S:
                pause_s = _RESTART_FIRST_S
            self._log.error(
                "delivery_process_exited", slot=slot, pid=child.pid, code=code, restart_in_s=pause_s
            )
            await asyncio.sleep(pause_s)
            pause_s = min(2 * pause_s, _RESTART_MAX_S)

    async def stop(self) -> None:
        """SIGTERM every child; wait for them to flush; kill those still running after that."""
        self._stopping = True
        alive = [p for p in self._children.values() if p.returncode is None]
        for child in alive:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        waits = asyncio.gather(*(child.wait() for child in alive))
        try:
            await asyncio.wait_for(waits, self._deadline_s + _KILL_AFTER_DEADLINE_S)
        except TimeoutError:
            for child in alive:
                if child.returncode is None:
                    self._log.error("delivery_process_killed", pid=child.pid)
                    child.kill()
            await asyncio.gather(*(child.wait() for child in alive))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        codes = {child.pid: child.returncode for child in alive}
        self._log.info("delivery_processes_stopped", codes=codes)
