"""Metadata: small values that persist."""

from __future__ import annotations

from forwarder.storage.base import Storage


async def test_meta_values_persist(storage: Storage) -> None:
    assert await storage.get_meta("k") is None
    await storage.set_meta("k", b"v1")
    await storage.set_meta("k", b"v2")
    assert await storage.get_meta("k") == b"v2"
