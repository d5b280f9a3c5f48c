"""The SQLite writer's cache of settled links (``storage/sqlite/settled.py``): learning a link it
knows costs no statement, and the graph, the stamps' order and the releases stay what learning
it again would make them, in this process and with another process sharing the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from forwarder.storage.base import Key
from forwarder.storage.sqlite import SqliteStorage
from tests.storage.contract.builders import NOW, WINDOW, event

LINK: list[Key] = [("userId", "U"), ("email", "a@x.co")]


def _graph(path: Path) -> list[tuple[str, str, int, float]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT kind, value, person, updated_at FROM identities ORDER BY person, updated_at,"
            " kind, value"
        ).fetchall()
    finally:
        conn.close()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def _held_on(storage: SqliteStorage, message_id: str, keys: list[Key], now: float) -> int:
    await storage.append([event(message_id)], now=now, dedup_window_s=WINDOW)
    [item] = await storage.lease("main", "conversions", limit=1, now=now, lease_s=30)
    await storage.hold([item.id], until=now + 99, now=now, keys=keys)
    return item.id


async def test_a_link_learned_again_is_settled_and_not_written_again(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.learn("main", [LINK], now=NOW)
        before = _graph(tmp_path / "f.db")
        assert await storage.learn("main", [list(reversed(LINK))], now=NOW + 5) == []
        after = _graph(tmp_path / "f.db")
    finally:
        await storage.close()
    assert [r[:3] for r in after] == [r[:3] for r in before]
    assert {r[3] for r in after} == {NOW}  # not restamped: the keys' order could not change


async def test_a_link_sharing_a_key_with_a_settled_one_unsettles_it(tmp_path: Path) -> None:
    """U-a settled, then U-b: learning U-a again makes a the most recently seen email again,
    as it does without any cache (delivery picks the most recently seen)."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.learn("main", [LINK], now=NOW)
        await storage.learn("main", [LINK], now=NOW + 1)  # settled
        await storage.learn("main", [[("userId", "U"), ("email", "b@x.co")]], now=NOW + 2)
        await storage.learn("main", [LINK], now=NOW + 3)
        people = await storage.people_of("main", [("userId", "U")])
    finally:
        await storage.close()
    assert people[("userId", "U")] == [("email", "b@x.co"), ("email", "a@x.co"), ("userId", "U")]


async def test_an_item_held_after_its_link_was_settled_is_released_by_the_next_event(
    tmp_path: Path,
) -> None:
    """The race the cache must not widen: delivery read the graph before the link was learned,
    and holds the item after; the next event asserting the link releases it."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.learn("main", [LINK], now=NOW)
        await storage.learn("main", [LINK], now=NOW + 1)
        held = await _held_on(storage, "late", [("userId", "U")], NOW + 2)
        released = await storage.learn("main", [LINK], now=NOW + 3)
    finally:
        await storage.close()
    assert [i.id for i in released] == [held]


async def test_an_item_held_by_another_process_is_released_by_the_next_event(
    tmp_path: Path,
) -> None:
    """A delivery process shares the file: its hold is seen through the file's epoch."""
    ingest = SqliteStorage(tmp_path / "f.db")
    delivery = SqliteStorage(tmp_path / "f.db", shared=True, release_leases=False)
    await ingest.open()
    await delivery.open()
    try:
        await ingest.learn("main", [LINK], now=NOW)
        await ingest.learn("main", [LINK], now=NOW + 1)
        await ingest.append([event("late")], now=NOW + 2, dedup_window_s=WINDOW)
        [item] = await delivery.lease("main", "conversions", limit=1, now=NOW + 2, lease_s=30)
        await delivery.hold([item.id], until=NOW + 99, now=NOW + 2, keys=[("userId", "U")])
        released = await ingest.learn("main", [LINK], now=NOW + 3)
    finally:
        await delivery.close()
        await ingest.close()
    assert [i.id for i in released] == [item.id]


async def test_a_settled_link_is_learned_again_after_its_person_was_erased(
    tmp_path: Path,
) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.learn("main", [LINK], now=NOW)
        await storage.learn("main", [LINK], now=NOW + 1)
        await storage.erase("main", [("userId", "U")], now=NOW + 2)
        await storage.learn("main", [LINK], now=NOW + 3)
        people = await storage.people_of("main", [("userId", "U")])
    finally:
        await storage.close()
    assert sorted(people[("userId", "U")]) == sorted(LINK)


async def test_a_settled_link_is_learned_again_after_another_process_erased_its_person(
    tmp_path: Path,
) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.learn("main", [LINK], now=NOW)
    await storage.learn("main", [LINK], now=NOW + 1)
    other = SqliteStorage(tmp_path / "f.db", shared=True, release_leases=False)
    await other.open()
    try:
        await other.erase("main", [("userId", "U")], now=NOW + 2)
        await storage.learn("main", [LINK], now=NOW + 3)
        people = await storage.people_of("main", [("email", "a@x.co")])
    finally:
        await other.close()
        await storage.close()
    assert sorted(people[("email", "a@x.co")]) == sorted(LINK)


async def test_a_settled_link_taught_beside_one_sharing_its_key_is_learned_too(
    tmp_path: Path,
) -> None:
    """One request teaching U-z (settled) and U-b: all three keys are stamped at once."""
    settled: list[Key] = [("userId", "U"), ("email", "z@x.co")]
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.learn("main", [settled], now=NOW)
        await storage.learn("main", [settled, [("userId", "U"), ("email", "b@x.co")]], now=NOW + 2)
    finally:
        await storage.close()
    assert {(kind, at) for kind, _, _, at in _graph(tmp_path / "f.db")} == {
        ("userId", NOW + 2),
        ("email", NOW + 2),
    }
