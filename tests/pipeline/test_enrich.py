"""Enrich learns touches: each new touch reaches the store once, and again after a failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forwarder.delivery.touches import TouchReader
from forwarder.errors import StorageUnavailableError
from forwarder.pipeline.enrich import Enricher
from forwarder.storage.sqlite import SqliteStorage

KEY = ("anonymousId", "A")


def view(message_id: str, campaign: str) -> dict[str, Any]:
    kept = {"name": campaign, "timestamp": "2026-11-01T10:00:00.000Z"}
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": "A",
        "timestamp": "2026-11-02T10:00:00.000Z",
        "context": {"attribution": {"firstTouch": kept, "lastTouch": kept}},
    }


async def test_touch_not_taken_by_a_failed_store_is_given_again_on_retry(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    enrich = Enricher(storage, lambda: 0.0, touch_readers={"main": TouchReader(["utm"])})
    with pytest.raises(StorageUnavailableError):
        await enrich.learn_touches("main", [view("v1", "spring")])  # not open: refused
    await storage.open()
    try:
        await enrich.learn_touches("main", [view("v1", "spring")])  # the retry
        memory = await storage.touches_of("main", [KEY])
    finally:
        await storage.close()
    assert memory[KEY].first.name == "spring"
    assert memory[KEY].first.message_id == "v1"
