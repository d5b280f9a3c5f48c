"""The SQLite backend's ``people_of`` answers kept in memory (``storage/sqlite/people.py``): asked
again, a key costs no look-up in the graph, and every answer stays what the graph says after
each change to it, in this process and in another sharing the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from forwarder.storage.base import Key
from forwarder.storage.sqlite import SqliteStorage, people
from forwarder.storage.sqlite.people import KnownPeople
from forwarder.storage.sqlite.settled import bump_epoch
from tests.storage.contract.builders import NOW

U: Key = ("userId", "U")
A: Key = ("email", "a@x.co")
B: Key = ("email", "b@x.co")


def _bare_graph(path: Path) -> sqlite3.Connection:
    """The two tables ``KnownPeople`` reads, empty, on a connection in autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    conn.execute(
        "CREATE TABLE identities (portal TEXT, kind TEXT, value TEXT, person INT,"
        " updated_at REAL, PRIMARY KEY (portal, kind, value))"
    )
    conn.execute("CREATE INDEX identities_person ON identities (portal, person)")
    return conn


def _graph_statements(path: Path, asks: int) -> list[int]:
    """How many statements read ``identities`` in each of ``asks`` ``people_of`` calls."""
    conn = _bare_graph(path)
    conn.execute("INSERT INTO identities VALUES ('main', 'userId', 'U', 1, 1.0)")
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    known = KnownPeople()
    counts = []
    try:
        for _ in range(asks):
            seen.clear()
            conn.execute("BEGIN")
            assert known.people_of(conn, "main", [U, A]) == {U: [U]}
            conn.execute("COMMIT")
            counts.append(sum("identities" in statement for statement in seen))
    finally:
        conn.close()
    return counts


def test_keys_asked_again_are_answered_without_reading_the_graph(tmp_path: Path) -> None:
    """The known key and the unknown one (one statement per kind at first): both answered
    from memory the second time."""
    assert _graph_statements(tmp_path / "f.db", 2) == [2, 0]


def test_answers_are_read_again_after_the_identity_epoch_moved(tmp_path: Path) -> None:
    conn = _bare_graph(tmp_path / "f.db")
    known = KnownPeople()
    try:
        assert known.people_of(conn, "main", [U]) == {}
        conn.execute("INSERT INTO identities VALUES ('main', 'userId', 'U', 1, 1.0)")
        bump_epoch(conn)  # as every change to the graph does, in its transaction
        assert known.people_of(conn, "main", [U]) == {U: [U]}
    finally:
        conn.close()


async def test_people_of_follows_a_restamp_learned_after_it_answered(tmp_path: Path) -> None:
    """The order of an answer is the stamps' order: learning one key of a person again moves
    it last in the answers of every key of the person, answered before or not."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.learn("main", [[U, A]], now=NOW)
        assert (await storage.people_of("main", [U]))[U] == [A, U]
        await storage.learn("main", [[A]], now=NOW + 1)
        people = await storage.people_of("main", [U, A])
    finally:
        await storage.close()
    assert people == {U: [U, A], A: [U, A]}


async def test_people_of_follows_a_merge_learned_after_it_answered(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.learn("main", [[U, A], [B]], now=NOW)
        assert await storage.people_of("main", [B]) == {B: [B]}
        await storage.learn("main", [[A, B]], now=NOW + 1)
        people = await storage.people_of("main", [U, B])
    finally:
        await storage.close()
    assert people == {U: [U, A, B], B: [U, A, B]}


async def test_people_of_follows_a_key_learned_after_it_was_unknown(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        assert await storage.people_of("main", [B]) == {}
        await storage.learn("main", [[B]], now=NOW)
        people = await storage.people_of("main", [B])
    finally:
        await storage.close()
    assert people == {B: [B]}


async def test_people_of_follows_a_contact_remapped_after_it_answered(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.link("main", [A, ("contactId", "1")], now=NOW)
        assert (await storage.people_of("main", [A]))[A] == [("contactId", "1"), A]
        await storage.remap_contact("main", ["1"], "2", now=NOW + 1)
        people = await storage.people_of("main", [A])
    finally:
        await storage.close()
    assert people == {A: [("contactId", "2"), A]}


async def test_people_of_follows_a_person_erased_after_it_answered(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.learn("main", [[U, A]], now=NOW)
        assert await storage.people_of("main", [U]) != {}
        await storage.erase("main", [A], now=NOW + 1)
        people = await storage.people_of("main", [U, A])
    finally:
        await storage.close()
    assert people == {}


async def test_people_of_follows_a_link_another_process_learned_after_it_answered(
    tmp_path: Path,
) -> None:
    """A delivery process (reads apart) and the serving one (reads on its writer) each keep
    answers; a link either learns is in the other's next answer."""
    serving = SqliteStorage(tmp_path / "f.db")
    delivering = SqliteStorage(tmp_path / "f.db", shared=True, read_apart=True)
    await serving.open()
    await delivering.open()
    try:
        await serving.learn("main", [[U, A]], now=NOW)
        assert (await delivering.people_of("main", [U]))[U] == [A, U]
        assert (await serving.people_of("main", [U]))[U] == [A, U]
        await serving.learn("main", [[U, B]], now=NOW + 1)
        by_delivering = await delivering.people_of("main", [U])
        await delivering.link("main", [U, ("contactId", "7")], now=NOW + 2)
        by_serving = await serving.people_of("main", [U])
    finally:
        await delivering.close()
        await serving.close()
    assert by_delivering == {U: [A, B, U]}
    assert by_serving == {U: [A, B, ("contactId", "7"), U]}


def test_answers_past_the_cap_start_again_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(people, "MAX_KEYS", 2)
    conn = _bare_graph(tmp_path / "f.db")
    known = KnownPeople()
    try:
        known.people_of(conn, "main", [U, A])
        kept = len(known)
        known.people_of(conn, "main", [B])
    finally:
        conn.close()
    assert (kept, len(known)) == (2, 1)
