"""Writes to the shared store that a synchronous caller does not wait for.

A limiter or quota corrects its own state at once and tells the store (the other replicas) a
round trip later. The task is kept referenced until it ends (asyncio keeps only weak ones), and
a failure is logged: the local correction stands, and the next one will carry the news.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

_log = structlog.get_logger(__name__)


class BackgroundWrites:
    """Runs store updates in the background; ``failure_event`` names them in the log."""

    def __init__(self, failure_event: str) -> None:
        self._failure_event = failure_event
        self._tasks: set[asyncio.Task[Any]] = set()

    def submit(self, update: Coroutine[Any, Any, object]) -> None:
        """Start ``update``; without a running loop (synchronous use) it is dropped."""
        try:
            task = asyncio.get_running_loop().create_task(update)
        except RuntimeError:
            update.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            _log.warning(self._failure_event, error=str(exc))
