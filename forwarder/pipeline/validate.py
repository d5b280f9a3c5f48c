"""Validate: request body -> Segment messages, each refused alone with index, path and reason."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from forwarder.config import ServerSettings
from forwarder.errors import MalformedRequestError, PayloadTooLargeError
from forwarder.events.messages import Message, Rejected

_MISSING = re.compile(r"Object missing required field `([^`]+)`")
_CONTAINERS = ("context", "integrations")
_TOO_DEEP = "body is not valid JSON: nested too deeply"


class _RawBatch(msgspec.Struct, rename="camel"):
    batch: list[msgspec.Raw]
    sent_at: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    write_key: str | None = None


class Valid(msgspec.Struct):
    """An event that passed validation: the typed message and the dict as received."""

    index: int
    message: Message
    data: dict[str, Any]
    """Every field as received (unknown ones kept), plus what later stages derive."""


class Decoded(msgspec.Struct):
    """The outcome of reading one request."""

    valid: list[Valid]
    rejected: list[Rejected]
    write_key: str | None
    """A ``writeKey`` found in the body (browsers), if any."""
    count: int
    """How many events the request carried."""


def _path_and_reason(exc: msgspec.ValidationError) -> tuple[str, str]:
    text = str(exc)
    reason, sep, where = text.partition(" - at `")
    path = where.rstrip("`") if sep else "$"
    missing = _MISSING.fullmatch(reason)
    if missing:
        path = f"{path}.{missing.group(1)}"
        reason = "required field is missing"
    return path, reason


class Validator:
    """Decides the limits and builds the decoders once; ``decode`` runs per request."""

    def __init__(self, settings: ServerSettings) -> None:
        self._max_event = settings.max_event_bytes
        self._max_events = settings.max_batch_events
        self._batch = msgspec.json.Decoder(_RawBatch)
        self._any = msgspec.json.Decoder()

    def decode(self, body: bytes, call_type: str | None) -> Decoded:
        """Read a single call (``call_type`` from the path) or a batch (``call_type`` None).

        Raises:
            MalformedRequestError: the body is not JSON, or not the expected shape.
            PayloadTooLargeError: more events than ``server.max_batch_events``.
        """
        if call_type is not None:
            data = self._decode_object(body)
            data["type"] = call_type
            valid, rejected = self._validate_all([(0, data, len(body))], {})
            key = data.get("writeKey")
            return Decoded(valid, rejected, key if isinstance(key, str) else None, 1)
        try:
            raw = self._batch.decode(body)
        except msgspec.ValidationError as exc:
            path, reason = _path_and_reason(exc)
            raise MalformedRequestError(f"{reason} at {path}", field=path) from exc
        except msgspec.DecodeError as exc:
            raise MalformedRequestError(f"body is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise MalformedRequestError(_TOO_DEEP) from exc
        if len(raw.batch) > self._max_events:
            raise PayloadTooLargeError(
                f"batch has {len(raw.batch)} events; the limit is {self._max_events}",
                field="server.max_batch_events",
            )
        shared: dict[str, Any] = {
            "context": raw.context or {},
            "integrations": raw.integrations or {},
        }
        if raw.sent_at is not None:
            shared["sentAt"] = raw.sent_at
        items: list[tuple[int, dict[str, Any] | str, int]] = []
        for i, event in enumerate(raw.batch):
            try:
                obj = self._any.decode(event)
            except (msgspec.DecodeError, RecursionError) as exc:
                items.append((i, f"not valid JSON: {exc or _TOO_DEEP}", len(event)))
                continue
            items.append((i, obj if isinstance(obj, dict) else "Expected `object`", len(event)))
        valid, rejected = self._validate_all(items, shared)
        return Decoded(valid, rejected, raw.write_key, len(raw.batch))

    def _decode_object(self, body: bytes) -> dict[str, Any]:
        try:
            data = self._any.decode(body)
        except msgspec.DecodeError as exc:
            raise MalformedRequestError(f"body is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise MalformedRequestError(_TOO_DEEP) from exc
        if not isinstance(data, dict):
            raise MalformedRequestError(f"body must be a JSON object, got {type(data).__name__}")
        return data

    def _validate_all(
        self, items: list[tuple[int, Any, int]], shared: dict[str, Any]
    ) -> tuple[list[Valid], list[Rejected]]:
        valid: list[Valid] = []
        rejected: list[Rejected] = []
        for index, data, size in items:
            if size > self._max_event:
                rejected.append(
                    Rejected(index, "$", f"event is {size} bytes; the limit is {self._max_event}")
                )
            elif isinstance(data, str):
                rejected.append(Rejected(index, "$", data))
            else:
                outcome = self._validate_one(index, data, shared)
                if isinstance(outcome, Valid):
                    valid.append(outcome)
                else:
                    rejected.append(outcome)
        return valid, rejected

    def _validate_one(
        self, index: int, data: dict[str, Any], shared: dict[str, Any]
    ) -> Valid | Rejected:
        for key in _CONTAINERS:
            base = shared.get(key)
            if base and isinstance(data.get(key, {}), dict):
                data[key] = {**base, **data.get(key, {})}
        if "sentAt" in shared and "sentAt" not in data:
            data["sentAt"] = shared["sentAt"]
        try:
            message: Message = msgspec.convert(data, Message)
        except msgspec.ValidationError as exc:
            path, reason = _path_and_reason(exc)
            return Rejected(index, path, reason)
        if message.user_id is None and message.anonymous_id is None:
            return Rejected(index, "$.userId", "userId or anonymousId is required")
        return Valid(index, message, data)
