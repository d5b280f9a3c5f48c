"""A store written by release 0.1.0, with a backlog in it, opens under this release, is migrated
forward and delivers its backlog exactly once; a store from a newer release is refused.

The fixtures were written by 0.1.0's own ``forwarder serve`` (``make_fixtures.py`` beside this
file says how): 40 conversions pending after failed attempts against a HubSpot that was down,
and 5 held until an identify links their user.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from forwarder.storage.redis import RedisStorage
from forwarder.storage.redis import migrations as redis_migrations
from forwarder.storage.sqlite import migrations as sqlite_migrations
from tests.reliability.processes import uuid_of, wait_until
from tests.support import SERVER_KEY, ServerProcess, free_port, sandbox_process, serve_config

FIXTURES = Path(__file__).parent / "release-0.1.0"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_DUMP = json.loads((FIXTURES / "redis.json").read_text())
# The backlog is older than the default max_event_age_s by the time this runs; it must be
# delivered, not expired, to show that it survived the upgrade.
KEEP_OLD = "max_event_age_s = 315360000.0"


def forwarder_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    db = tmp_path / "forwarder.db"
    shutil.copyfile(FIXTURES / "forwarder.db", db)
    return db


@pytest.fixture
def old_redis() -> Iterator[str]:
    """0.1.0's key space restored (``restored``)."""
    with restored(REDIS_DUMP) as url:
        yield url


@contextmanager
def restored(dump: dict[str, Any]) -> Iterator[str]:
    """A dumped key space restored under its own prefix (values name their keys, so the prefix
    cannot change); removed afterwards. The fixed prefix is held under a lock outside it, so two
    test runs on one redis-server (a CI run beside a developer's) take turns."""
    client = redis.Redis.from_url(REDIS_URL)
    prefix = dump["prefix"]
    turn = client.lock(f"{prefix}-lock", timeout=300, blocking_timeout=300)
    assert turn.acquire(), "another test run held the 0.1.0 fixture for 5 minutes"

    def clear() -> None:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)

    clear()
    for key, payload in dump["keys"].items():
        client.restore(key, 0, bytes.fromhex(payload), replace=True)
    try:
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        clear()
        turn.release()
        client.close()


@asynccontextmanager
async def upgraded(dump: dict[str, Any]) -> AsyncIterator[tuple[RedisStorage, redis.Redis, str]]:
    """A dumped key space restored and opened (its migrations run): the store, a plain client
    on the same Redis to look at the keys the migrations left, and the dump's key prefix."""
    with restored(dump) as url:
        storage = RedisStorage(url)
        await storage.open()
        client = redis.Redis.from_url(REDIS_URL)
        try:
            yield storage, client, dump["prefix"]
        finally:
            client.close()
            await storage.close()


def deliver_backlog_after_upgrade(tmp_path: Path, storage: Path | str) -> None:
    expected = {uuid_of(m) for m in MANIFEST["deliverable"]}
    held = {uuid_of(m) for m in MANIFEST["held"]}
    port = free_port()
    with sandbox_process() as sandbox:
        config = serve_config(storage, port, sandbox.url, extra=KEEP_OLD)
        server = ServerProcess(tmp_path, config).start(port)
        try:
            wait_until(lambda: set(sandbox.received_uuids()) >= expected, timeout_s=30)
            # The held conversions are still held: an identify now links their user.
            identify = {
                "type": "identify",
                "userId": MANIFEST["held_user"][0],
                "traits": {"email": "later-1@example.com"},
            }
            httpx.post(
                f"{server.url}/v1/identify", json=identify, auth=(SERVER_KEY, ""), timeout=5
            ).raise_for_status()
            wait_until(lambda: set(sandbox.received_uuids()) >= expected | held, timeout_s=30)
        finally:
            server.stop()
        received = sandbox.received_uuids()
    assert set(received) == expected | held
    assert [u for u, n in received.items() if n != 1] == []
    assert "Traceback" not in server.log()
    assert "schema_migrated" in server.log()


def test_a_0_1_0_sqlite_store_is_migrated_and_delivers_its_backlog_once(
    tmp_path: Path, old_db: Path
) -> None:
    check = forwarder_cli("migrate", "--check", cwd=tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "schema version: 0 (written by 0.1.0, before schema versions)" in check.stdout
    assert f"this release: {sqlite_migrations.LATEST}" in check.stdout
    assert sqlite3.connect(old_db).execute("PRAGMA user_version").fetchone() == (0,)  # read-only

    deliver_backlog_after_upgrade(tmp_path, old_db)

    assert sqlite3.connect(old_db).execute("PRAGMA user_version").fetchone() == (
        sqlite_migrations.LATEST,
    )
    again = forwarder_cli("migrate", "--check", cwd=tmp_path)
    assert again.returncode == 0
    assert "up to date" in again.stdout


def test_a_0_1_0_redis_store_is_migrated_and_delivers_its_backlog_once(
    tmp_path: Path, old_redis: str
) -> None:
    (tmp_path / "forwarder.toml").write_text(f'[storage]\nurl = "{old_redis}"\n')
    check = forwarder_cli("migrate", "--check", "--config", "forwarder.toml", cwd=tmp_path)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "schema version: 0 (written by 0.1.0" in check.stdout

    deliver_backlog_after_upgrade(tmp_path, old_redis)

    client = redis.Redis.from_url(REDIS_URL)
    assert int(client.get(f"{REDIS_DUMP['prefix']}:schema") or 0) == redis_migrations.LATEST


def test_an_upgraded_database_has_the_same_schema_as_a_new_one(
    tmp_path: Path, old_db: Path
) -> None:
    new = tmp_path / "new.db"

    def schema(db: Path) -> list[tuple[str, str]]:
        conn = sqlite3.connect(db, isolation_level=None)
        sqlite_migrations.migrate(conn, str(db))
        rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        conn.close()
        return rows

    assert schema(old_db) == schema(new)


def test_a_database_from_a_newer_release_is_refused_in_one_line(
    tmp_path: Path, old_db: Path
) -> None:
    conn = sqlite3.connect(old_db)
    conn.execute(f"PRAGMA user_version = {sqlite_migrations.LATEST + 1}")
    conn.commit()
    conn.close()
    before = old_db.read_bytes()
    for command in (("migrate", "--check"), ("migrate",), ("serve",)):
        done = forwarder_cli(*command, cwd=tmp_path)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert [line for line in done.stderr.splitlines() if line.strip()] == [
            f"forwarder: store forwarder.db has schema version {sqlite_migrations.LATEST + 1}, "
            f"newer than this release knows ({sqlite_migrations.LATEST}): run the release that "
            "wrote it, or restore the backup taken before upgrading"
        ]
    assert old_db.read_bytes() == before


def test_a_redis_key_space_from_a_newer_release_is_refused(tmp_path: Path, old_redis: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    client.set(f"{REDIS_DUMP['prefix']}:schema", redis_migrations.LATEST + 1)
    (tmp_path / "forwarder.toml").write_text(f'[storage]\nurl = "{old_redis}"\n')
    done = forwarder_cli("serve", "--config", "forwarder.toml", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"has schema version {redis_migrations.LATEST + 1}, newer than" in done.stderr
