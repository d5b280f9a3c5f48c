"""Storage for several replicas: one Redis (or Valkey), shared by every forwarder process.

``redis://[:password@]host:port/db`` (or ``rediss://``); query options ``prefix`` (key prefix,
default ``fwd``) and ``lease_s`` (longest lease handed out, default 30). Items wait in one
Redis Stream per ``(portal, destination)`` read through one consumer group (``NOACK``: no
pending entries list); a lease is the item's deadline in the queue's lease index (a sorted set):
a replica that dies leaves its leases there and others take them over once the deadline passes,
while a live replica renews its leases in the background. An item's stream entry is deleted
when the item reaches a final state (and acknowledged, for entries a release before NOACK read
into the pending list). Every change is one Lua script (``redis.scripts``), so a dedup check and
its append, or a state change and its tallies, are atomic across replicas; appends that come
while one is on its way share the next script (``append``). Redis errors become
``StorageUnavailableError`` here, where they enter.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, ConnectionPoolInterface
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from forwarder.errors import ConfigError, StorageUnavailableError, StoreVersionError
from forwarder.storage import SchemaPlan
from forwarder.storage.base import (
    Accepted,
    AppendResult,
    Attempt,
    Coordination,
    Duplicate,
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
from forwarder.storage.outcomes import Outcome, Reason, encode
from forwarder.storage.redis import migrations, quality, rates
from forwarder.storage.redis import scripts as lua
from forwarder.storage.redis.keys import SEP, Keys
from forwarder.storage.redis.read import RedisReader, item_from_packed, item_from_reply
from forwarder.storage.redis.settled import SettledLinks
from forwarder.storage.redis.shared import (
    RedisCoordination,
    check_encoding,
    check_persistence,
    check_version,
)
from forwarder.telemetry import get_logger

T = TypeVar("T")


def _hiredis_pack() -> Callable[[tuple[Any, ...]], bytes] | None:
    """hiredis's command packing (the redis extra brings it), or None: redis-py packs alone."""
    try:
        from hiredis import pack_command
    except ImportError:
        return None
    return pack_command


_pack_command = _hiredis_pack()
_PURGE_BATCH = 500
_MAX_CONNECTIONS = 64
_POOL_WAIT_S = 5.0
_CLOSE_WAIT_S = 5.0
_READ_SIZE = 1 << 20
"""The most one socket read hands redis-py's parser (asyncio buffers ~0.4 MB at most)."""
_ERASE_SCAN = 1000
_APPENDS_IN_FLIGHT = 2
"""Append scripts one replica has on their way at once; the second only for a whole group."""
_GROUP_EVENTS = 100
"""The most events of a group's script, as of a batch request (one request may bring more):
Redis runs nothing else meanwhile, ~50 us an event."""
_SCRIPT_ITEMS = 100
"""The most items one lease, finish or retry script handles. Redis runs one command at a time,
and delivery's scripts cost it 30-40 us an item: a whole batch of 500 in one script kept every
ingest's append waiting up to 20 ms (ingest p99 ~50 ms at half the peak). A batch now takes a
few round trips (500 / 100), still a constant per batch."""
_SCRIPT_KEYS = 1000
"""The most identifiers one identity or touch read (``PEOPLE_OF``, ``TOUCHES_OF``) looks up:
a batch of 500 events with an anonymousId and a userId each, so that delivery reads a batch's
graph and touches with one script each (``mapped.read_batch``): each call costs the client
~0.3 M instructions however few keys it asks. Redis runs nothing else meanwhile: ~36k of its
instructions per person read (a ZRANGE each), so 500 people take ~18 M, about 1.3 times a
100-item lease script (``redis_store_instructions.py --steps``)."""
_RENEW_ITEMS = 1000
"""The most leases one renewal script extends (a ZADD each: ~2 us an item)."""
_encode = msgspec.json.Encoder().encode
_pack_msgpack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(list[Any]).decode
_decode_touch = msgspec.json.Decoder(Touch).decode
_decode_items = msgspec.msgpack.Decoder(list[Item]).decode
"""A lease's reply: the script writes the items as msgpack maps (``item_packed``)."""
_decode_people = msgspec.msgpack.Decoder(tuple[list[list[Key]], list[int]]).decode
"""``people_of``'s reply: each person once, then per key asked the index of its person (0:
none)."""
_SCRIPTS = {
    name: lua.source(name)
    for name in (
        "APPEND",
        "LEASE",
        "RENEW",
        "FINISH",
        "RETRY",
        "EXPEDITE",
        "REQUEUE",
        "HOLD",
        "RELEASE_FOR",
        "READY_AT",
        "PURGE",
        "LINK",
        "LEARN",
        "PEOPLE_OF",
        "REMAP_CONTACT",
        "FORGET_PEOPLE",
        "ERASE_EVENTS",
        "REMEMBER_TOUCHES",
        "SPEND_QUOTA",
        "RAISE_QUOTA",
        "RECORD_ATTEMPTS",
        "TOUCHES_OF",
    )
}
_QUOTA_TTL_S = 40 * 86400
"""A period's count outlives the longest period (a month), then goes on its own."""


