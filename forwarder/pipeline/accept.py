"""Accept: stamp, destine and store the valid events of one request; answer only once durable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import msgspec

from forwarder.clock import Clock
from forwarder.config import Settings, SourceSettings
from forwarder.delivery.touches import TouchReader
from forwarder.errors import AllEventsRejectedError, BacklogFullError
from forwarder.events.destinations import DestinationName
from forwarder.events.messages import IngestResponse, Rejected
from forwarder.pipeline.destine import DefinitionCheck, Destiner
from forwarder.pipeline.enrich import Enricher
from forwarder.pipeline.stamp import Stamper, iso
from forwarder.pipeline.validate import Decoded
from forwarder.storage.base import Accepted, AppendResult, Item, NewEvent
from forwarder.storage.roles import EventLog, IdentityGraph
from forwarder.tallies import event_type, reason_label
from forwarder.telemetry import Metrics


class _Prepared(NamedTuple):
    """``Accepter._prepare``'s answer."""

    events: list[NewEvent]
    datas: list[dict[str, Any]]
    kinds: dict[str, int]
    """How many events of each kind (``event_type``)."""
    queues: set[str]
    """Every destination queue of the events."""


class AcceptStore(EventLog, IdentityGraph, Protocol):
    """What accepting needs: the event log, and the identity graph that enrichment writes."""


