"""Embedded storage: one SQLite file in WAL mode, written by one thread with group commit.

Every operation is a *job* run on the writer thread. The thread takes every job that is waiting,
runs them in one transaction and commits once, so concurrent requests share one fsync
(``synchronous=FULL``: a committed event survives a crash or power loss). Callers await a future
that is resolved only after the commit. A job that fails makes the group roll back and each job
is retried alone, so one bad job cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from forwarder.errors import StorageUnavailableError, StoreVersionError
from forwarder.storage.base import (
    FINAL_STATES,
    OPEN_STATES,
    AppendResult,
    Attempt,
    Erasure,
    FinalState,
    Item,
    ItemRecord,
    ItemState,
    Key,
    NewEvent,
    QualityCount,
    RateCount,
    Storage,
    StoredEvent,
    Touch,
    TouchMemory,
)
from forwarder.storage.outcomes import Outcome
from forwarder.storage.sqlite import identity, migrations, quality, quotas, rates, sql
from forwarder.storage.sqlite import touch as touch_memory
from forwarder.storage.sqlite.background import BackgroundReader, connect_read_only, in_snapshot
from forwarder.storage.sqlite.checkpoint import Checkpointer, tune_writer
from forwarder.storage.sqlite.dedup import SeenKeys
from forwarder.storage.sqlite.kinds import KnownKinds
from forwarder.storage.sqlite.people import KnownPeople
from forwarder.storage.sqlite.settled import SettledLinks
from forwarder.telemetry import get_logger

T = TypeVar("T")

Job = Callable[[sqlite3.Connection], Any]
_STOP = object()
_MAX_GROUP = 1024
_FORGET_PARTS = 64
_LOCK_WAIT_S = 2.0
"""How long the writer waits for another process's write transaction before giving up."""
_UNSYNCED = {"FULL": "NORMAL", "EXTRA": "NORMAL", "2": "1", "3": "1"}
"""``synchronous`` for a commit that need not survive a power loss (``_sync``); OFF stays."""
_LOCK_POLL_S = 0.0005
"""How often it looks: SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms, so a lock freed
just after a sleep began is taken up to 100 ms late; the ingest writer's whole group waits that
long behind a delivery process's commit of a few ms."""


class _Pending:
    __slots__ = ("durable", "future", "work")

    def __init__(
        self, work: Job | sql.AppendJob, future: asyncio.Future[Any], durable: bool = True
    ) -> None:
        self.work = work
        """A function of the connection, or an append: the writer runs every append of a group
        as one set-wise job."""
        self.future = future
        self.durable = durable
        """Its commit must survive a power loss (``synchronous``); False only for a lease."""


def _translate(exc: sqlite3.Error) -> StorageUnavailableError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StorageUnavailableError(f"storage is locked: {text}", retry_after_s=1.0)
    if "full" in text:
        return StorageUnavailableError(f"storage is full: {text}", retry_after_s=30.0)
    return StorageUnavailableError(f"storage failed: {text}", retry_after_s=5.0)