class _Waiting(NamedTuple):
    """An ``append`` waiting for a script of its own group: its arguments, the learning
    queued beside it, and the future its caller awaits."""

    events: Sequence[NewEvent]
    now: float
    window: float
    learning: list[_Learning]
    done: asyncio.Future[list[AppendResult]]


class _Learning(NamedTuple):
    """A ``learn_soon`` waiting for the next ``append`` to carry it: its arguments as the
    scripts take them, and the future its caller awaits."""

    portal: str
    now: str
    groups: list[list[str]]
    done: asyncio.Future[list[Item]]


def _f(x: float) -> str:
    return repr(float(x))


_WHOLE_SECOND_LEASE_S = 10.0
"""A lease at least this long ends on a whole second (``_deadline``)."""


def _deadline(at: float, lease_s: float) -> str:
    """A lease's end, rounded up to a whole second when the lease is long enough for that to
    be at most a tenth more. The lease index is a sorted set: Redis keeps a small one as a
    listpack and walks it to insert, parsing every float score it passes with ``strtod``
    (a fifth of a lease script's CPU); a whole number is stored as an integer there."""
    end = at + lease_s
    return _f(math.ceil(end)) if lease_s >= _WHOLE_SECOND_LEASE_S else _f(end)


def _kv(key: Key) -> str:
    return f"{key[0]}{SEP}{key[1]}"


