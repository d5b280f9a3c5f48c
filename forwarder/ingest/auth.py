"""Who is sending: write key (Basic user, Bearer or body), origin rules and browser-key rates."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from collections.abc import Sequence

from forwarder.clock import Clock
from forwarder.config import ServerSettings, SourceSettings
from forwarder.errors import ForbiddenOriginError, RateLimitedError, UnauthorizedError


def key_from_header(authorization: str | None) -> str | None:
    """The write key in ``Authorization: Basic base64(key:)`` or ``Bearer key``."""
    if not authorization:
        return None
    if len(authorization) <= _CACHED_HEADER:
        return _parsed(authorization)
    return _parse(authorization)


_CACHED_HEADER = 512
"""Headers up to this long are cached (a sender repeats its header on every request); longer
ones, which no real key needs, are parsed each time so the cache cannot hold much memory."""


@functools.lru_cache(maxsize=256)
def _parsed(authorization: str) -> str | None:
    return _parse(authorization)


def _parse(authorization: str) -> str | None:
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class SourceResolver:
    """Finds the source of a write key in constant time and applies its origin and rate rules."""

    def __init__(
        self, sources: Sequence[SourceSettings], server: ServerSettings, clock: Clock
    ) -> None:
        self._sources = [(s.write_key.reveal().encode(), s) for s in sources]
        self._browser_origins = frozenset(
            o.rstrip("/") for s in sources if s.kind == "browser" for o in s.allowed_origins
        )
        self._rate = server.browser_rate_per_s
        self._burst = float(server.browser_burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def resolve(self, key: str | None, origin: str | None) -> SourceSettings:
        """The source for ``key``, or an error that never says whether a key exists.

        Raises:
            UnauthorizedError: missing or unknown key.
            ForbiddenOriginError: browser key from an origin not on its allow-list.
        """
        if not key:
            raise UnauthorizedError("missing write key", field="Authorization")
        candidate = key.encode()
        found: SourceSettings | None = None
        for secret, source in self._sources:  # every key compared, no early exit
            if hmac.compare_digest(candidate, secret):
                found = source
        if found is None:
            raise UnauthorizedError("invalid write key", field="Authorization")
        if found.kind == "browser":
            allowed = {o.rstrip("/") for o in found.allowed_origins}
            if origin is None or origin.rstrip("/") not in allowed:
                raise ForbiddenOriginError(
                    f"origin {origin or '(none)'} is not allowed for this write key",
                    field="Origin",
                )
        return found

    def preflight_allowed(self, origin: str | None) -> bool:
        """Whether a CORS preflight from ``origin`` may proceed (any browser source allows it)."""
        return origin is not None and origin.rstrip("/") in self._browser_origins

    def charge(self, source: SourceSettings, events: int) -> None:
        """Spend a browser key's token bucket; server keys are not limited here.

        Raises:
            RateLimitedError: the key is over its rate.
        """
        if source.kind != "browser":
            return
        now = self._clock.monotonic()
        bucket = self._buckets.get(source.name)
        if bucket is None:
            bucket = self._buckets[source.name] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens < events:
            wait = (events - bucket.tokens) / self._rate
            raise RateLimitedError(
                f"write key {source.name!r} is over its rate of {self._rate:g} events/s",
                retry_after_s=wait,
            )
        bucket.tokens -= events