def _begin(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's write lock in short steps."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        time.sleep(_LOCK_POLL_S)
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise


def _deliver(jobs: list[tuple[_Pending, bool, Any]]) -> None:
    for job, ok, value in jobs:
        if job.future.done():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


def _run_jobs(
    conn: sqlite3.Connection,
    group: list[_Pending],
    appended: sql.Appended | None,
    settled: SettledLinks | None = None,
    answers: KnownPeople | None = None,
) -> list[tuple[bool, Any]]:
    """Every job's result, in order; the appends (``appended``) are done already, and a run
    of ``learn`` jobs of one portal (other appends between them aside) runs as one: a
    request teaching links costs the writer a few rows, not four statements."""
    per_job = iter(appended.per_job if appended is not None else ())
    outcomes: list[tuple[bool, Any]] = [(True, None)] * len(group)
    run: list[tuple[int, identity.LearnJob]] = []

    def learn_run() -> None:
        if run:
            jobs = [(job.groups, job.now) for _, job in run]
            learned = identity.learn_many(conn, run[0][1].portal, jobs, settled, answers)
            for (i, _), released in zip(run, learned, strict=True):
                outcomes[i] = (True, released)
            run.clear()

    for i, job in enumerate(group):
        work = job.work
        if isinstance(work, sql.AppendJob):
            outcomes[i] = (True, next(per_job))
            continue
        if isinstance(work, identity.LearnJob):
            if run and run[0][1].portal != work.portal:
                learn_run()
            run.append((i, work))
            continue
        learn_run()
        outcomes[i] = (True, work(conn))
    learn_run()
    return outcomes


class SqliteStorage(Storage):
    """The default backend: ``sqlite:///path/to/forwarder.db``."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "full",
        commit_interval_ms: float = 0.0,
        dedup_window_s: float = 86400.0,
        shared: bool = False,
        release_leases: bool = True,
        read_apart: bool = False,
    ) -> None:
        """Args:
        shared: another process writes the file too (``server.delivery_processes``): the
            open-item count is re-read from the file at most once a second.
        release_leases: at open, void the leases of a crashed run. Off in a delivery process:
            the serving process did it at its start, and a restarted child must not void a
            live sibling's leases (they expire by themselves).
        read_apart: reads go to the read-only connection, so that the write lock (which
            another process's ingest waits for) is taken only to write. On in a delivery
            process; off in the serving process, whose reads share ingest's group commit.
        """
        self.path = Path(path)
        self._seen = SeenKeys()
        """The dedup index (in memory, over the events table); writer thread only."""
        self._settled = SettledLinks()
        """Links learning again would not change (``settled.py``); writer thread only."""
        self._answers = KnownPeople()
        """``people_of`` answers on the writer's connection (``people.py``); writer thread only."""
        self._kinds = KnownKinds()
        """Event kind numbers on the writer's connection (``kinds.py``); writer thread only."""
        self._read_answers = KnownPeople()
        """The same on the reader connection (``read_apart``); under ``_reader_lock``."""
        self._dedup_window_s = dedup_window_s
        self._synchronous = synchronous.upper()
        self._synced = self._synchronous
        """The writer connection's ``synchronous`` now (``_sync``)."""
        self._wal = False
        """The file is in WAL mode (set by the writer thread when it connects)."""
        self._commit_interval_s = commit_interval_ms / 1000.0
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._writing = False
        """The writer thread is taking jobs (from a successful ``open`` until it stops)."""
        self._pending = 0
        self._shared = shared
        self._release_leases = release_leases
        self._read_apart = read_apart
        self._pending_read_at = float("-inf")
        self._pending_refresh: asyncio.Task[None] | None = None
        self._reader: sqlite3.Connection | None = None
        """A connection of its own for delivery's reads in a delivery process (``read_apart``)
        and its polls: in WAL mode it neither waits for the writer thread nor makes ingest's
        commits wait for it."""
        self._reader_lock = threading.Lock()
        self._background = BackgroundReader(self.path)
        """Scans for monitoring (gauges, conservation, alerts, the debugger): on a thread and a
        connection of their own (``background.py``)."""
        self._checkpointer: Checkpointer | None = None
        self._attempts: asyncio.Future[None] | None = None
        """The last ``record_attempts`` job (not awaited by its caller: ``attempts_of`` waits)."""
        self._log = get_logger("storage")

    # -- the writer thread ----------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        wal = self._wal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=2000")
        try:
            applied = migrations.migrate(conn, str(self.path))
        except BaseException:
            conn.close()
            raise
        tune_writer(conn)
        for migration in applied:
            self._log.info(
                "schema_migrated",
                store=str(self.path),
                version=migration.version,
                summary=migration.summary,
            )
        if wal:
            # From here on ``_begin`` waits for other writers (the busy handler would wait in
            # coarse steps); in WAL mode a transaction that has begun never waits for a lock.
            conn.execute("PRAGMA busy_timeout=0")
        return conn

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            failure.append(_translate(exc))
            ready.set()
            return
        except StoreVersionError as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            while True:
                first = self._jobs.get()
                if first is _STOP:
                    return
                if self._commit_interval_s:
                    time.sleep(self._commit_interval_s)
                group = [first]
                stop = False
                while len(group) < _MAX_GROUP:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        stop = True
                        break
                    group.append(job)
                self._run_group(conn, group)
                if stop:
                    return
        finally:
            self._writing = False
            conn.close()

    def _sync(self, conn: sqlite3.Connection, durable: bool) -> None:
        """``synchronous`` as configured for a durable commit, else NORMAL (no fsync).

        A lease needs no fsync: after a power loss every lease is void anyway (the serving
        process releases them at start), and the next durable commit syncs the WAL with the
        lease's frames in it. One fsync per delivered batch fewer (its kernel time is the
        writer's CPU). A group with anything else in it is synced as configured. Only in WAL
        mode, where NORMAL never corrupts the file (a lost commit is only lost)."""
        mode = self._synchronous
        if not durable and self._wal:
            mode = _UNSYNCED.get(mode, mode)
        if mode != self._synced:
            conn.execute(f"PRAGMA synchronous={mode}")
            self._synced = mode

    def _run_group(self, conn: sqlite3.Connection, group: list[_Pending]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            self._sync(conn, any(job.durable for job in group))
            _begin(conn)
            appends = [job.work for job in group if isinstance(job.work, sql.AppendJob)]
            appended = sql.append_many(conn, appends, self._seen, self._kinds) if appends else None
            outcomes = _run_jobs(conn, group, appended, self._settled, self._answers)
            conn.execute("COMMIT")
            if appended is not None:
                self._seen.remember(appended.entries())
        except Exception:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._settled.reset()  # it may hold what the rolled-back group settled
            self._answers.reset()  # and answers it read from what it undid
            self._kinds.reset()  # and kind numbers it gave out
            outcomes = [self._run_alone(conn, job) for job in group]
        self._resolve(group, outcomes)
        if self._checkpointer is not None:
            self._checkpointer.committed()
            self._checkpointer.writer_done(conn, idle=self._jobs.empty())

    def _run_alone(self, conn: sqlite3.Connection, job: _Pending) -> tuple[bool, Any]:
        try:
            self._sync(conn, job.durable)
            _begin(conn)
            if not isinstance(job.work, sql.AppendJob):
                result = job.work(conn)
                conn.execute("COMMIT")
                return True, result
            appended = sql.append_many(conn, [job.work], self._seen, self._kinds)
            conn.execute("COMMIT")
            self._seen.remember(appended.entries())
            return True, appended.per_job[0]
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._settled.reset()
            self._answers.reset()
            self._kinds.reset()
            return False, _translate(exc)
        except Exception as exc:  # a bug in one job must not kill the writer thread
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._settled.reset()
            self._answers.reset()
            self._kinds.reset()
            return False, exc

    @staticmethod
    def _resolve(group: list[_Pending], outcomes: list[tuple[bool, Any]]) -> None:
        # Callers may live on different event loops (tests, embedded use): one callback each.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, bool, Any]]] = {}
        for job, (ok, value) in zip(group, outcomes, strict=True):
            by_loop.setdefault(job.future.get_loop(), []).append((job, ok, value))
        for loop, jobs in by_loop.items():
            loop.call_soon_threadsafe(_deliver, jobs)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the reader connection, in one read transaction (one snapshot)."""
        with self._reader_lock:
            if self._reader is None:
                self._reader = connect_read_only(self.path)
            try:
                return in_snapshot(self._reader, work)
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

    def _queue(
        self, work: Callable[[sqlite3.Connection], T] | sql.AppendJob, *, durable: bool = True
    ) -> asyncio.Future[T]:
        """Queue ``work`` for the writer now; the future resolves after its commit."""
        if not self._writing:  # ``Thread.is_alive`` costs a lock: twice a request adds up
            raise StorageUnavailableError("storage is not open", retry_after_s=1.0)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put(_Pending(work, future, durable))
        return future

    async def _submit(self, work: Callable[[sqlite3.Connection], T] | sql.AppendJob) -> T:
        return await self._queue(work)

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="sqlite-writer", daemon=True
        )
        self._thread.start()
        await asyncio.to_thread(ready.wait)
        if failure:
            raise failure[0]
        self._writing = True
        self._checkpointer = Checkpointer(self.path, self._synchronous)
        self._checkpointer.start()
        if self._release_leases:
            await self._submit(sql.release_leases)
        await self._submit(lambda c: self._seen.load(c, self._dedup_window_s))
        self._pending = await self._submit(sql.count_open)
        self._pending_read_at = time.monotonic()

    async def close(self) -> None:
        if self._pending_refresh is not None:
            self._pending_refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, StorageUnavailableError):
                await self._pending_refresh
            self._pending_refresh = None
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(_STOP)
            await asyncio.to_thread(self._thread.join)
        self._thread = None
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        await self._background.close()

    async def check_writable(self) -> None:
        await self._submit(sql.touch)

    # -- ingest ---------------------------------------------------------------------------
    async def append(
        self, events: Sequence[NewEvent], *, now: float, dedup_window_s: float
    ) -> list[AppendResult]:
        job = sql.AppendJob(events, now, dedup_window_s)
        appended: tuple[list[AppendResult], int] = await self._submit(job)
        results, opened = appended
        self._pending += opened
        return results

    @staticmethod
    def _purge_chunk(before: float, after: int, conn: sqlite3.Connection) -> tuple[int, int]:
        return sql.purge_chunk(conn, before, after)

    def _forget(self, before: float, part: int, conn: sqlite3.Connection) -> int:
        return self._seen.forget_before(before, part, _FORGET_PARTS)

    async def pending_count(self) -> int:
        # Another process finishes items: re-read the count at most once a second, in the
        # background on the reader connection (a request never waits for it, the writer never
        # holds a commit for it). Until it lands, our own writes move it by their deltas.
        # One refresh at a time: behind a long paced scan on the monitoring thread, a new one
        # each second would pile up.
        refreshing = self._pending_refresh is not None and not self._pending_refresh.done()
        if self._shared and not refreshing and time.monotonic() - self._pending_read_at > 1.0:
            self._pending_read_at = time.monotonic()
            self._pending_refresh = asyncio.create_task(self._refresh_pending())
        return self._pending

    async def _refresh_pending(self) -> None:
        try:
            self._pending = await self._scan(sql.count_open)
        except StorageUnavailableError:
            self._log.warning("pending_count_refresh_failed", exc_info=True)

    async def purge(self, *, dedup_before: float, events_before: float) -> int:
        # Expired dedup keys go in parts, so commits of new events are not held up behind them.
        forgotten = 0
        for part in range(_FORGET_PARTS):
            forget = functools.partial(self._forget, dedup_before, part)
            forgotten += await self._submit(forget)
        # The events are the durable record of the dedup keys: keep them as long as their keys.
        events_before = min(events_before, dedup_before)
        deleted, after = 0, 0
        while after >= 0:
            gone, after = await self._submit(
                functools.partial(self._purge_chunk, events_before, after)
            )
            deleted += gone
        return forgotten + deleted

    # -- delivery -------------------------------------------------------------------------
    async def lease(
        self, portal: str, destination: str, *, limit: int, now: float, lease_s: float
    ) -> list[Item]:
        return await self._queue(
            lambda c: sql.lease(
                c, portal, destination, limit=limit, now=now, lease_s=lease_s, kinds=self._kinds
            ),
            durable=False,  # see ``_sync``
        )

    async def finish(
        self, ids: Sequence[int], state: FinalState, *, now: float, outcome: Outcome | None = None
    ) -> None:
        closed = await self._submit(lambda c: sql.finish(c, ids, state, now, outcome))
        self._pending -= closed

    async def retry(
        self,
        ids: Sequence[int],
        *,
        available_at: float,
        now: float,
        outcome: Outcome | None = None,
        count_attempt: bool = True,
    ) -> None:
        await self._submit(lambda c: sql.retry(c, ids, available_at, now, outcome, count_attempt))

    async def expedite(self, portal: str, destination: str, *, now: float) -> int:
        return await self._submit(lambda c: sql.expedite(c, portal, destination, now))

    async def requeue(self, ids: Sequence[int], *, state: FinalState, now: float) -> int:
        moved = await self._submit(lambda c: sql.requeue(c, ids, state, now))
        self._pending += moved
        return moved

    async def hold(
        self,
        ids: Sequence[int],
        *,
        until: float,
        now: float,
        outcome: Outcome | None = None,
        keys: Sequence[Key] = (),
    ) -> None:
        def job(conn: sqlite3.Connection) -> None:
            sql.move(conn, ids, "held", until, now, outcome, "leased")
            if keys:
                portal = conn.execute("SELECT portal FROM items WHERE id = ?", (ids[0],)).fetchone()
                if portal is not None:
                    identity.index_held(conn, portal[0], ids, keys)
                    # Learning a link of these keys again now releases the item: not settled.
                    self._settled.forget(portal[0], keys)
                    self._answers.changed(self._settled.changed(conn))  # graph unchanged

        await self._submit(job)

    async def ready_at(self, portal: str, destination: str) -> float | None:
        if self._shared:  # polled by delivery processes: off the write lock ingest commits take
            return await self._read_off_thread(lambda c: sql.ready_at(c, portal, destination))
        return await self._submit(lambda c: sql.ready_at(c, portal, destination))

    async def _read_off_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._thread is None or not self._thread.is_alive():
            raise StorageUnavailableError("storage is not open", retry_after_s=1.0)
        return await asyncio.to_thread(self._read, work)

    async def _scan(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """A monitoring read (a scan, never on ingest's or delivery's path): on the background
        reader, apart from delivery's reads."""
        if self._thread is None or not self._thread.is_alive():
            raise StorageUnavailableError("storage is not open", retry_after_s=1.0)
        try:
            return await self._background.run(work)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def _query(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """A read: on the reader connection in a delivery process (the write lock, which
        ingest's commits wait for, is taken only to write), else on the writer thread (where it
        shares the group's transaction). Delivery's small per-batch reads use this; scans and
        the periodic reads of housekeeping, alerts and the debugger always go to the background
        reader (``_scan``), since every commit queued behind a job waits for all of it."""
        if self._read_apart:
            return await self._read_off_thread(work)
        return await self._submit(work)

    async def queue_depth(self, portal: str, destination: str, *, now: float) -> tuple[int, float]:
        return await self._scan(lambda c: sql.queue_depth(c, portal, destination, now))

    async def counts(self) -> dict[tuple[str, str, str], int]:
        # A scan of every open item (held ones pile up for days): on the background reader,
        # so no commit of ingest waits behind it (it held the writer 100+ ms at 100k items),
        # paced there, in one snapshot: at 850k open items it takes 0.6 s of CPU, and in one
        # go the event loop sharing the core stalled 10-20 ms a turn all along.
        return await self._scan(sql.counts)

    async def record_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Queued, not awaited: the attempt rides the transaction of what the worker writes
        next for its batch (the finish or retry it queues straight after), one commit per batch
        fewer. Order holds: a job queued behind it commits in the same group or a later one,
        so an item never ends delivered without its attempt. A crash before that commit loses
        both (the items are leased again and sent again, and that send is recorded)."""
        future = self._queue(lambda c: sql.record_attempts(c, attempts))
        future.add_done_callback(self._attempts_recorded)
        self._attempts = future

    def _attempts_recorded(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and (exc := future.exception()) is not None:
            # The debugger's history only: the batch's outcome is written all the same.
            self._log.warning("attempts_not_recorded", error=str(exc))

    # -- identity -------------------------------------------------------------------------
    def _unsettling(
        self, work: Callable[[sqlite3.Connection], T]
    ) -> Callable[[sqlite3.Connection], T]:
        """``work`` changes the graph outside ``learn``: the settled links are forgotten."""

        def job(conn: sqlite3.Connection) -> T:
            result = work(conn)
            self._settled.clear()
            self._answers.clear()
            self._answers.changed(self._settled.changed(conn))
            return result

        return job

    async def link(self, portal: str, keys: Sequence[Key], *, now: float) -> None:
        if keys:
            await self._submit(self._unsettling(lambda c: identity.link(c, portal, keys, now)))

    async def people_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, list[Key]]:
        if not keys:
            return {}
        # Answers by heart where the graph has not changed since they were read (``people.py``).
        if self._read_apart:
            read = self._read_answers
            return await self._read_off_thread(lambda c: read.people_of(c, portal, keys))
        return await self._submit(lambda c: self._answers.people_of(c, portal, keys))

    async def release_for(self, portal: str, keys: Sequence[Key], *, now: float) -> list[Item]:
        if not keys:
            return []
        return await self._submit(lambda c: identity.release_for(c, portal, keys, now))

    async def learn(
        self, portal: str, groups: Sequence[Sequence[Key]], *, now: float
    ) -> list[Item]:
        if not any(groups):
            return []
        return await self.learn_soon(portal, groups, now=now)

    def learn_soon(
        self, portal: str, groups: Sequence[Sequence[Key]], *, now: float
    ) -> asyncio.Future[list[Item]]:
        if not any(groups):
            done: asyncio.Future[list[Item]] = asyncio.get_running_loop().create_future()
            done.set_result([])
            return done
        return self._queue(identity.LearnJob(portal, groups, now, self._settled, self._answers))

    async def remap_contact(
        self, portal: str, old_ids: Sequence[str], new_id: str, *, now: float
    ) -> int:
        return await self._submit(
            self._unsettling(lambda c: identity.remap_contact(c, portal, old_ids, new_id, now))
        )

    async def erase(self, portal: str, keys: Sequence[Key], *, now: float) -> Erasure:
        record, closed = await self._submit(
            self._unsettling(lambda c: identity.erase(c, portal, keys, now))
        )
        self._pending -= closed
        return record

    # -- touch memory ---------------------------------------------------------------------
    async def remember_touches(self, portal: str, seen: Sequence[tuple[Key, Touch]]) -> None:
        if seen:
            await self._submit(lambda c: touch_memory.remember(c, portal, seen))

    async def touches_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, TouchMemory]:
        if not keys:
            return {}
        return await self._query(lambda c: touch_memory.touches_of(c, portal, keys))

    # -- reading back ---------------------------------------------------------------------
    async def get_event(self, seq: int) -> StoredEvent | None:
        return await self._query(lambda c: sql.get_event(c, seq))

    async def items_of(self, seq: int) -> list[ItemRecord]:
        return await self._query(lambda c: sql.items_where(c, "event_seq = ?", (seq,), 100))

    async def items_in_state(
        self, state: ItemState, *, portal: str | None = None, limit: int = 100
    ) -> list[ItemRecord]:
        if state not in (*FINAL_STATES, *OPEN_STATES):
            raise ValueError(f"unknown state {state!r}")
        # A literal state lets SQLite use the partial indexes (held/dead/expired, open).
        where = sql.state_where(state)
        args: tuple[str, ...] = ()
        if portal is not None:
            where, args = f"{where} AND portal = ?", (portal,)
        # Housekeeping and the debugger list up to thousands of rows: off the writer.
        return await self._scan(lambda c: sql.items_where(c, where, args, limit))

    async def attempts_of(self, item_ids: Sequence[int]) -> list[Attempt]:
        written = self._attempts
        if written is not None and written.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([written])  # our own attempts, on the reader connection too
        return await self._query(lambda c: sql.attempts_of(c, item_ids))

    async def recent_events(self, *, after_seq: int = 0, limit: int = 100) -> list[StoredEvent]:
        return await self._scan(lambda c: sql.recent_events(c, after_seq, limit))

    # -- attribution quality --------------------------------------------------------------
    async def add_quality(self, counts: Sequence[QualityCount]) -> None:
        if counts:
            await self._submit(lambda c: quality.add(c, counts))

    async def quality_hours(self, first: int, last: int) -> list[QualityCount]:
        return await self._scan(lambda c: quality.between(c, first, last))

    async def ingest_totals(self) -> dict[tuple[str, str], int]:
        return await self._scan(quality.totals)

    # -- rate history -------------------------------------------------------------------
    async def add_rates(self, counts: Sequence[RateCount]) -> None:
        if counts:
            await self._submit(lambda c: rates.add(c, counts))

    async def rate_minutes(self, first: int, last: int) -> list[RateCount]:
        return await self._scan(lambda c: rates.between(c, first, last))

    # -- quotas ---------------------------------------------------------------------------
    async def spend_quota(
        self, portal: str, name: str, period: str, n: int, cap: int
    ) -> tuple[bool, int]:
        return await self._submit(lambda c: quotas.spend(c, portal, name, period, n, cap))

    async def raise_quota(self, portal: str, name: str, period: str, used: int) -> int:
        return await self._submit(lambda c: quotas.raise_to(c, portal, name, period, used))

    # -- metadata -------------------------------------------------------------------------
    async def get_meta(self, key: str) -> bytes | None:
        return await self._query(lambda c: sql.get_meta(c, key))

    async def set_meta(self, key: str, value: bytes) -> None:
        await self._submit(lambda c: sql.set_meta(c, key, value))
