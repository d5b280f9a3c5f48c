"""What came of a delivery item or attempt, as a typed value the store keeps.

Writers (the worker, the destinations, the store's own scripts for replays and erasures) set
an ``Outcome``: a bounded ``Reason`` plus HubSpot's message, category and correlation id, and
for a conversion the identifier it went with, each in its own field. Readers (the debugger,
its CLI, the quality counters) read those fields; nothing parses a sentence back.

``describe`` builds the human sentence the debugger shows. ``from_detail`` reads the free-text
``detail`` that stores written before these fields had; only the store migrations call it.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class Reason(enum.StrEnum):
    """Why an item is where it is, or what came of an attempt (one value per kind)."""

    DELIVERED = "delivered"
    """HubSpot took it (``identifier`` and ``notes`` say with which identifier, for a
    conversion or timeline event)."""
    MERGED = "merged"
    """Delivered inside a later identify of the same contact in the same batch."""
    RETRYING = "retrying"
    """HubSpot failed or refused for now; tried again later (``message`` says why)."""
    PARTIAL = "partial"
    """An attempt HubSpot took in part (207): some inputs retried or dead-lettered."""
    SPLIT = "split"
    """An attempt HubSpot refused as a batch: it was bisected to find the bad inputs."""
    PAUSED = "paused"
    """The destination is paused (token or scopes): the item waits for the operator."""
    REAUTHORIZED = "reauthorized"
    """HubSpot refused the OAuth access token; it was refreshed and the item goes again."""
    REPLAYED = "replayed"
    """An operator replayed it from the dead letters."""
    AWAITING_IDENTITY = "awaiting_identity"
    """Held: no identifier HubSpot knows is linked to the person yet (``notes`` say why)."""
    REJECTED = "rejected"
    """Dead: HubSpot refused it for good (``message``, ``category``, ``correlation_id``)."""
    POLICY = "policy"
    """Dropped by policy: it can never be sent (``message`` says why)."""
    ERASED = "erased"
    """Dropped: its person was erased on request."""
    PURGED = "purged"
    """Dropped: an operator purged it from the dead letters."""
    TOO_OLD = "too_old"
    """Expired: HubSpot did not take it before its maximum age (``message``: the last failure)."""
    UNIDENTIFIED = "unidentified"
    """Expired: no identify linked its person before the hold ran out."""


class Outcome(msgspec.Struct, frozen=True, omit_defaults=True):
    """What came of an item, field by field (only ``reason`` is always set)."""

    reason: Reason
    message: str | None = None
    """HubSpot's message for a rejection; otherwise the few words of why (a retry's cause, a
    policy's rule)."""
    category: str | None = None
    """HubSpot's error category (``VALIDATION_ERROR``, ``EVENT_DEFINITION_NOT_FOUND`` ...)."""
    correlation_id: str | None = None
    """HubSpot's correlationId of the answer, for its support."""
    identifier: str | None = None
    """The identifier kind the item went with (``objectId``, ``email``, ``utk``)."""
    notes: tuple[str, ...] = ()
    """The identity trail, in plain words for display: candidates skipped and the one used."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Outcome)


def encode(outcome: Outcome | None) -> str | None:
    """The outcome as stored (JSON); None stays None."""
    return None if outcome is None else _encoder.encode(outcome).decode()


def decode(raw: str | bytes | None) -> Outcome | None:
    """An outcome as stored back into its type."""
    return None if raw is None else _decoder.decode(raw)


_FIXED = {
    Reason.MERGED: "merged into a later identify",
    Reason.REAUTHORIZED: "access token refreshed",
    Reason.REPLAYED: "replayed",
    Reason.ERASED: "erased on request",
    Reason.PURGED: "purged by operator",
    Reason.UNIDENTIFIED: "expired-unidentified",
}


def describe(outcome: Outcome | None) -> str | None:
    """The outcome in a line of plain words, for display (None: nothing to say)."""
    if outcome is None:
        return None
    reason = outcome.reason
    if reason in _FIXED:
        return _FIXED[reason]
    if reason in (Reason.DELIVERED, Reason.AWAITING_IDENTITY):
        return "; ".join(outcome.notes) or None
    if reason is Reason.PAUSED:
        return f"paused: {outcome.message}"
    if reason is Reason.TOO_OLD:
        return f"too old: {outcome.message or ''}"
    return outcome.message


# -- stores written before outcomes were typed --------------------------------------------------

_FIXED_TEXT = {text: reason for reason, text in _FIXED.items()}
_USED = "used "


def from_detail(state: str, detail: str | None) -> Outcome | None:
    """The outcome an item's old free-text ``detail`` stood for (store migrations only)."""
    if detail in _FIXED_TEXT:
        return Outcome(_FIXED_TEXT[detail])
    match state:
        case "delivered":
            return _identity(Reason.DELIVERED, detail)
        case "held":
            return _identity(Reason.AWAITING_IDENTITY, detail)
        case "dead":
            return _rejected(detail)
        case "dropped":
            return Outcome(Reason.POLICY, detail)
        case "expired":
            message = detail[len("too old: ") :] if detail else None
            return Outcome(Reason.TOO_OLD, message)
    if not detail:
        return None
    if detail.startswith("paused: "):
        return Outcome(Reason.PAUSED, detail[len("paused: ") :])
    return Outcome(Reason.RETRYING, detail)


def _identity(reason: Reason, detail: str | None) -> Outcome:
    notes = tuple(detail.split("; ")) if detail else ()
    used = next((n.split()[1] for n in notes if n.startswith(_USED) and " " in n[5:]), None)
    return Outcome(reason, identifier=used, notes=notes)


def _rejected(detail: str | None) -> Outcome:
    if detail and detail.startswith("{"):
        try:
            parsed: Any = msgspec.json.decode(detail)
        except msgspec.DecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return Outcome(
                Reason.REJECTED,
                _text(parsed.get("reason")) or detail,
                _text(parsed.get("category")),
                _text(parsed.get("correlationId")),
            )
    return Outcome(Reason.REJECTED, detail)


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
