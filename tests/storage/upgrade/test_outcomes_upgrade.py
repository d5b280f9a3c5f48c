"""Stores written before outcomes were typed (free-text ``detail``) open with typed outcomes:
the 0.1.0 fixtures, and stores at SQLite schema 6 / Redis key-space version 2 holding every kind
of old detail text."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import redis

from forwarder.storage.base import FinalState, NewEvent, Storage
from forwarder.storage.outcomes import Outcome, Reason
from forwarder.storage.redis import RedisStorage
from forwarder.storage.sqlite import SqliteStorage
from forwarder.storage.sqlite import migrations as sqlite_migrations
from tests.storage.redis_server import REDIS_URL, redis_prefix
from tests.storage.upgrade.test_upgrade import FIXTURES, old_redis  # noqa: F401 (a fixture)

NOW = 1_800_000_000.0
USED = "skipped email from traits.email: not a valid email; used utk from context.hubspotutk"
NO_ONE = "no objectId, email or utk known for this person yet"
REFUSED = (
    '{"reason":"400: Property \'b\' does not exist","correlationId":"c-1",'
    '"category":"VALIDATION_ERROR"}'
)

# (final state or "pending"/"held", the old detail text, the outcome it stands for)
OLD_DETAILS: list[tuple[str, str | None, Outcome | None]] = [
    ("delivered", USED, Outcome(Reason.DELIVERED, identifier="utk", notes=tuple(USED.split("; ")))),
    ("delivered", None, Outcome(Reason.DELIVERED)),
    ("delivered", "merged into a later identify", Outcome(Reason.MERGED)),
    ("held", NO_ONE, Outcome(Reason.AWAITING_IDENTITY, notes=(NO_ONE,))),
    (
        "dead",
        REFUSED,
        Outcome(Reason.REJECTED, "400: Property 'b' does not exist", "VALIDATION_ERROR", "c-1"),
    ),
    ("dead", "OBJECT_NOT_FOUND: gone", Outcome(Reason.REJECTED, "OBJECT_NOT_FOUND: gone")),
    ("dropped", "erased on request", Outcome(Reason.ERASED)),
    ("dropped", "purged by operator", Outcome(Reason.PURGED)),
    (
        "dropped",
        "no mapping for this event any more",
        Outcome(Reason.POLICY, "no mapping for this event any more"),
    ),
    ("expired", "expired-unidentified", Outcome(Reason.UNIDENTIFIED)),
    ("expired", "too old: HubSpot answered 503", Outcome(Reason.TOO_OLD, "HubSpot answered 503")),
    ("pending", "replayed", Outcome(Reason.REPLAYED)),
    ("pending", "paused: 403: forbidden", Outcome(Reason.PAUSED, "403: forbidden")),
    ("pending", "access token refreshed", Outcome(Reason.REAUTHORIZED)),
    ("pending", "connection error", Outcome(Reason.RETRYING, "connection error")),
    ("pending", None, None),
]


def _event(n: int) -> NewEvent:
    return NewEvent(
        portal="main",
        message_id=f"m{n}",
        source="backend",
        type="track",
        name="Order Completed",
        received_at=NOW,
        payload=b'{"messageId":"m%d"}' % n,
        destinations=("conversions",),
    )


async def _write_items(storage: Storage) -> list[int]:
    """One item per row of OLD_DETAILS, in its state; their ids in order."""
    await storage.append([_event(n) for n in range(len(OLD_DETAILS))], now=NOW, dedup_window_s=60)
    leased = await storage.lease("main", "conversions", limit=100, now=NOW, lease_s=30)
    ids = sorted(i.id for i in leased)
    for item_id, (state, _, _) in zip(ids, OLD_DETAILS, strict=True):
        if state == "held":
            await storage.hold([item_id], until=NOW + 1000, now=NOW)
        elif state == "pending":
            await storage.retry([item_id], available_at=NOW, now=NOW)
        else:
            final: FinalState = state  # type: ignore[assignment]
            await storage.finish([item_id], final, now=NOW)
    return ids


async def _outcomes(storage: Storage) -> list[Outcome | None]:
    records = [r for seq in range(1, len(OLD_DETAILS) + 1) for r in await storage.items_of(seq)]
    return [r.outcome for r in sorted(records, key=lambda r: r.id)]


async def test_a_schema_6_sqlite_store_reads_its_old_details_into_typed_outcomes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "six.db"
    conn = sqlite3.connect(db)
    for migration in sqlite_migrations.MIGRATIONS[:6]:
        conn.executescript(migration.sql)
    conn.execute("PRAGMA user_version = 6")
    conn.execute(
        "INSERT INTO events (portal, message_id, source, type, name, received_at, test, payload)"
        " VALUES ('main', 'm', 'backend', 'track', 'x', ?, 0, X'7B7D')",
        (NOW,),
    )
    conn.executemany(
        "INSERT INTO items (event_seq, portal, destination, state, available_at, updated_at,"
        " detail) VALUES (1, 'main', 'conversions', ?, ?, ?, ?)",
        [(state, NOW, NOW, detail) for state, detail, _ in OLD_DETAILS],
    )
    conn.execute(
        "INSERT INTO attempts (at, route, status, duration_ms, correlation_id, error)"
        " VALUES (?, '/r', 503, 1.0, NULL, 'Retry'), (?, '/r', 200, 1.0, 'c', NULL)",
        (NOW, NOW),
    )
    conn.executemany("INSERT INTO attempt_items VALUES (?, 1)", [(1,), (2,)])
    conn.commit()
    conn.close()

    storage = SqliteStorage(db)
    await storage.open()
    try:
        records = sorted(await storage.items_of(1), key=lambda r: r.id)
        attempts = await storage.attempts_of([1])
    finally:
        await storage.close()

    assert [r.outcome for r in records] == [expected for _, _, expected in OLD_DETAILS]
    assert [(a.reason, a.error) for a in attempts] == [
        (Reason.RETRYING, None),
        (Reason.DELIVERED, None),
    ]


async def test_a_version_2_redis_key_space_reads_its_old_details_into_typed_outcomes() -> None:
    with redis_prefix() as prefix:
        url = f"{REDIS_URL}?prefix={prefix}"
        storage = RedisStorage(url)
        await storage.open()
        try:
            ids = await _write_items(storage)
        finally:
            await storage.close()
        client = redis.Redis.from_url(REDIS_URL)
        for item_id, (_, detail, _) in zip(ids, OLD_DETAILS, strict=True):
            client.hdel(f"{prefix}:it:{item_id}", "out")
            if detail is not None:
                client.hset(f"{prefix}:it:{item_id}", "det", detail)
        client.set(f"{prefix}:schema", 2)
        client.close()

        reopened = RedisStorage(url)
        await reopened.open()
        try:
            found = await _outcomes(reopened)
        finally:
            await reopened.close()

    assert found == [expected for _, _, expected in OLD_DETAILS]


async def test_the_0_1_0_sqlite_fixture_has_typed_outcomes_after_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "forwarder.db"
    shutil.copyfile(FIXTURES / "forwarder.db", db)
    storage = SqliteStorage(db)
    await storage.open()
    try:
        held = await storage.items_in_state("held")
        pending = await storage.items_in_state("pending")
    finally:
        await storage.close()

    assert {r.outcome for r in held} == {Outcome(Reason.AWAITING_IDENTITY, notes=(NO_ONE,))}
    assert {r.outcome for r in pending} == {Outcome(Reason.RETRYING, "connection error")}
    assert (len(held), len(pending)) == (5, 40)


async def test_the_0_1_0_redis_fixture_has_typed_outcomes_after_upgrade(
    old_redis: str,  # noqa: F811 (the fixture imported above)
) -> None:
    storage = RedisStorage(old_redis)
    await storage.open()
    try:
        held = await storage.items_in_state("held")
        pending = await storage.items_in_state("pending")
    finally:
        await storage.close()

    assert {r.outcome for r in held} == {Outcome(Reason.AWAITING_IDENTITY, notes=(NO_ONE,))}
    assert {r.outcome for r in pending} == {Outcome(Reason.RETRYING, "connection error")}
    assert (len(held), len(pending)) == (5, 40)