def parse_url(url: str) -> tuple[str, str, float]:
    """Split our options (``prefix``, ``lease_s``) off a Redis URL: (redis url, prefix, lease)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", "fwd")
    lease_s = float(query.pop("lease_s", "30"))
    return urlunsplit(parts._replace(query=urlencode(query))), prefix, lease_s


class RedisStorage(Storage):
    """The replicated backend: ``redis://host:6379/0``."""

    def __init__(self, url: str, *, prefix: str | None = None) -> None:
        self._url, url_prefix, self._max_lease_s = parse_url(url)
        self.keys = Keys(prefix or url_prefix)
        self._consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._open_total = 0
        self._open_read_at = float("-inf")
        self._leased: dict[int, tuple[str, str, float]] = {}
        """Items this replica leased and not yet settled: id -> (portal, destination, asked
        deadline); their leases are renewed in the background."""
        self._renewer: asyncio.Task[None] | None = None
        self._learning: list[_Learning] = []
        """Learning queued this turn of the loop for the next ``append`` (``learn_soon``)."""
        self._alone: set[asyncio.Task[None]] = set()
        """Queued learning that no append took, learned by itself; appends sent as a group."""
        self._in_flight = 0
        """Append scripts on their way (``_APPENDS_IN_FLIGHT`` at most)."""
        self._waiting: collections.deque[_Waiting] = collections.deque()
        """Appends waiting for a script: sent in groups as the ones in flight come back."""
        self._waiting_events = 0
        self._append_conns: list[AbstractConnection] = []
        """Idle connections of the appends (``_run_append``), taken from the pool for good."""
        self._settled = SettledLinks()
        self._closing = False
        self._shared = RedisCoordination(lambda: self.client, self.keys)
        self._reader: RedisReader | None = None
        self._log = get_logger("storage")

    # -- plumbing -------------------------------------------------------------------------
    def describe(self) -> str:
        """The store for messages: host, database and prefix, never the password."""
        parts = urlsplit(self._url)
        where = f"{parts.hostname}:{parts.port or 6379}{parts.path}"
        return f"{parts.scheme}://{where} prefix {self.keys.prefix}"

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            raise StorageUnavailableError("storage is not open", retry_after_s=1.0)
        return self._client

    async def _run(self, name: str, *args: object) -> Any:
        script = self._scripts.get(name)
        if script is None:
            raise StorageUnavailableError("storage is not open", retry_after_s=1.0)
        try:
            return await script(args=[self.keys.prefix, *args])
        except RedisError as exc:
            raise self._failed(exc) from exc

    async def _run_append(self, *args: object) -> Any:
        """``APPEND`` on a connection kept for appends (at most ``_APPENDS_IN_FLIGHT`` are on
        their way): the pool's checkout and the script wrapper cost ~35 us of CPU a call, a
        third of it. As the pool does: one quick reconnect (a restarted Redis); a script Redis
        lost is loaded again."""
        script = self._scripts.get("APPEND")
        if script is None:
            raise StorageUnavailableError("storage is not open", retry_after_s=1.0)
        pool: ConnectionPoolInterface = self.client.connection_pool  # typed, unlike the pool
        command = ("EVALSHA", script.sha, 0, self.keys.prefix, *args)
        try:
            conn = self._append_conns.pop() if self._append_conns else await pool.get_connection()
        except RedisError as exc:
            raise self._failed(exc) from exc
        # hiredis packs the arguments in C; redis-py's own packing looks at each in Python
        # (~0.4 us an argument, and an event is a dozen: _flat).
        packed = _pack_command(command) if _pack_command else conn.pack_command(*command)
        try:
            for tries_left in (1, 0):
                try:
                    await conn.send_packed_command(packed)
                    reply = await conn.read_response()
                except NoScriptError:
                    await self.client.script_load(_SCRIPTS["APPEND"])
                except (RedisConnectionError, RedisTimeoutError):
                    await conn.disconnect()
                    if not tries_left:
                        raise
                else:
                    break
            else:  # lost twice
                raise RedisConnectionError("the append script failed twice")
        except RedisError as exc:
            await pool.release(conn)
            raise self._failed(exc) from exc
        except BaseException:  # cancelled: the reply may still come, on this socket
            await conn.disconnect(nowait=True)
            await pool.release(conn)
            raise
        self._append_conns.append(conn)
        return reply

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except RedisError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: RedisError) -> StorageUnavailableError:
        # A worker whose storage call failed may drop the batch it leased without telling us:
        # stop renewing every lease, so whatever was dropped is taken again after ``lease_s``.
        # A batch still in flight may then be sent twice, which is safe: each request carries
        # ids derived from the messageId.
        self._leased.clear()
        return _translate(exc)

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        # A bounded pool that makes a burst wait for a connection instead of failing at once;
        # one quick reconnect (a restarted Redis), then errors reach the caller as 503s.
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url,
            max_connections=_MAX_CONNECTIONS,
            timeout=_POOL_WAIT_S,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=15,
            # A lease's reply is ~0.3 MB: read in 32 KB parts (redis-py's default) each part
            # moved the rest of asyncio's buffer down, so a reply was copied ~5 times over.
            socket_read_size=_READ_SIZE,
        )
        self._client = aioredis.Redis(connection_pool=pool)
        self._scripts = {n: self._client.register_script(s) for n, s in _SCRIPTS.items()}
        self._reader = RedisReader(self._client, self.keys)
        try:
            check_version(str((await self._client.info("server")).get("redis_version", "")))
            await check_persistence(self._client, self._log)
            await check_encoding(self._client, self._log)
            applied = await migrations.migrate(self._client, self.keys, self.describe())
        except RedisError as exc:
            await self.close()
            raise _translate(exc) from exc
        except (StoreVersionError, ConfigError):
            await self.close()
            raise
        for migration in applied:
            self._log.info(
                "schema_migrated",
                store=self.describe(),
                version=migration.version,
                summary=migration.summary,
            )
        self._closing = False
        self._renewer = asyncio.create_task(self._renew_leases(), name="redis-lease-renewal")

    async def close(self) -> None:
        for task in list(self._alone):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._renewer is not None:
            # The flag too: a cancel landing inside a Redis call can come back as a Redis error,
            # which the loop logs and survives; it then ends at its next turn.
            self._closing = True
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._client is not None:
            with contextlib.suppress(RedisError, TimeoutError):
                # the pool was handed in, so the client would leave its sockets open without this
                await asyncio.wait_for(
                    self._client.aclose(close_connection_pool=True), _CLOSE_WAIT_S
                )
        self._client = None
        self._scripts = {}
        self._append_conns = []

    async def check_writable(self) -> None:
        await self._call(self.client.set(self.keys.name("probe"), b"1"))

    def coordination(self) -> Coordination | None:
        return self._shared

    async def _renew_leases(self) -> None:
        """Keep this replica's leases alive; a dead replica's expire after ``lease_s``."""
        while not self._closing:
            await asyncio.sleep(self._max_lease_s / 3)
            if not self._leased or self._closing:
                continue
            # The store is built without a Clock (create_storage); leases are wall times.
            now = time.time()
            until = _deadline(now, self._max_lease_s)
            # Renewed at most until the lease the caller asked for, as if never capped.
            for item_id in [i for i, (_, _, asked) in self._leased.items() if asked <= now]:
                del self._leased[item_id]
            leases = list(self._leased.items())
            try:
                for part in _parts(leases, _RENEW_ITEMS):
                    flat = [x for i, (p, d, _) in part for x in (i, p, d)]
                    await self._run("RENEW", until, *flat)
            except Exception:  # a long-lived loop: log and carry on (leases then expire)
                self._log.warning("lease_renewal_failed", exc_info=True)

    def _forget_leases(self, ids: Sequence[int]) -> None:
        pop = self._leased.pop
        for item_id in ids:
            pop(item_id, None)

    # -- ingest ---------------------------------------------------------------------------
    async def append(
        self, events: Sequence[NewEvent], *, now: float, dedup_window_s: float
    ) -> list[AppendResult]:
        """One script per call while none is on its way; else the events wait, with the
        learning queued beside them, and go with the requests that came meanwhile in one
        script when it comes back (``_next_group``), as SQLite's group commit does. A script
        costs the client ~70 us of CPU and Redis ~0.2 M instructions however few events it
        carries: under load most of a one-event request's Redis cost."""
        if not events:
            return []
        learning, self._learning = self._learning, []
        if not self._waiting and self._may_send(len(events)):
            self._in_flight += 1
            try:
                return await self._append(events, now, dedup_window_s, learning)
            finally:
                self._in_flight -= 1
                self._next_group()
        done: asyncio.Future[list[AppendResult]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(events, now, dedup_window_s, learning, done))
        self._waiting_events += len(events)
        return await done

    def _may_send(self, events: int) -> bool:
        """A script may go now: none is on its way, or fewer than ``_APPENDS_IN_FLIGHT`` and a
        whole group's worth of events waits (batch requests keep Redis busy; single events
        gather behind the one on its way)."""
        return self._in_flight == 0 or (
            self._in_flight < _APPENDS_IN_FLIGHT and events >= _GROUP_EVENTS
        )

    def _next_group(self) -> None:
        """Send the requests waiting longest, as many as ``_GROUP_EVENTS`` allow (at least one),
        by a task of their own: none of their callers owns the call, so a caller that goes away
        (a client hanging up) cancels nothing of the others'."""
        waiting = self._waiting
        while waiting and self._may_send(self._waiting_events):
            group: list[_Waiting] = []
            size = 0
            while waiting:
                nxt = waiting[0]
                if nxt.done.done():  # its caller went away before it was sent: as if never asked
                    waiting.popleft()
                    self._waiting_events -= len(nxt.events)
                    for ride in nxt.learning:
                        ride.done.cancel()
                    continue
                if group and (
                    nxt.window != group[0].window or size + len(nxt.events) > _GROUP_EVENTS
                ):
                    break
                size += len(nxt.events)
                group.append(waiting.popleft())
            if not group:
                return
            self._waiting_events -= size
            self._in_flight += 1
            task = asyncio.ensure_future(self._send_group(group))
            self._alone.add(task)
            task.add_done_callback(self._alone.discard)

    async def _send_group(self, group: list[_Waiting]) -> None:
        try:
            events = [e for w in group for e in w.events]
            learning = [ride for w in group for ride in w.learning]
            now = max(w.now for w in group)
            try:
                results = await self._append(events, now, group[0].window, learning)
            except BaseException as exc:
                for w in group:
                    _fail(w.done, exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            start = 0
            for w in group:
                if not w.done.done():
                    w.done.set_result(results[start : start + len(w.events)])
                start += len(w.events)
        finally:
            self._in_flight -= 1
            self._next_group()

    async def _append(
        self,
        events: Sequence[NewEvent],
        now: float,
        dedup_window_s: float,
        learning: list[_Learning],
    ) -> list[AppendResult]:
        # The events' fields go flat, each its own argument (``_flat``). The learning queued
        # beside the append (``learn_soon``) rides in the same script: one round trip a
        # request. Any failure is the append's and the learning's alike.
        flat: list[Any] = []
        for e in events:
            flat += _flat(e)
        settled = self._settled
        riders: list[Any] = [settled.epoch, len(learning)]
        for r in learning:
            riders += _flat_learning(r, settled.flags(r.portal, r.groups))
        window = _f(dedup_window_s)
        try:
            reply = await self._run_append(_f(now), window, *riders, *flat)
        except BaseException as exc:
            for ride in learning:
                _fail(ride.done, exc)
            raise
        opened, seqs, released, settled_now, epoch = _unpack(reply)
        for ride, replies, now_settled in zip(learning, released, settled_now, strict=True):
            settled.learned(epoch, ride.portal, ride.groups, now_settled)
            if not ride.done.done():
                ride.done.set_result([item_from_packed(ride.portal, r) for r in replies])
        self._open_total += opened
        return [Accepted(seq=s) if s > 0 else Duplicate(seq=-s) for s in seqs]

    async def pending_count(self) -> int:
        # Shared by every replica: read at most once a second; in between, our own writes move
        # the cached figure by their deltas (deltas commute; absolute totals could arrive out of
        # order from concurrent calls).
        if time.monotonic() - self._open_read_at > 1.0:
            value = await self._call(self.client.get(self.keys.name("open_total")))
            self._open_total = int(value or 0)
            self._open_read_at = time.monotonic()
        return self._open_total

    async def purge(self, *, dedup_before: float, events_before: float) -> int:
        gone, offset = 0, 0
        while True:
            removed, dedup_more, events_more, skipped = await self._run(
                "PURGE", _f(dedup_before), _f(events_before), offset, _PURGE_BATCH
            )
            gone += removed
            offset += skipped
            if not dedup_more and not events_more:
                return int(gone)

    # -- delivery -------------------------------------------------------------------------
    async def lease(
        self, portal: str, destination: str, *, limit: int, now: float, lease_s: float
    ) -> list[Item]:
        # In scripts of at most _SCRIPT_ITEMS items: Redis runs nothing else while a script
        # runs, and a batch of 500 in one script held every ingest's append for ~20 ms.
        at, until = _f(now), _deadline(now, min(lease_s, self._max_lease_s))
        items: list[Item] = []
        leased, lease = self._leased, (portal, destination, now + lease_s)
        while len(items) < limit:
            ask = min(limit - len(items), _SCRIPT_ITEMS)
            try:
                replies = await self._run(
                    "LEASE", at, until, ask, self._consumer, portal, destination
                )
            except StorageUnavailableError:
                if not items:
                    raise
                break  # hand over what is already leased rather than strand it
            part = _decode_items(replies) if isinstance(replies, bytes) else []
            for item in part:
                leased[item.id] = lease
            items += part
            if len(part) < ask:  # the queue has no more ready now
                break
        return items

    async def finish(
        self, ids: Sequence[int], state: FinalState, *, now: float, outcome: Outcome | None = None
    ) -> None:
        self._forget_leases(ids)
        at, stored = _f(now), _outcome(outcome)
        for part in _parts(ids):
            closed = await self._run("FINISH", at, state, *stored, _ids(part))
            self._open_total -= closed

    async def retry(
        self,
        ids: Sequence[int],
        *,
        available_at: float,
        now: float,
        outcome: Outcome | None = None,
        count_attempt: bool = True,
    ) -> None:
        self._forget_leases(ids)
        args = (_f(now), _f(available_at), *_outcome(outcome), int(count_attempt))
        for part in _parts(ids):
            await self._run("RETRY", *args, *part)

    async def expedite(self, portal: str, destination: str, *, now: float) -> int:
        moved: int = await self._run("EXPEDITE", portal, destination, _f(now))
        return moved

    async def requeue(self, ids: Sequence[int], *, state: FinalState, now: float) -> int:
        if not ids:
            return 0
        moved: int = await self._run("REQUEUE", _f(now), state, *ids)
        self._open_total += moved
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
        self._forget_leases(ids)
        if ids:
            kvs = [_kv(k) for k in keys]
            args = (_f(now), _f(until), *_outcome(outcome), len(kvs), *kvs, *ids)
            await self._run("HOLD", *args)

    async def ready_at(self, portal: str, destination: str) -> float | None:
        at = await self._run("READY_AT", portal, destination)
        return None if at is None else float(at)

    async def queue_depth(self, portal: str, destination: str, *, now: float) -> tuple[int, float]:
        return await self._call(self._read.queue_depth(portal, destination, now))

    async def counts(self) -> dict[tuple[str, str, str], int]:
        return await self._call(self._read.counts())

    async def record_attempts(self, attempts: Sequence[Attempt]) -> None:
        # One script call for the batch: the attempt and its per-item index, not a SADD per item.
        args: list[object] = []
        for attempt in attempts:
            args += [uuid.uuid4().hex, _encode(attempt), _ids(attempt.item_ids)]
        if args:
            await self._run("RECORD_ATTEMPTS", *args)

    # -- identity -------------------------------------------------------------------------
    async def link(self, portal: str, keys: Sequence[Key], *, now: float) -> None:
        if keys:
            await self._run("LINK", portal, _f(now), *(_kv(k) for k in keys))

    async def people_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, list[Key]]:
        if not keys:
            return {}
        # The keys go as one argument and come back as one string: a batch's thousand keys
        # are not a thousand arguments packed and replies parsed one by one; in scripts of
        # at most _SCRIPT_KEYS keys, so that ingest's appends wait for none long.
        found: dict[Key, list[Key]] = {}
        for part in _parts(keys, _SCRIPT_KEYS):
            packed = await self._run("PEOPLE_OF", portal, _pack_msgpack(part))
            people, at = _decode_people(packed)
            # Keys of one person share its list (callers only read it).
            these = {key: people[p - 1] for key, p in zip(part, at, strict=True) if p}
            if found:
                found.update(these)
            else:
                found = these  # a batch's keys fit one part: not copied again
        return found

    async def release_for(self, portal: str, keys: Sequence[Key], *, now: float) -> list[Item]:
        if not keys:
            return []
        replies = await self._run("RELEASE_FOR", _f(now), portal, *(_kv(k) for k in keys))
        return [item_from_reply(portal, r) for r in replies]

    async def learn(
        self, portal: str, groups: Sequence[Sequence[Key]], *, now: float
    ) -> list[Item]:
        return await self._learn(portal, _f(now), _groups(groups))

    async def _learn(self, portal: str, now: str, groups: list[list[str]]) -> list[Item]:
        if not groups:
            return []
        args = [x for kvs in groups for x in (len(kvs), *kvs)]
        replies = await self._run("LEARN", now, portal, *args)
        return [item_from_reply(portal, r) for r in replies]

    def learn_soon(
        self, portal: str, groups: Sequence[Sequence[Key]], *, now: float
    ) -> asyncio.Future[list[Item]]:
        """Queued for the next ``append`` of this turn of the loop, which carries it in its own
        script (ingest begins the learning just before its append); what no append took by the
        next turn is learned by itself."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Item]] = loop.create_future()
        kvs = _groups(groups)
        if not kvs:
            done.set_result([])
            return done
        if not self._learning:
            loop.call_soon(self._learn_alone)
        self._learning.append(_Learning(portal, _f(now), kvs, done))
        return done

    def _learn_alone(self) -> None:
        queued, self._learning = self._learning, []
        for ride in queued:
            task = asyncio.ensure_future(self._learn_ride(ride))
            self._alone.add(task)
            task.add_done_callback(self._alone.discard)

    async def _learn_ride(self, ride: _Learning) -> None:
        # The outcome is the caller's, through ``done``: only a cancel ends the task itself.
        try:
            released = await self._learn(ride.portal, ride.now, ride.groups)
        except asyncio.CancelledError as exc:
            _fail(ride.done, exc)
            raise
        except Exception as exc:
            _fail(ride.done, exc)
        else:
            if not ride.done.done():
                ride.done.set_result(released)

    async def remap_contact(
        self, portal: str, old_ids: Sequence[str], new_id: str, *, now: float
    ) -> int:
        if not old_ids:
            return 0
        return int(await self._run("REMAP_CONTACT", portal, _f(now), new_id, *old_ids))

    async def erase(self, portal: str, keys: Sequence[Key], *, now: float) -> Erasure:
        found = await self._run("FORGET_PEOPLE", portal, *(_kv(k) for k in keys))
        identifiers = [_key(kv) for kv in found]
        needles = [msgspec.json.encode(value) for _, value in identifiers]
        seqs = await self._call(self._read.events_containing(portal, needles, _ERASE_SCAN))
        items = 0
        if seqs:
            items, closed = await self._run("ERASE_EVENTS", _f(now), *seqs)
            self._open_total -= closed
        record = Erasure(identifiers=len(identifiers), events=len(seqs), items=int(items))
        entry = _encode({"at": now, "portal": portal, **msgspec.structs.asdict(record)})
        await self._call(self.client.rpush(self.keys.name("erasures"), entry))
        return record

    # -- touch memory ---------------------------------------------------------------------
    async def remember_touches(self, portal: str, seen: Sequence[tuple[Key, Touch]]) -> None:
        if seen:
            args = [a for key, t in seen for a in (_kv(key), _f(t.at), _encode(t))]
            await self._run("REMEMBER_TOUCHES", portal, *args)

    async def touches_of(self, portal: str, keys: Sequence[Key]) -> dict[Key, TouchMemory]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        found: dict[Key, TouchMemory] = {}
        for part in _parts(unique, _SCRIPT_KEYS):  # as ``people_of``
            packed = await self._run("TOUCHES_OF", portal, _pack_msgpack(part))
            rows = _unpack(packed) if isinstance(packed, bytes) else []
            for i, first, last in rows:
                memory = TouchMemory(first=_unpack_touch(first), last=_unpack_touch(last))
                found[part[i - 1]] = memory
        return found

    # -- reading back ---------------------------------------------------------------------
    @property
    def _read(self) -> RedisReader:
        if self._reader is None:
            raise StorageUnavailableError("storage is not open", retry_after_s=1.0)
        return self._reader

    async def get_event(self, seq: int) -> StoredEvent | None:
        return await self._call(self._read.get_event(seq))

    async def items_of(self, seq: int) -> list[ItemRecord]:
        return await self._call(self._read.items_of(seq))

    async def items_in_state(
        self, state: ItemState, *, portal: str | None = None, limit: int = 100
    ) -> list[ItemRecord]:
        return await self._call(self._read.items_in_state(state, portal, limit))

    async def attempts_of(self, item_ids: Sequence[int]) -> list[Attempt]:
        return await self._call(self._read.attempts_of(item_ids))

    async def recent_events(self, *, after_seq: int = 0, limit: int = 100) -> list[StoredEvent]:
        return await self._call(self._read.recent_events(after_seq, limit))

    # -- metadata -------------------------------------------------------------------------
    # -- attribution quality --------------------------------------------------------------
    async def add_quality(self, counts: Sequence[QualityCount]) -> None:
        if counts:
            await self._call(quality.add(self.client, self.keys, counts))

    async def quality_hours(self, first: int, last: int) -> list[QualityCount]:
        return await self._call(quality.between(self.client, self.keys, first, last))

    async def ingest_totals(self) -> dict[tuple[str, str], int]:
        return await self._call(quality.totals(self.client, self.keys))

    # -- rate history -------------------------------------------------------------------
    async def add_rates(self, counts: Sequence[RateCount]) -> None:
        if counts:
            await self._call(rates.add(self.client, self.keys, counts))

    async def rate_minutes(self, first: int, last: int) -> list[RateCount]:
        return await self._call(rates.between(self.client, self.keys, first, last))

    # -- quotas ---------------------------------------------------------------------------
    async def spend_quota(
        self, portal: str, name: str, period: str, n: int, cap: int
    ) -> tuple[bool, int]:
        granted, used = await self._run("SPEND_QUOTA", portal, name, period, n, cap, _QUOTA_TTL_S)
        return bool(granted), int(used)

    async def raise_quota(self, portal: str, name: str, period: str, used: int) -> int:
        return int(await self._run("RAISE_QUOTA", portal, name, period, used, _QUOTA_TTL_S))

    async def get_meta(self, key: str) -> bytes | None:
        value = await self._call(self.client.hget(self.keys.name("meta"), key))
        return None if value is None else cast(bytes, value)

    async def set_meta(self, key: str, value: bytes) -> None:
        await self._call(self.client.hset(self.keys.name("meta"), key, value))


def _translate(exc: RedisError) -> StorageUnavailableError:
    text = str(exc) or type(exc).__name__
    if "OOM" in text:
        return StorageUnavailableError(f"storage is full: {text}", retry_after_s=30.0)
    return StorageUnavailableError(f"storage failed: {text}", retry_after_s=2.0)


def _fail(done: asyncio.Future[Any], exc: BaseException) -> None:
    """End a queued learning's future as its script ended."""
    if done.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(exc)