class Accepter:
    """The ingest pipeline after validation, configured once."""

    def __init__(
        self,
        settings: Settings,
        storage: AcceptStore,
        metrics: Metrics,
        clock: Clock,
        *,
        on_accepted: Callable[[str, tuple[str, ...]], None] | None = None,
        checks: Mapping[str, DefinitionCheck] | None = None,
    ) -> None:
        self._storage = storage
        self._on_accepted = on_accepted
        readers = {
            name: TouchReader(portal.attribution.touches)
            for name, portal in settings.portals.items()
            if portal.attribution.remember
        }
        self._enrich = Enricher(storage, clock.now, on_accepted, readers)
        self._metrics = metrics
        self._clock = clock
        self._destine = Destiner(settings.portals, checks)
        self._stamp = Stamper(
            settings.server.clock_skew_threshold_s,
            fingerprints=settings.dedup.fingerprint_window_s > 0,
        )
        self._window_s = settings.dedup.window_s
        self._fingerprint_window_s = settings.dedup.fingerprint_window_s
        self._max_backlog = settings.storage.max_backlog
        self._encode = msgspec.json.Encoder().encode
        self._per_source: dict[str, tuple[Any, Any]] = {}
        self._tally = metrics.quality

    def _counters(self, source: str) -> tuple[Any, Any]:
        counters = self._per_source.get(source)
        if counters is None:
            metrics = self._metrics
            counters = (metrics.received.labels(source), metrics.accepted.labels(source))
            self._per_source[source] = counters
        return counters

    async def __call__(self, source: SourceSettings, decoded: Decoded) -> IngestResponse:
        """Store what is valid; raise when nothing is.

        Raises:
            AllEventsRejectedError: no event of the request was valid.
            BacklogFullError: the pending backlog is at its cap (nothing stored).
            StorageUnavailableError: storage failed (nothing acknowledged).
        """
        rejected = list(decoded.rejected)
        received, accepted_counter = self._counters(source.name)
        received.inc(decoded.count)
        if await self._storage.pending_count() >= self._max_backlog:
            raise BacklogFullError(f"backlog reached storage.max_backlog ({self._max_backlog})")
        now = self._clock.now()
        events, datas, kinds, queues = self._prepare(source, decoded, now, rejected)
        if rejected:
            self._metrics.discarded.labels("invalid", "false").inc(len(rejected))
            self._tally_rejected(source.name, now, decoded, rejected)
        if not events:
            raise AllEventsRejectedError(sorted(rejected, key=_index))
        # Submitted together, the touches and the links usually share the append's commit (the
        # SQLite writer commits what is queued as one group; on Redis the links ride in the
        # append's script and the touches, rarely new, are a script of their own in flight
        # beside it). Both are learned from duplicates too: they are idempotent, and a retry
        # after a failure (the events already durable) must still teach them. Learned before a
        # failed append is harmless for the same reason: the producer retries.
        linking = self._enrich.linking(source.portal, datas)  # under way from here
        touching = self._enrich.touching(source.portal, datas, source.name)
        # Nothing below reads the decoded events again: freed now, not after the commit. The
        # requests waiting on a commit held ~300 tracked objects each, which every collection
        # of the older generations walked (the caller has let go of ``decoded`` already).
        del decoded, datas
        results = await self._store(events, now, touching, linking)
        accepted = list(map(type, results)).count(Accepted)  # C loops: once per event
        if accepted and self._on_accepted is not None:
            self._on_accepted(source.portal, tuple(sorted(queues)))
        duplicates = len(results) - accepted
        if duplicates:
            self._tally_results(source.name, now, events, results)
        else:  # the common case: counted by kind as the events were prepared
            for kind, n in kinds.items():
                self._tally.add(now, source.name, kind, "received", n)
                self._tally.add(now, source.name, kind, "accepted", n)
        accepted_counter.inc(accepted)
        if duplicates:
            self._metrics.discarded.labels("duplicate", "true").inc(duplicates)
        return IngestResponse(
            success=True,
            accepted=accepted,
            duplicates=duplicates,
            rejected=sorted(rejected, key=_index),
        )

    def _prepare(
        self, source: SourceSettings, decoded: Decoded, now: float, rejected: list[Rejected]
    ) -> _Prepared:
        """Stamp and route each valid event: the ones to store, their dicts, how many of each
        kind (``event_type``) and their queues. Events that routing refuses join ``rejected``.
        This runs for every event ingested: what the loop reads is looked up once, and
        ``NewEvent`` is built positionally."""
        received_at = datetime.fromtimestamp(now, UTC)
        received_iso = iso(received_at)
        stamp, destine, encode = self._stamp, self._destine, self._encode
        portal, source_name, always_test = source.portal, source.name, source.test
        window = self._fingerprint_window_s
        events: list[NewEvent] = []
        datas: list[dict[str, Any]] = []
        kinds: dict[str, int] = {}
        queues: set[str] = set()
        routed: object = None
        for event in decoded.valid:
            data, message = event.data, event.message
            fingerprinted = stamp(event, received_at, received_iso)
            fanout = destine(event.index, portal, message, data)
            if isinstance(fanout, Rejected):
                rejected.append(fanout)
                continue
            if fanout is not routed:  # most events of a request share one (``destine``)
                queues.update(fanout.destinations)
                routed = fanout
            context = data.get("context")
            kind = data["type"]
            name = getattr(message, "event", None) or getattr(message, "name", None)
            counted = name if kind == "track" and name else kind  # ``event_type``, inlined
            kinds[counted] = kinds.get(counted, 0) + 1
            datas.append(data)
            events.append(
                NewEvent(
                    portal,
                    data["messageId"],
                    source_name,
                    kind,
                    name,
                    now,
                    encode(data),
                    fanout.destinations,
                    fanout.dropped,
                    always_test or (isinstance(context, dict) and context.get("test") is True),
                    window if fingerprinted else None,
                )
            )
        return _Prepared(events, datas, kinds, queues)

    async def _store(
        self,
        events: list[NewEvent],
        now: float,
        touching: Coroutine[Any, Any, None] | None,
        linking: Coroutine[Any, Any, list[Item]] | None,
    ) -> list[AppendResult]:
        """Append ``events`` while the touches and links (when any) are learned beside it.

        The links are being learned already (``Enricher.linking`` began the storage call, so
        on SQLite its job is queued beside the append's without a task); the touches, rarely
        new, get a task. Both are always waited for; the append's failure is raised first.
        A task and a gather cost more than validating an event: none is made when not needed.
        """
        touches = asyncio.ensure_future(touching) if touching is not None else None
        try:
            results = await self._storage.append(events, now=now, dedup_window_s=self._window_s)
        except asyncio.CancelledError:
            if touches is not None:
                touches.cancel()
            if linking is not None:
                linking.close()
            raise
        except Exception as exc:
            failure: Exception | None = exc
        else:
            failure = None
        if touches is None and linking is None:
            if failure is not None:
                raise failure
            return results
        learned = await self._learned(now, touches, linking)
        if failure is not None:
            raise failure
        if learned is not None:
            raise learned
        return results

    async def _learned(
        self,
        now: float,
        touches: asyncio.Future[None] | None,
        linking: Coroutine[Any, Any, list[Item]] | None,
    ) -> BaseException | None:
        """Wait for the touches and links; the first failure, if any (raised by the caller)."""
        failures: list[BaseException] = []
        if touches is not None:
            try:
                await touches
            except Exception as exc:
                failures.append(exc)
        if linking is not None:
            try:
                self._tally_released(now, await linking)
            except Exception as exc:
                failures.append(exc)
        return failures[0] if failures else None

    def _tally_released(self, now: float, released: list[Item]) -> None:
        for item in released:
            if item.destination != DestinationName.CONVERSIONS:
                continue  # the timeline copy of a held conversion would count it twice
            held = item.event
            self._tally.add(now, held.source, event_type(held.type, held.name), "released")

    def _tally_rejected(
        self, source: str, now: float, decoded: Decoded, rejected: list[Rejected]
    ) -> None:
        # A refused event has a known type only when routing refused it (validation may have
        # failed on the type itself).
        types = {v.index: event_type(v.data["type"], _name(v.data)) for v in decoded.valid}
        types.update(decoded.rejected_types)
        for r in rejected:
            kind = types.get(r.index, UNPARSED)
            why = f"rejected:{r.path}: {reason_label(r.reason)}"
            self._tally.add_many(now, source, kind, ("received", "rejected", why))

    def _tally_results(
        self, source: str, now: float, events: list[NewEvent], results: list[AppendResult]
    ) -> None:
        counts: dict[tuple[str, bool], int] = {}
        for event, result in zip(events, results, strict=True):
            kind = event.name if event.type == "track" and event.name else event.type
            key = (kind, type(result) is Accepted)  # ``event_type``, inlined: once per event
            counts[key] = counts.get(key, 0) + 1
        for (kind, fresh), n in counts.items():
            self._tally.add(now, source, kind, "received", n)
            self._tally.add(now, source, kind, "accepted" if fresh else "duplicate", n)


UNPARSED = "(unparsed)"
"""The event type of refused events whose type could not be read."""


def _name(data: dict[str, Any]) -> str | None:
    name = data.get("event") or data.get("name")
    return name if isinstance(name, str) else None


def _index(r: Rejected) -> int:
    return r.index
