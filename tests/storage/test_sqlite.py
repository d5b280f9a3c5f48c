"""What only the SQLite backend does: WAL, fsync settings, failing storage."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from forwarder.errors import StorageUnavailableError
from forwarder.storage.base import (
    Accepted,
    Attempt,
    Duplicate,
    NewEvent,
    Touch,
    TouchKind,
    TouchOrigin,
)
from forwarder.storage.outcomes import Outcome, Reason
from forwarder.storage.sqlite import SqliteStorage, sql
from forwarder.storage.sqlite.dedup import SeenKeys, key_of, seen_value


def event(message_id: str, received_at: float = 1.0) -> NewEvent:
    return NewEvent(
        portal="main",
        message_id=message_id,
        source="s",
        type="track",
        name="E",
        received_at=received_at,
        payload=b"{}",
        destinations=("conversions",),
    )


async def test_appends_grouped_in_one_commit_store_each_events_own_items_and_counts(
    tmp_path: Path,
) -> None:
    """The writer inserts a group's open items set-wise (runs of events with the same queues
    and portal): each event still gets exactly its own items, in its portal, with its append's
    clock, and the tallies count them; a duplicate in the middle breaks nothing."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event("dup")], now=1.0, dedup_window_s=60)

    def ev(
        mid: str, portal: str = "main", *queues: str, dropped: str | None = None, at: float = 2.0
    ) -> NewEvent:
        return NewEvent(
            portal=portal,
            message_id=mid,
            source="s",
            type="track",
            name="E",
            received_at=at,
            payload=f'{{"m":"{mid}"}}'.encode(),
            destinations=queues,
            dropped=(("timeline", dropped),) if dropped else (),
            test=mid == "b",
        )

    first = [
        ev("a", "main", "conversions"),
        ev("b", "main", "conversions"),
        ev("dup", "main", "conversions"),
        ev("c", "main", "conversions", "timeline"),
        ev("d", "other", "conversions", "timeline"),
        ev("e", "other", dropped="no mapping"),
        ev("f", "main", "conversions"),
    ]
    # g: received at the append's clock (items from the events row); h: not (bound values)
    second = [ev("g", "main", "conversions", at=3.0), ev("h", "main", "contacts")]
    results = await asyncio.gather(
        storage.append(first, now=2.0, dedup_window_s=60),
        storage.append(second, now=3.0, dedup_window_s=60),
    )
    counts = await storage.counts()
    await storage.close()
    assert [type(r).__name__ for r in results[0]] == ["Accepted"] * 2 + ["Duplicate"] + [
        "Accepted"
    ] * 4
    conn = sqlite3.connect(tmp_path / "f.db")
    rows = conn.execute(
        "SELECT e.message_id, i.portal, i.destination, i.state, i.available_at, i.outcome"
        " IS NOT NULL FROM items i JOIN events e ON e.seq = i.event_seq"
        " WHERE e.message_id != 'dup' ORDER BY e.message_id, i.destination"
    ).fetchall()
    stored = conn.execute("SELECT message_id, test, payload FROM events ORDER BY seq").fetchall()
    conn.close()
    assert rows == [
        ("a", "main", "conversions", "pending", 2.0, 0),
        ("b", "main", "conversions", "pending", 2.0, 0),
        ("c", "main", "conversions", "pending", 2.0, 0),
        ("c", "main", "timeline", "pending", 2.0, 0),
        ("d", "other", "conversions", "pending", 2.0, 0),
        ("d", "other", "timeline", "pending", 2.0, 0),
        ("e", "other", "timeline", "dropped", 2.0, 1),
        ("f", "main", "conversions", "pending", 2.0, 0),
        ("g", "main", "conversions", "pending", 3.0, 0),
        ("h", "main", "contacts", "pending", 3.0, 0),
    ]
    assert stored[2] == ("b", 1, b'{"m":"b"}')
    assert counts[("main", "conversions", "accepted")] == 6  # dup's first copy too
    assert counts[("main", "timeline", "accepted")] == 1
    assert counts[("other", "conversions", "accepted")] == 1
    assert counts[("other", "timeline", "accepted")] == 2
    assert counts[("other", "timeline", "dropped")] == 1
    assert counts[("main", "contacts", "accepted")] == 1