def _groups(groups: Sequence[Sequence[Key]]) -> list[list[str]]:
    """The non-empty groups of keys as the scripts take them (``kind SEP value``)."""
    return [[_kv(k) for k in keys] for keys in groups if keys]


def _outcome(outcome: Outcome | None) -> tuple[str, str]:
    stored = encode(outcome)
    return ("0", "") if stored is None else ("1", stored)


def _unpack_touch(value: bytes | str) -> Touch:
    """A stored ``"at json"`` value: the time is only there for the script to compare."""
    raw = value.encode() if isinstance(value, str) else value
    return _decode_touch(raw.partition(b" ")[2])


def _key(kv: bytes | str) -> Key:
    kind, _, value = (kv if isinstance(kv, str) else kv.decode()).partition(SEP)
    return (kind, value)


def _parts(values: Sequence[T], size: int = _SCRIPT_ITEMS) -> list[Sequence[T]]:
    """``values`` in consecutive parts of at most ``size`` (none when empty)."""
    return [values[start : start + size] for start in range(0, len(values), size)]


def _ids(ids: Sequence[int]) -> bytes:
    """Item ids as one msgpack array (a script unpacks it): no ``str`` per id here."""
    return _pack_msgpack(ids)


def _flat_learning(ride: _Learning, flags: Sequence[bool]) -> list[Any]:
    """A learning as ``APPEND`` takes it: portal, now, then each group after its number, each
    with the number of its keys and whether this replica holds it settled (``SettledLinks``)."""
    out: list[Any] = [ride.portal, ride.now, len(ride.groups)]
    for kvs, flag in zip(ride.groups, flags, strict=True):
        out += (len(kvs), "1" if flag else "", *kvs)
    return out


