"""What to do with HubSpot's answer: a pure classifier, response -> outcome (Vector's RetryAction).

Rules follow docs/hubspot-contract.md, "Rate limits" and "Errors and retries". ``classify`` has no
I/O, no clock and no randomness of its own (``rand`` is injected), so every rule is a line in a test
table.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from forwarder.errors import (
    HubSpotAuthError,
    HubSpotError,
    HubSpotRetryableError,
    HubSpotTransportError,
)
from forwarder.hubspot.models import BatchResponse, ErrorBody, StandardError
from forwarder.hubspot.responses import HubSpotResponse, decode_body, is_retryable

LOCKED_WAIT_S = 2.0
"""423: "Locks will last for 2 seconds" (docs/hubspot-contract.md, "Errors and retries")."""
TEN_SECONDLY_WAIT_S = 10.0
"""429 ``TEN_SECONDLY_ROLLING`` without ``Interval-Milliseconds``: one whole window."""
SECONDLY_WAIT_S = 1.0
"""429 ``SECONDLY`` (search): one second."""
DAILY_FALLBACK_WAIT_S = 3600.0
"""429 ``DAILY`` when the caller does not know when the day resets: check again in an hour."""
EMPTY_SUCCESS_RETRIES = 3
"""An empty success where results were expected is retried this often, then given up."""

_BATCH = msgspec.json.Decoder(BatchResponse[msgspec.Raw])
"""Results are only counted here, so any result shape (contact, timeline event) decodes."""


@dataclass(frozen=True, slots=True)
class Done:
    """Delivered."""


@dataclass(frozen=True, slots=True)
class AlreadyDone:
    """HubSpot already has it (409 on an idempotency key): count as delivered."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Send the whole batch again after ``after_s``; ``policy`` names a 429 limit hit.

    ``own`` is True when the failure is the items' own (an empty success, a locked record);
    otherwise the destination is unwell (5xx, timeout, 429) and its breaker decides the wait.
    ``until_room`` marks a rolling-window 429 that named no wait (no ``Retry-After``): the
    envelope, whose log the 429's headers fill, knows when the window has room again, and
    ``after_s`` (a whole interval) is only the longest it waits.
    """

    after_s: float
    reason: str
    policy: str | None = None
    own: bool = False
    until_room: bool = False


@dataclass(frozen=True, slots=True)
class RetryPartial:
    """207: retry the inputs at ``failed``, dead-letter those at ``dead``; the rest are done."""

    failed: tuple[int, ...]
    after_s: float
    reason: str
    dead: tuple[int, ...] = ()
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Split:
    """400 on a batch of more than one input: bisect to isolate the bad ones."""

    reason: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Dead-letter with HubSpot's message, correlation id and category."""

    reason: str
    correlation_id: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop this destination (or portal) until the operator fixes credentials or scopes."""

    reason: str
    category: str | None = None


@dataclass(frozen=True, slots=True)
class RefreshAuth:
    """401 with OAuth: refresh the access token and send once more."""


Outcome = Done | AlreadyDone | Retry | RetryPartial | Split | GiveUp | Pause | RefreshAuth

VALIDATION_RULE = "VALIDATION_RULE"
"""Dead-letter category of a write the account's validation rules refused (2026-09 and later)."""
VALIDATION_RULE_CODES = frozenset(
    {"MISSING_REQUIRED_PROPERTY", "MISSING_CONDITIONAL_REQUIRED_PROPERTY"}
)
"""``errors[].code`` of a refusal by a conditional rule or a property required on creation."""
UNSUPPORTED_VERSION = "UNSUPPORTED_API_VERSION"
"""Category the sandbox answers (with 410) on a version started as unsupported: HubSpot does
not document what an unsupported version answers, so any 410 pauses rather than loses events."""

# Per-input categories that a retry will not cure (docs/hubspot-contract.md, "Errors and retries").
PERMANENT_CATEGORIES = frozenset(
    {"VALIDATION_ERROR", "OBJECT_NOT_FOUND", "CONFLICT", "OBJECT_ALREADY_EXISTS", "INVALID_EMAIL"}
)