async def test_database_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_locked_database_fails_with_storage_unavailable(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    blocker = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StorageUnavailableError, match="locked"):
        await storage.append([event("a")], now=1.0, dedup_window_s=10)
    blocker.execute("ROLLBACK")
    blocker.close()
    await storage.append([event("a")], now=1.0, dedup_window_s=10)
    assert len(await storage.recent_events()) == 1
    await storage.close()


async def test_a_write_behind_another_process_lock_goes_on_soon_after_the_lock_is_freed(
    tmp_path: Path,
) -> None:
    """A delivery process's commit must not stall ingest's group for longer than it lasts.

    SQLite's own busy handler sleeps 1, 2, 5 ... 50, 50, 100 ms: a lock freed 240 ms into the
    wait is taken only at 328 ms. The writer looks again every half millisecond instead."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    blocker = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        append = asyncio.ensure_future(storage.append([event("a")], now=1.0, dedup_window_s=10))
        await asyncio.sleep(0.24)
        assert not append.done()
        blocker.execute("COMMIT")
        freed = time.monotonic()
        [result] = await append
        late_s = time.monotonic() - freed
    finally:
        blocker.close()
        await storage.close()
    assert isinstance(result, Accepted)
    assert late_s < 0.05


async def test_a_delivery_process_reads_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    """In a delivery process reads take no write lock: ingest's commits never wait for them,
    and they never wait for ingest's."""
    storage = SqliteStorage(tmp_path / "f.db", shared=True, release_leases=False, read_apart=True)
    await storage.open()
    await storage.append([event("a")], now=1.0, dedup_window_s=10)
    await storage.link("main", [("userId", "u"), ("email", "u@example.com")], now=1.0)
    blocker = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # in WAL mode: the write lock only
        started = time.monotonic()
        people = await storage.people_of("main", [("userId", "u")])
        touches = await storage.touches_of("main", [("userId", "u")])
        [stored] = await storage.recent_events()
        [item] = await storage.items_in_state("pending")
        took_s = time.monotonic() - started
        with pytest.raises(StorageUnavailableError, match="locked"):  # writes still wait
            await storage.lease("main", "conversions", limit=5, now=2.0, lease_s=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        await storage.close()
    assert sorted(people[("userId", "u")]) == [("email", "u@example.com"), ("userId", "u")]
    assert touches == {}
    assert stored.message_id == "a"
    assert item.event_seq == stored.seq
    assert took_s < 1.0


async def test_unopenable_path_fails_with_storage_unavailable(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    storage = SqliteStorage(tmp_path / "dir.db")
    with pytest.raises(StorageUnavailableError):
        await storage.open()


async def test_closed_storage_refuses_writes(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.close()
    with pytest.raises(StorageUnavailableError):
        await storage.append([event("a")], now=1.0, dedup_window_s=10)


async def test_a_hash_collision_of_dedup_keys_never_drops_an_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every messageId gets the same index key: only the stored event can tell them apart.
    monkeypatch.setattr("forwarder.storage.sqlite.sql.key_of", lambda portal, message_id: 7)
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    first = await storage.append([event("a"), event("b")], now=1.0, dedup_window_s=10)
    later = await storage.append([event("c"), event("c")], now=2.0, dedup_window_s=10)
    assert [type(r) for r in first] == [Accepted, Accepted]
    assert [type(r) for r in later] == [Accepted, Duplicate]
    assert [e.message_id for e in await storage.recent_events()] == ["a", "b", "c"]
    await storage.close()


async def test_dedup_keys_are_rebuilt_from_the_events_of_the_last_window(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db", dedup_window_s=100)
    await storage.open()
    await storage.append([event("old", 1_000.0)], now=1_000.0, dedup_window_s=100)
    await storage.append([event("new", 1_200.0)], now=1_200.0, dedup_window_s=100)
    await storage.close()
    reopened = SqliteStorage(tmp_path / "f.db", dedup_window_s=100)
    await reopened.open()
    assert len(reopened._seen) == 1  # "old" is a window (and the minute of slack) older
    [new] = await reopened.append([event("new", 1_250.0)], now=1_250.0, dedup_window_s=100)
    [old] = await reopened.append([event("old", 1_250.0)], now=1_250.0, dedup_window_s=100)
    assert isinstance(new, Duplicate)
    assert isinstance(old, Accepted)
    await reopened.close()


async def test_a_rolled_back_append_leaves_no_dedup_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()

    def fail(*_: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patched:  # fails after the rows went in, before the commit
        patched.setattr("forwarder.storage.sqlite.sql._tally", fail)
        with pytest.raises(StorageUnavailableError):
            await storage.append([event("a")], now=1.0, dedup_window_s=10)
    assert len(storage._seen) == 0
    [again] = await storage.append([event("a")], now=1.0, dedup_window_s=10)
    assert isinstance(again, Accepted)
    assert len(await storage.recent_events()) == 1
    await storage.close()


async def test_purge_keeps_events_as_long_as_their_dedup_keys(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event("a")], now=1.0, dedup_window_s=100)
    [item] = await storage.lease("main", "conversions", limit=1, now=1.0, lease_s=30)
    await storage.finish([item.id], "delivered", now=1.0)
    # Retention shorter than the window: the event stays, it is the record of its key.
    await storage.purge(dedup_before=1.0 - 100, events_before=50.0)
    [dup] = await storage.append([event("a")], now=60.0, dedup_window_s=100)
    assert isinstance(dup, Duplicate)
    assert len(await storage.recent_events()) == 1
    await storage.close()


def _as_version(path: Path, version: int, *statements: str) -> None:
    """Turn a store back into one of schema ``version``: ``statements`` undo the migrations
    after it (what an older release wrote)."""
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def test_dedup_keys_expire_part_by_part_across_all_shards() -> None:
    seen = SeenKeys()
    old = [(k, seen_value(k + 1_000, 10.0)) for k in range(-500, 500)]
    new = [(k * 7_919 + 10**9, seen_value(1, 20.0)) for k in range(-500, 500)]
    seen.remember([*old, *new])
    assert len(seen) == 2_000
    assert sum(seen.forget_before(15.0, part, 16) for part in range(16)) == 1_000
    assert all(key not in seen for key, _ in old)
    assert all(key in seen for key, _ in new)
    assert seen.get(-500 * 7_919 + 10**9) == (1, 20.0)


async def test_purge_goes_chunk_by_chunk_and_keeps_open_and_recent_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("forwarder.storage.sqlite.sql._PURGE_CHUNK", 7)
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append(
        [event(f"old-{i}", 100.0) for i in range(30)], now=100.0, dedup_window_s=10
    )
    await storage.append([event("recent", 500.0)], now=500.0, dedup_window_s=10)
    items = await storage.lease("main", "conversions", limit=31, now=500.0, lease_s=30)
    finished = [i.id for i in items if i.event.message_id not in ("old-12", "recent")]
    await storage.finish(finished, "delivered", now=500.0)
    assert await storage.purge(dedup_before=400.0, events_before=400.0) >= 29
    left = [e.message_id for e in await storage.recent_events(limit=100)]
    assert left == ["old-12", "recent"]  # still open; not old enough
    await storage.close()


async def test_version_1_database_gains_touch_memory_and_still_delivers(
    tmp_path: Path,
) -> None:
    """A file at schema version 1 (before touch memory: no ``touches`` table) is migrated at
    open, its queued items still lease, and touches can be remembered afterwards."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event("old")], now=1.0, dedup_window_s=60)
    await storage.close()
    _as_version(tmp_path / "f.db", 1, "DROP TABLE touches")

    reopened = SqliteStorage(tmp_path / "f.db")
    await reopened.open()
    try:
        [item] = await reopened.lease("main", "conversions", limit=5, now=2.0, lease_s=30)
        touch = Touch(
            at=1.0,
            kind=TouchKind.UTM,
            origin=TouchOrigin.CAMPAIGN,
            message_id="m",
            event_type="page",
        )
        await reopened.remember_touches("main", [(("anonymousId", "A"), touch)])
        memory = await reopened.touches_of("main", [("anonymousId", "A")])
    finally:
        await reopened.close()
    assert item.event.message_id == "old"
    assert memory[("anonymousId", "A")].first == touch


async def test_a_version_7_store_reads_parked_items_through_the_rewritten_index(
    tmp_path: Path,
) -> None:
    """Migration 8 recreates ``items_parked`` with its condition as ORs (an IN list there cost
    every state change); held, dead and expired items are still read through it."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event("a"), event("b")], now=1.0, dedup_window_s=60)
    first, _ = await storage.lease("main", "conversions", limit=2, now=2.0, lease_s=30)
    await storage.finish([first.id], "dead", now=3.0)
    await storage.close()
    _as_version(
        tmp_path / "f.db",
        7,
        "DROP INDEX items_parked",
        "CREATE INDEX items_parked ON items (state, available_at)"
        " WHERE state IN ('held', 'dead', 'expired')",
    )

    reopened = SqliteStorage(tmp_path / "f.db")
    await reopened.open()
    try:
        dead = await reopened.items_in_state("dead", portal="main")
    finally:
        await reopened.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    (definition,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'items_parked'"
    ).fetchone()
    plans = [
        conn.execute(query).fetchall()[0][3]
        for query in (
            "EXPLAIN QUERY PLAN SELECT outcome FROM items WHERE state = 'held'",
            "EXPLAIN QUERY PLAN SELECT outcome FROM items WHERE state = 'dead'",
            "EXPLAIN QUERY PLAN SELECT outcome FROM items WHERE state = 'expired'",
        )
    ]
    conn.close()
    assert [item.id for item in dead] == [first.id]
    assert " IN " not in definition
    assert plans == ["SEARCH items USING INDEX items_parked (state=?)"] * 3


async def test_a_version_8_stores_leases_come_back_through_the_split_ready_index(
    tmp_path: Path,
) -> None:
    """Migration 9 replaces ``items_ready`` (pending and leased items together, by due time)
    with ``items_pending`` and ``items_leased``: a store written before it, with items leased
    by a run that died, opened by a delivery process (which voids no lease), leases its
    pending items at once and the dead run's items when their lease runs out, each through
    its own index."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event("a"), event("b"), event("c")], now=1.0, dedup_window_s=60)
    await storage.lease("main", "conversions", limit=2, now=2.0, lease_s=30)
    await storage.close()
    _as_version(
        tmp_path / "f.db",
        8,
        "UPDATE items SET state = 'leased', available_at = 32.0, updated_at = 2.0, lease = NULL"
        " WHERE lease IS NOT NULL",
        "DROP TABLE leases",
        "DROP INDEX items_pending",
        "CREATE INDEX items_ready ON items (portal, destination, available_at)"
        " WHERE state IN ('pending', 'leased')",
    )

    reopened = SqliteStorage(tmp_path / "f.db", release_leases=False)
    await reopened.open()
    try:
        due_at = await reopened.ready_at("main", "conversions")
        pending = await reopened.lease("main", "conversions", limit=5, now=10.0, lease_s=30)
        waiting = await reopened.queue_depth("main", "conversions", now=10.0)
        early = await reopened.lease("main", "conversions", limit=5, now=31.0, lease_s=30)
        expired = await reopened.lease("main", "conversions", limit=5, now=33.0, lease_s=30)
    finally:
        await reopened.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    plan = conn.execute(
        f"EXPLAIN QUERY PLAN {sql._LEASE_PENDING}", ("main", "conversions", 1.0, 5)
    ).fetchall()
    conn.close()
    assert due_at == 1.0
    assert [i.event.message_id for i in pending] == ["c"]
    assert waiting[0] == 3
    assert early == []
    assert [i.event.message_id for i in expired] == ["a", "b"]
    assert "items_pending" in indexes
    assert not {"items_ready", "items_leased"} & indexes  # items_leased: dropped by migration 12
    # By queue number since migration 13 (the queue's two strings before).
    assert plan[0][3] == "SEARCH i USING INDEX items_pending (queue=? AND available_at<?)"


async def test_delivered_items_share_one_stored_outcome_and_read_it_back(
    tmp_path: Path,
) -> None:
    """A delivered outcome is kept once (migration 10): the rows of two batches refer to it
    rather than each carrying its JSON; other outcomes stay in the row; both read back."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event(m) for m in "abcd"], now=1.0, dedup_window_s=60)
    items = await storage.lease("main", "conversions", limit=4, now=2.0, lease_s=30)
    delivered = Outcome(Reason.DELIVERED, identifier="email", notes=("used email",))
    await storage.finish([items[0].id, items[1].id], "delivered", now=3.0, outcome=delivered)
    await storage.finish([items[2].id], "delivered", now=3.0, outcome=delivered)
    rejected = Outcome(Reason.REJECTED, "bad", correlation_id="c-1")
    await storage.finish([items[3].id], "dead", now=3.0, outcome=rejected)
    records = [r for seq in range(1, 5) for r in await storage.items_of(seq)]
    await storage.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    stored = [r[0] for r in conn.execute("SELECT outcome FROM items ORDER BY id")]
    shared = conn.execute("SELECT count(*) FROM outcomes").fetchone()[0]
    conn.close()
    assert [r.outcome for r in records] == [delivered, delivered, delivered, rejected]
    assert shared == 1
    assert stored[:3] == ["1", "1", "1"]
    assert stored[3].startswith("{")


async def test_a_version_10_stores_attempts_read_back_their_items_without_the_attempt_index(
    tmp_path: Path,
) -> None:
    """Migration 11 gives each attempt the list of its items and drops ``attempt_items``'
    index by attempt: attempts recorded before it and after it both read back whole."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event(m) for m in "abc"], now=1.0, dedup_window_s=60)
    items = await storage.lease("main", "conversions", limit=3, now=2.0, lease_s=30)
    ids = tuple(i.id for i in items)
    await storage.record_attempts([Attempt(ids[:2], 3.0, "/r", 503, 1.0, reason=Reason.RETRYING)])
    await storage.attempts_of(ids)
    await storage.close()
    _as_version(
        tmp_path / "f.db",
        10,
        "ALTER TABLE attempts DROP COLUMN items",
        "CREATE INDEX attempt_items_attempt ON attempt_items (attempt_id)",
    )

    reopened = SqliteStorage(tmp_path / "f.db")
    await reopened.open()
    try:
        await reopened.record_attempts([Attempt(ids, 4.0, "/r", 204, 1.0, reason=Reason.DELIVERED)])
        attempts = await reopened.attempts_of([ids[0]])
    finally:
        await reopened.close()
    conn = sqlite3.connect(tmp_path / "f.db")
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert [(a.item_ids, a.reason) for a in attempts] == [
        (ids[:2], Reason.RETRYING),
        (ids, Reason.DELIVERED),
    ]
    assert "attempt_items_attempt" not in indexes


def test_dedup_keys_folded_into_arrays_keep_the_newest_event_of_a_key() -> None:
    seen = SeenKeys()
    keys = [k * 256 for k in range(3_000)]  # one shard: folded into its arrays several times
    seen.remember((key, seen_value(1, 10.0)) for key in keys)
    seen.remember([(keys[7], seen_value(2, 20.0))])  # accepted again after its window
    seen.remember((key + 256 * 10_000, seen_value(3, 30.0)) for key in keys)
    assert len(seen) == 6_000
    assert seen.get(keys[7]) == (2, 20.0)
    assert seen.get(keys[8]) == (1, 10.0)
    assert seen.get(1) is None
    assert seen.forget_before(15.0) == 2_999
    assert seen.get(keys[7]) == (2, 20.0)
    assert keys[8] not in seen


def test_dedup_keys_folded_between_older_ones_are_all_found_with_their_latest_event() -> None:
    """Folds place each new key among the shard's older ones (not only after them), and a key
    accepted again replaces its older entry wherever it sits."""
    rng = random.Random(7)
    seen = SeenKeys()
    model: dict[int, int] = {}
    for round_ in range(6):
        batch = [rng.randrange(-(2**62), 2**62) & ~255 for _ in range(1_500)]  # one shard
        batch += rng.sample(sorted(model), min(len(model), 200))  # some seen before
        for seq, key in enumerate(batch, start=round_ * 10_000):
            model[key] = seq
        seen.remember((key, seen_value(model[key], 10.0 + round_)) for key in batch)
    assert len(seen) == len(model)
    assert all(seen.get(key) == (seq, 10.0 + seq // 10_000) for key, seq in model.items())
    assert seen.get(256) is None


def test_dedup_keys_rebuilt_from_the_file_keep_the_newest_event_of_a_key(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "events.db")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, portal, message_id, received_at)")
    rows = [(seq, "main", f"m-{seq % 500}", 1_000.0 + seq) for seq in range(1, 2_001)]
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
    seen = SeenKeys()
    seen.load(conn, window_s=10_000.0)
    assert len(seen) == 500
    assert seen.get(key_of("main", "m-7")) == (1_507, 2_507.0)
    conn.close()


async def test_learn_jobs_run_together_leave_the_graph_of_learning_one_after_another(
    tmp_path: Path,
) -> None:
    """The writer runs consecutive ``learn`` jobs as one ``learn_many``: the same people, the
    same key stamps, the same items released (all given to the first job)."""
    from forwarder.storage.sqlite import identity
    from tests.storage.contract.builders import NOW
    from tests.storage.contract.test_identity_graph import TAUGHT, _graph_with_held_items

    jobs = [(TAUGHT[:1], NOW + 5), (TAUGHT[1:2], NOW + 6), (TAUGHT[1:], NOW + 7)]
    outcomes = []
    for name in ("one-by-one", "together"):
        storage = SqliteStorage(tmp_path / f"{name}.db")
        await storage.open()
        held = await _graph_with_held_items(storage, "main")
        await storage.close()
        conn = sqlite3.connect(tmp_path / f"{name}.db", isolation_level=None)
        if name == "together":
            released = identity.learn_many(conn, "main", jobs)
            assert [len(r) for r in released[1:]] == [0, 0]
        else:
            released = [identity.learn(conn, "main", groups, now) for groups, now in jobs]
        graph = conn.execute(
            "SELECT kind, value, updated_at, (SELECT group_concat(o.kind || o.value) FROM"
            " (SELECT * FROM identities o WHERE o.person = i.person ORDER BY o.kind, o.value) o)"
            " FROM identities i ORDER BY kind, value"
        ).fetchall()
        conn.close()
        ids = sorted(item.id for items in released for item in items)
        outcomes.append((graph, ids))
        assert ids == sorted(held[k] for k in ("A", "U", "N"))
    assert outcomes[0] == outcomes[1]


async def test_learns_submitted_at_once_teach_every_link(tmp_path: Path) -> None:
    import asyncio

    from tests.storage.contract.test_identity_graph import TAUGHT, _graph_with_held_items

    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await _graph_with_held_items(storage, "main")
    released = await asyncio.gather(
        *(storage.learn("main", [keys], now=2e9 + i) for i, keys in enumerate(TAUGHT))
    )
    assert sorted(i.event.message_id for items in released for i in items) == [
        "main-A",
        "main-N",
        "main-U",
    ]
    [person] = (await storage.people_of("main", [("utk", "T2")])).values()
    assert {key for key in person} >= {("anonymousId", "N"), ("email", "n@x.co")}
    await storage.close()


def _attempt(ids: tuple[int, ...]) -> Attempt:
    return Attempt(ids, 2.0, "/r", 204, 1.0, None, None, Reason.DELIVERED, None)


async def test_an_attempt_is_committed_with_the_finish_queued_after_it(tmp_path: Path) -> None:
    """``record_attempts`` does not wait for its commit: a batch's attempt and its finish
    share one transaction (the writer, busy meanwhile, takes both in one group)."""
    groups: list[set[str]] = []

    class Counting(SqliteStorage):
        def _run_group(self, conn: sqlite3.Connection, group: list[Any]) -> None:
            names = [str(getattr(job.work, "__qualname__", "")) for job in group]
            groups.append(
                {w for w in ("record_attempts", "finish") for n in names if f".{w}." in n}
            )
            super()._run_group(conn, group)

    storage = Counting(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.append([event("a")], now=1.0, dedup_window_s=60)
        [item] = await storage.lease("main", "conversions", limit=1, now=1.0, lease_s=30)
        gate, inside = threading.Event(), threading.Event()
        busy = storage._queue(lambda c: inside.set() or gate.wait(5))
        # The writer is busy before both jobs are queued (a loaded machine may wake it late:
        # it would then take the attempt with ``busy``, in a group of their own).
        assert await asyncio.to_thread(inside.wait, 5)
        await asyncio.wait_for(storage.record_attempts([_attempt((item.id,))]), 1)
        finished = asyncio.ensure_future(storage.finish([item.id], "delivered", now=2.0))
        await asyncio.sleep(0)
        gate.set()
        await busy
        await finished
        attempts = await storage.attempts_of([item.id])
    finally:
        await storage.close()
    assert [g for g in groups if g] == [{"record_attempts", "finish"}]
    assert attempts == [_attempt((item.id,))]


async def test_attempts_read_apart_include_the_ones_just_recorded(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "f.db", read_apart=True)
    await storage.open()
    try:
        await storage.append([event("a")], now=1.0, dedup_window_s=60)
        [item] = await storage.lease("main", "conversions", limit=1, now=1.0, lease_s=30)
        await storage.record_attempts([_attempt((item.id,))])
        attempts = await storage.attempts_of([item.id])
    finally:
        await storage.close()
    assert attempts == [_attempt((item.id,))]


async def test_a_lease_alone_is_committed_without_fsync_and_with_anything_else_synced(
    tmp_path: Path,
) -> None:
    """A lease needs no fsync (a power loss voids leases anyway); a group holding anything
    else (here a lease and a finish queued together) is synced as configured."""
    synced: list[bool] = []

    class Recording(SqliteStorage):
        def _sync(self, conn: sqlite3.Connection, durable: bool) -> None:
            synced.append(durable)
            super()._sync(conn, durable)

    storage = Recording(tmp_path / "f.db")
    await storage.open()
    try:
        await storage.append([event("a"), event("b")], now=1.0, dedup_window_s=60)
        synced.clear()
        [item] = await storage.lease("main", "conversions", limit=1, now=1.0, lease_s=30)
        alone = await storage._submit(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        gate = threading.Event()
        busy = storage._queue(lambda c: gate.wait(5))
        leased = asyncio.ensure_future(
            storage.lease("main", "conversions", limit=1, now=1.0, lease_s=30)
        )
        finished = asyncio.ensure_future(storage.finish([item.id], "delivered", now=2.0))
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(busy, leased, finished)
    finally:
        await storage.close()
    assert (synced[0], alone, synced[-1]) == (False, 2, True)  # 2: FULL


async def test_a_lease_is_one_row_and_its_number_in_its_items_rows(tmp_path: Path) -> None:
    """Migration 12: a lease writes one row of ``leases`` (its queue, end and item ids) and its
    number in each item's ``lease``; the items keep their state (``pending``), due time and
    clock, leave ``items_pending`` and enter no other index; the finish of the batch removes
    the lease row."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()
    await storage.append([event(str(i)) for i in range(4)], now=1.0, dedup_window_s=60)

    def read(query: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(tmp_path / "f.db") as conn:
            return conn.execute(query).fetchall()

    items = "SELECT id, state, available_at, updated_at, lease FROM items ORDER BY id"
    leases = "SELECT id, portal, destination, until, items FROM leases"
    waiting = (
        "SELECT id FROM items INDEXED BY items_pending WHERE portal = 'main'"
        " AND destination = 'conversions' AND state = 'pending' AND lease IS NULL"
    )
    before = read(items)
    leased = await storage.lease("main", "conversions", limit=3, now=2.0, lease_s=30)
    after, lease_rows, left = read(items), read(leases), read(waiting)
    await storage.finish([i.id for i in leased], "delivered", now=3.0)
    finished = read(leases)
    await storage.close()
    assert after == [(*row[:4], 1 if row[0] <= 3 else None) for row in before]
    assert lease_rows == [(1, "main", "conversions", 32.0, "[1,2,3]")]
    assert left == [(4,)]
    assert finished == []


async def test_the_open_count_from_the_tallies_is_the_count_of_open_rows_after_every_change(
    tmp_path: Path,
) -> None:
    """``count_open`` (the backlog bound at open, and a serving process's refresh beside
    delivery processes) reads accepted less final from the tallies instead of counting rows: it
    agrees with the rows through appends, drops, leases, holds, finishes, requeues and
    erasures."""
    storage = SqliteStorage(tmp_path / "f.db")
    await storage.open()

    def both() -> tuple[int, int]:
        with sqlite3.connect(tmp_path / "f.db") as conn:
            rows = conn.execute(
                "SELECT count(*) FROM items WHERE state IN ('pending', 'leased', 'held')"
            ).fetchone()[0]
            return sql.count_open(conn), rows

    try:
        email = b'{"context":{"traits":{"email":"a@example.com"}}}'
        events = [event(f"m{i}") for i in range(8)]
        events.append(
            NewEvent(
                "main", "x", "s", "track", "E", 1.0, email, ("conversions",), (("timeline", "no"),)
            )
        )
        await storage.append(events, now=1.0, dedup_window_s=60)
        assert both() == (9, 9)
        leased = await storage.lease("main", "conversions", limit=6, now=2.0, lease_s=30)
        await storage.finish([leased[0].id, leased[1].id], "delivered", now=2.0)
        await storage.finish([leased[2].id], "dead", now=2.0)
        await storage.hold([leased[3].id], until=100.0, now=2.0)
        await storage.finish([leased[4].id], "dropped", now=2.0)
        assert both() == (5, 5)
        await storage.requeue([leased[2].id], state="dead", now=3.0)
        assert both() == (6, 6)
        await storage.erase("main", [("email", "a@example.com")], now=4.0)
        assert both() == (5, 5)
        assert await storage.pending_count() == 5
    finally:
        await storage.close()
    reopened = SqliteStorage(tmp_path / "f.db")
    await reopened.open()
    try:
        assert await reopened.pending_count() == 5
    finally:
        await reopened.close()