def _flat(e: NewEvent) -> list[Any]:
    """An event as ``APPEND`` takes it: its fields and payload, then its destinations and its
    drops, each after their number."""
    window = "" if e.dedup_window_s is None else _f(e.dedup_window_s)
    name = "" if e.name is None else "=" + e.name  # '' is None; a name may itself be empty
    out: list[Any] = [
        *(e.portal, e.message_id, window, e.source, e.type, name, _f(e.received_at)),
        *("1" if e.test else "0", e.payload, len(e.destinations), *e.destinations),
        len(e.dropped),
    ]
    for destination, why in e.dropped:
        out += (destination, encode(Outcome(Reason.POLICY, why)))
    return out


async def plan_redis(url: str, *, apply: bool) -> SchemaPlan:
    """``plan_migrations`` for a Redis key space (see ``redis.migrations``)."""
    storage = RedisStorage(url)
    client = aioredis.Redis.from_url(storage._url, socket_connect_timeout=2.0, socket_timeout=5.0)
    store = storage.describe()
    try:
        found = await migrations.version_of(client, storage.keys)
        if apply:
            done = await migrations.migrate(client, storage.keys, store)
        else:
            done = await migrations.pending(client, storage.keys, store)
            if found is None:
                done = list(migrations.MIGRATIONS)
    except RedisError as exc:
        raise _translate(exc) from exc
    finally:
        with contextlib.suppress(RedisError):
            await client.aclose()
    return SchemaPlan(store, found, migrations.LATEST, tuple((m.version, m.summary) for m in done))