def backoff_s(
    attempt: int,
    *,
    base_s: float = 1.0,
    cap_s: float = 300.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))).

    Args:
        attempt: 1 for the first failure, 2 for the second, ...
        base_s: the ceiling after the first failure.
        cap_s: the largest ceiling.
        rand: uniform [0, 1) source (injectable for tests).
    """
    exponent = min(max(attempt - 1, 0), 30)  # 2**30 s is far past any cap; avoids overflow
    return rand() * min(cap_s, base_s * 2.0**exponent)


def classify(  # noqa: C901 - one branch per HubSpot answer, in the order they are tried: read as a table
    result: HubSpotResponse | HubSpotError,
    *,
    batch_size: int,
    attempt: int,
    expected_results: bool = False,
    oauth: bool = False,
    conflict_is_duplicate: bool = False,
    input_keys: Sequence[str] = (),
    daily_reset_in_s: float | None = None,
    rand: Callable[[], float] = random.random,
) -> Outcome:
    """Turn one answer (or the lack of one) into what to do next.

    Args:
        result: the response, or the HubSpotError raised instead of one.
        batch_size: inputs in the request (a 400 on more than one is bisected).
        attempt: 1 for the first send of this batch.
        expected_results: a 2xx must carry ``results`` (batch read/upsert/create).
        oauth: the portal uses OAuth (401 refreshes instead of pausing).
        conflict_is_duplicate: a 409 on a single input means its idempotency key was already
            used (a 409 on a batch is bisected).
        input_keys: per input, the key HubSpot echoes in 207 errors (id, email or
            ``objectWriteTraceId``), to map errors back to input indexes.
        daily_reset_in_s: seconds until the portal's daily limit resets.
        rand: jitter source.
    """
    if isinstance(result, HubSpotError):
        return _classify_error(result, attempt, rand)
    status = result.status
    error = result.error or ErrorBody()
    if status == 207:
        return _partial(result, input_keys, backoff_s(attempt, rand=rand))
    if 200 <= status < 300:
        return _success(result, expected_results, attempt, rand)
    if status == 429:
        return _throttled(result, error, daily_reset_in_s)
    if is_retryable(status):  # 423, 477, 5xx (429 was handled above)
        return _transient(result, attempt, rand)
    if status in (401, 403):
        return _auth(result, error, oauth)
    if status == 410 or error.category == UNSUPPORTED_VERSION:
        # The whole API version is gone: every event would fail the same way until the
        # operator moves the portal to a supported ``api_version``.
        return Pause(f"{status}: {error.message or 'API version gone'}", UNSUPPORTED_VERSION)
    if status == 409 and conflict_is_duplicate and batch_size == 1:
        # On a batch, HubSpot refuses all of it when any one exists: bisect (below) to
        # find which, or the new ones would be counted as delivered and lost.
        return AlreadyDone()
    if status == 400 and batch_size == 1 and _repeated_uuid(error):
        # HubSpot keeps the first occurrence of a uuid and refuses later ones: a replay after
        # a crash (or a dead-letter replay) of something HubSpot already has is delivered.
        return AlreadyDone()
    if status in (400, 409, 413) and batch_size > 1:
        return Split(f"{status}: {error.message or 'rejected'}; bisecting {batch_size} inputs")
    if status == 400 and (rule := _validation_rule(error)) is not None:
        return GiveUp(rule, result.correlation_id, VALIDATION_RULE)
    return _give_up(result, error)


def _classify_error(error: HubSpotError, attempt: int, rand: Callable[[], float]) -> Outcome:
    if isinstance(error, HubSpotAuthError):
        return Pause(error.message, error.category or "BAD_REFRESH_TOKEN")
    if isinstance(error, HubSpotTransportError):
        what = "timeout" if error.timeout else "connection error"
        return Retry(backoff_s(attempt, rand=rand), what)
    if isinstance(error, HubSpotRetryableError):
        return Retry(backoff_s(attempt, rand=rand), error.message)
    return GiveUp(error.message, error.correlation_id, error.category)


def _success(
    response: HubSpotResponse, expected: bool, attempt: int, rand: Callable[[], float]
) -> Outcome:
    if not expected:
        return Done()
    body = decode_body(response, _BATCH)
    if body is not None and body.results:
        return Done()
    # A silent no-op (docs/hubspot-contract.md, "Contacts") is a failure: retry a few times,
    # then dead-letter.
    reason = f"{response.status} without results where results were expected"
    if attempt < EMPTY_SUCCESS_RETRIES:
        return Retry(backoff_s(attempt, rand=rand), reason, own=True)
    return GiveUp(reason, response.correlation_id, "EMPTY_SUCCESS")


def _throttled(
    response: HubSpotResponse, error: ErrorBody, daily_reset_in_s: float | None
) -> Outcome:
    policy = error.policy_name or ("SECONDLY" if "secondly limit" in error.message else None)
    if policy == "DAILY":
        # Never before the portal's midnight, whatever Retry-After says
        # (docs/hubspot-contract.md, "Rate limits").
        until_reset = DAILY_FALLBACK_WAIT_S if daily_reset_in_s is None else daily_reset_in_s
        wait = max(until_reset, response.retry_after_s or 0.0)
        return Retry(wait, "daily limit reached", policy)
    if response.retry_after_s is not None:
        return Retry(response.retry_after_s, "429 with Retry-After", policy)
    if policy == "SECONDLY":
        return Retry(SECONDLY_WAIT_S, "secondly limit reached", policy)
    interval_ms = response.rate_limit.interval_ms if response.rate_limit else None
    wait = interval_ms / 1000.0 if interval_ms else TEN_SECONDLY_WAIT_S
    policy = policy or "TEN_SECONDLY_ROLLING"
    return Retry(wait, "rolling window limit reached", policy, until_room=True)


def _transient(response: HubSpotResponse, attempt: int, rand: Callable[[], float]) -> Outcome:
    status = response.status
    if status == 423:
        # A lock is on the record these inputs touch, not on HubSpot as a whole.
        return Retry(max(LOCKED_WAIT_S, response.retry_after_s or 0.0), "423 locked", own=True)
    if status == 477 and response.retry_after_s is not None:
        return Retry(response.retry_after_s, "477 migration in progress")
    return Retry(backoff_s(attempt, rand=rand), f"HubSpot answered {status}")


def _auth(response: HubSpotResponse, error: ErrorBody, oauth: bool) -> Outcome:
    category = error.category
    if response.status == 401:
        if oauth and not response.auth_retried:
            return RefreshAuth()
        why = "refreshed OAuth token refused" if oauth else "private app token refused"
        return Pause(f"401: {why}: {error.message}", category or "INVALID_AUTHENTICATION")
    # Every 403 stops the destination: a scope or tier problem repeats for every event.
    return Pause(f"403: {error.message or 'forbidden'}", category or "FORBIDDEN")


def _repeated_uuid(error: ErrorBody) -> bool:
    texts = [error.message or ""] + [d.message for d in error.errors]
    codes = {d.code for d in error.errors}
    if "DUPLICATE_UUID" in codes:
        return True
    return any(
        "uuid" in t.lower() and ("already" in t.lower() or "duplicate" in t.lower()) for t in texts
    )


def _validation_rule(error: ErrorBody) -> str | None:
    """The reason, with HubSpot's messages, when the account's validation rules refused it."""
    refused = [d for d in error.errors if d.code in VALIDATION_RULE_CODES]
    if not refused:
        return None
    said = "; ".join(f"{d.code}: {d.message}" for d in refused)
    return f"400: refused by the account's validation rules: {said}"


def _give_up(response: HubSpotResponse, error: ErrorBody) -> GiveUp:
    reason = f"{response.status}: {error.message or 'rejected by HubSpot'}"
    return GiveUp(reason, response.correlation_id, error.category or error.error_type)


def _partial(response: HubSpotResponse, keys: Sequence[str], after_s: float) -> Outcome:
    body = decode_body(response, _BATCH)
    if body is None or not body.errors:
        return Done() if body is not None else Retry(after_s, "207 with unreadable body")
    index = _index_keys(keys)
    failed: set[int] = set()
    dead: set[int] = set()
    for item in body.errors:
        hits = {i for key in _error_keys(item) for i in index.get(key, ())}
        if not hits:  # cannot tell which input failed: retry them all (sends are idempotent)
            return Retry(after_s, f"207 with unmapped error: {item.message}")
        (dead if item.category in PERMANENT_CATEGORIES else failed).update(hits)
    failed -= dead
    reason = "; ".join(sorted({f"{e.category}: {e.message}" for e in body.errors}))
    return RetryPartial(
        tuple(sorted(failed)), after_s, reason, tuple(sorted(dead)), response.correlation_id
    )


def _index_keys(keys: Sequence[str]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        index.setdefault(key.lower(), []).append(i)
    return index


def _error_keys(error: StandardError) -> list[str]:
    """Every value in the error that may name an input: ``context.ids``, trace ids, ``id``."""
    found: list[str] = [error.id] if error.id else []
    for name in ("ids", "id", "objectWriteTraceId", "email"):
        value = error.context.get(name)
        if isinstance(value, str):
            found.append(value)
        elif value:
            found.extend(value)
    return [k.lower() for k in found]
