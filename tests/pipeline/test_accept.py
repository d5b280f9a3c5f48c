"""Accept: what a request keeps while it waits for its events to be durable."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forwarder.clock import ManualClock
from forwarder.events.messages import Track
from forwarder.pipeline.accept import Accepter
from forwarder.pipeline.validate import Decoded, Valid
from forwarder.storage.base import Accepted, AppendResult, NewEvent
from forwarder.telemetry import Metrics
from tests.conftest import make_settings


class _Data(dict[str, Any]):
    """An event's dict that can be watched for being freed (a plain dict cannot)."""


class _Store:
    """Answers the append once the test has looked at what is still alive."""

    def __init__(self) -> None:
        self.alive_at_append: bool | None = None
        self.watched: weakref.ref[_Data] | None = None

    async def pending_count(self) -> int:
        return 0

    async def append(
        self, events: Sequence[NewEvent], *, now: float, dedup_window_s: float
    ) -> list[AppendResult]:
        await asyncio.sleep(0)  # the commit: other requests run meanwhile
        assert self.watched is not None
        self.alive_at_append = self.watched() is not None
        return [Accepted(seq) for seq in range(len(events))]


async def test_a_requests_decoded_events_are_freed_before_it_waits_on_the_commit(
    tmp_path: Path,
) -> None:
    """Dozens of requests wait on one group commit: what they decoded must not stay alive
    meanwhile, or every garbage collection walks it."""
    store = _Store()
    accepter = Accepter(make_settings(tmp_path), store, Metrics(), ManualClock(1_000.0))  # type: ignore[arg-type]
    data = _Data(type="track", userId="u1", messageId="m1", event="Order Completed")
    store.watched = weakref.ref(data)
    message = Track(event="Order Completed", user_id="u1", message_id="m1")
    accepting = accepter(
        make_settings(tmp_path).sources[0], Decoded([Valid(0, message, data)], [], None, 1)
    )
    del data

    response = await accepting

    assert (response.accepted, store.alive_at_append) == (1, False)
