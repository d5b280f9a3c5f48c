"""Contact resolution: userId -> HubSpot contact id through a unique contact property.

``contacts/batch/read`` with ``idProperty`` (100 ids per call) answers for many users in one
request; concurrent look-ups of the same ids share one request; answers are cached (a shorter
TTL for "no such contact"). Every call spends the portal's CRM envelope like any other request.
Search is the fallback only when batch read refuses the property, inside its own 5/s envelope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from forwarder.clock import Clock
from forwarder.errors import HubSpotError
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.models import Filter, FilterGroup, RateLimitHeaders
from forwarder.telemetry import get_logger

BATCH = 100
POSITIVE_TTL_S = 3600.0
NEGATIVE_TTL_S = 300.0


class Envelopes(Protocol):
    """The portal's rate envelopes, by destination name (delivery's ``PortalEnvelopes``).

    Identity sits below delivery, so the envelopes are handed in rather than imported.
    """

    async def acquire(self, destination: str, inputs: int = 1) -> float:
        """Wait until one request fits every budget of ``destination``, then spend it; when
        it was logged."""
        ...

    def answered(self, destination: str, sent_at: float) -> None:
        """HubSpot answered the request ``acquire`` logged at ``sent_at``."""
        ...

    def observe(self, destination: str, headers: RateLimitHeaders | None) -> None:
        """Feed one response's rate-limit headers to the envelope of ``destination``."""
        ...


class ContactLookup:
    """Per portal, with its own cache."""

    def __init__(
        self,
        client: HubSpotClient,
        envelopes: Envelopes,
        clock: Clock,
        id_property: str,
    ) -> None:
        self._client = client
        self._envelopes = envelopes
        self._clock = clock
        self._property = id_property
        self._cache: dict[str, tuple[str | None, float]] = {}
        self._inflight: dict[str, asyncio.Future[str | None]] = {}
        self._search_only = False
        self._log = get_logger("lookup")

    async def resolve(self, user_ids: Sequence[str]) -> dict[str, str | None]:
        """Contact id per userId (None: no contact has it)."""
        now = self._clock.monotonic()
        found: dict[str, str | None] = {}
        waits: dict[str, asyncio.Future[str | None]] = {}
        missing: list[str] = []
        for user_id in dict.fromkeys(user_ids):
            cached = self._cache.get(user_id)
            if cached is not None and cached[1] > now:
                found[user_id] = cached[0]
            elif user_id in self._inflight:
                waits[user_id] = self._inflight[user_id]
            else:
                missing.append(user_id)
        loop = asyncio.get_running_loop()
        for user_id in missing:
            self._inflight[user_id] = waits[user_id] = loop.create_future()
        for start in range(0, len(missing), BATCH):
            await self._fetch(missing[start : start + BATCH])
        for user_id, future in waits.items():
            found[user_id] = await future
        return found

    async def _fetch(self, user_ids: list[str]) -> None:
        answers: dict[str, str | None] = {}
        try:
            answers = await (self._search(user_ids) if self._search_only else self._read(user_ids))
        except HubSpotError as exc:
            self._log.warning("contact_lookup_failed", error=str(exc), ids=len(user_ids))
        now = self._clock.monotonic()
        for user_id in user_ids:
            future = self._inflight.pop(user_id)
            if user_id in answers:
                contact = answers[user_id]
                ttl = POSITIVE_TTL_S if contact is not None else NEGATIVE_TTL_S
                self._cache[user_id] = (contact, now + ttl)
            future.set_result(answers.get(user_id))

    async def _read(self, user_ids: list[str]) -> dict[str, str | None]:
        sent_at = await self._envelopes.acquire("lookups")
        try:
            reply = await self._client.batch_read_contacts(
                user_ids, id_property=self._property, properties=[self._property]
            )
        finally:
            self._envelopes.answered("lookups", sent_at)
        self._envelopes.observe("lookups", reply.response.rate_limit)
        if reply.response.status == 400:
            self._log.warning("contact_lookup_falls_back_to_search", property=self._property)
            self._search_only = True
            return await self._search(user_ids)
        if reply.data is None:
            return {}
        answers: dict[str, str | None] = dict.fromkeys(user_ids)
        for contact in reply.data.results:
            value = contact.properties.get(self._property)
            if value is not None:
                answers[value] = contact.id
        return answers

    async def _search(self, user_ids: list[str]) -> dict[str, str | None]:
        answers: dict[str, str | None] = dict.fromkeys(user_ids)
        for start in range(0, len(user_ids), 100):
            chunk = user_ids[start : start + 100]
            await self._envelopes.acquire("search")
            group = FilterGroup([Filter(self._property, "IN", values=chunk)])
            reply = await self._client.search_contacts([group], [self._property], limit=100)
            for contact in reply.data.results if reply.data else []:
                value = contact.properties.get(self._property)
                if value is not None:
                    answers[value] = contact.id
        return answers
