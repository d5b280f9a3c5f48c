"""Event kinds (``events.kind``, migration 14): a leased item's source, type and name come
from its event's kind number, or from its columns where it has none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from forwarder.errors import StorageUnavailableError
from forwarder.storage.base import NewEvent
from forwarder.storage.sqlite import SqliteStorage


def event(message_id: str, source: str = "s", name: str | None = "E") -> NewEvent:
    return NewEvent(
        portal="main",
        message_id=message_id,
        source=source,
        type="track",
        name=name,
        received_at=1.0,
        payload=b"{}",
        destinations=("conversions",),
    )


async def _leased_kinds(storage: SqliteStorage) -> dict[str, tuple[str, str, str | None]]:
    leased = await storage.lease("main", "conversions", limit=100, now=10.0, lease_s=30)
    return {i.event.message_id: (i.event.source, i.event.type, i.event.name) for i in leased}


async def test_events_of_one_kind_share_one_number(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event("a"), event("b")], now=1.0, dedup_window_s=10)
    await storage.append([event("c", name=None)], now=1.0, dedup_window_s=10)
    await storage.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    kinds = conn.execute("SELECT source, type, name FROM kinds ORDER BY id").fetchall()
    numbers = conn.execute("SELECT kind FROM events ORDER BY seq").fetchall()
    conn.close()
    assert kinds == [("s", "track", "E"), ("s", "track", None)]
    assert numbers == [(1,), (1,), (2,)]


async def test_events_stored_without_a_kind_number_lease_with_their_own_columns(
    tmp_path: Path,
) -> None:
    """As events stored before migration 14 (or erased ones) are."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event("a"), event("b", "t", None)], now=1.0, dedup_window_s=10)
    await storage.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    conn.execute(  # a row as migration 14 leaves it: its own columns, no kind
        "UPDATE events SET kind = NULL, source = 't', type = 'track', name = NULL"
        " WHERE message_id = 'b'"
    )
    conn.commit()
    conn.close()
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    leased = await _leased_kinds(storage)
    await storage.close()
    assert leased == {"a": ("s", "track", "E"), "b": ("t", "track", None)}


async def test_an_erased_event_keeps_its_source_and_type_and_loses_its_name(
    tmp_path: Path,
) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    erased = event("a", "web")
    erased = NewEvent(**{**msgspec.structs.asdict(erased), "payload": b'{"userId":"u"}'})
    [accepted] = await storage.append([erased], now=1.0, dedup_window_s=10)
    await storage.link("main", [("userId", "u")], now=1.0)
    await storage.erase("main", [("userId", "u")], now=2.0)
    stored = await storage.get_event(accepted.seq)
    await storage.close()
    assert stored is not None
    assert (stored.source, stored.type, stored.name) == ("web", "track", None)
    assert stored.payload == b'{"erased":true}'


async def test_a_kind_numbered_in_a_rolled_back_group_is_numbered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The number a rolled-back append gave its kind is free again: a later kind may take it,
    and the first kind must not keep it."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()

    def fail(*_: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patched:  # fails after the rows went in, before the commit
        patched.setattr("forwarder.storage.sqlite.sql._tally", fail)
        with pytest.raises(StorageUnavailableError):
            await storage.append([event("a", "first")], now=1.0, dedup_window_s=10)
    await storage.append([event("b", "second")], now=1.0, dedup_window_s=10)
    await storage.append([event("a", "first")], now=1.0, dedup_window_s=10)
    leased = await _leased_kinds(storage)
    await storage.close()
    assert leased == {"a": ("first", "track", "E"), "b": ("second", "track", "E")}


async def test_a_delivery_process_reads_the_kinds_the_serving_process_numbered(
    tmp_path: Path,
) -> None:
    serving = SqliteStorage(tmp_path / "f.db", shared=True)
    await serving.open()
    delivering = SqliteStorage(tmp_path / "f.db", shared=True, release_leases=False)
    await delivering.open()
    await serving.append([event("a", "x"), event("b", "y", None)], now=1.0, dedup_window_s=10)
    leased = await _leased_kinds(delivering)
    await delivering.close()
    await serving.close()
    assert leased == {"a": ("x", "track", "E"), "b": ("y", "track", None)}
