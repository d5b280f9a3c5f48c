"""Validate: request body -> Segment messages, each refused alone with index, path and reason."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec

from forwarder.config import ServerSettings
from forwarder.errors import MalformedRequestError, PayloadTooLargeError
from forwarder.events.messages import MESSAGE_TYPES, Message, Rejected
from forwarder.tallies import event_type

_MISSING = re.compile(r"Object missing required field `([^`]+)`")
_TOO_DEEP = "body is not valid JSON: nested too deeply"


class _RawBatch(msgspec.Struct, rename="camel"):
    batch: list[msgspec.Raw]
    sent_at: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    write_key: str | None = None


class _TypedBatch(msgspec.Struct, rename="camel"):
    """A batch whose every event is valid, decoded in one call (``Validator.decode``)."""

    batch: list[Message]
    sent_at: str | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    write_key: str | None = None


class _DictBatch(msgspec.Struct):
    batch: list[dict[str, Any]]


class Valid(msgspec.Struct, gc=False):
    """An event that passed validation: the typed message and the dict as received.

    Not tracked by the garbage collector (``gc=False``): one is made per event and lives as
    long as its request, and it holds only a message and a dict, which never refer back to it.
    """

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
    rejected_types: dict[int, str] = {}
    """Event type (``event_type``) of refused events whose type could be read, by index."""


class _Shared:
    """What a batch's envelope lends to each of its events."""

    def __init__(self, raw: _RawBatch | _TypedBatch) -> None:
        self.containers = [
            (key, value)
            for key, value in (("context", raw.context), ("integrations", raw.integrations))
            if value
        ]
        self.sent_at_text = raw.sent_at
        self.sent_at: datetime | None = None
        if raw.sent_at is not None:
            try:
                self.sent_at = msgspec.convert(raw.sent_at, datetime)
            except msgspec.ValidationError as exc:
                raise MalformedRequestError(
                    f"{exc} at $.sentAt".replace(" - at `$`", ""), field="$.sentAt"
                ) from exc


_EARLIEST, _LATEST = 1970, 2200
_TIMES = (("timestamp", "$.timestamp"), ("original_timestamp", "$.originalTimestamp"),
          ("sent_at", "$.sentAt"))  # fmt: skip


def _identified(event: Valid) -> Valid | Rejected:
    message = event.message
    if message.user_id is None and message.anonymous_id is None:
        return Rejected(event.index, "$.userId", "userId or anonymousId is required")
    for attr, path in _TIMES:
        moment: datetime | None = getattr(message, attr)
        if moment is not None and not _EARLIEST <= moment.year <= _LATEST:
            reason = f"year {moment.year} is outside {_EARLIEST}-{_LATEST}"
            return Rejected(event.index, path, reason)
    return event


def _drop_empty_user_id(data: dict[str, Any]) -> bool:
    """Treat ``"userId": ""`` as no userId (RudderStack's SDKs send it for anonymous visitors)."""
    if data.get("userId") == "":
        del data["userId"]
        return True
    return False


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
        self._typed_batch = msgspec.json.Decoder(_TypedBatch)
        self._dict_batch = msgspec.json.Decoder(_DictBatch)
        self._any = msgspec.json.Decoder()
        # Typed decoding straight from bytes is ~15x cheaper than converting the dict.
        self._message = msgspec.json.Decoder(Message)
        self._typed = {name: msgspec.json.Decoder(cls) for name, cls in MESSAGE_TYPES.items()}

    def decode(self, body: bytes, call_type: str | None) -> Decoded:
        """Read a single call (``call_type`` from the path) or a batch (``call_type`` None).

        Raises:
            MalformedRequestError: the body is not JSON, or not the expected shape.
            PayloadTooLargeError: more events than ``server.max_batch_events``.
        """
        if call_type is not None:
            return self._decode_single(body, call_type)
        small = len(body) <= self._max_event  # then no event can be over the limit
        whole = self._decode_whole(body) if small else None
        if whole is not None:
            return whole
        raw = self._read_raw(body)
        if not small and all(len(event) <= self._max_event for event in raw.batch):
            # A body over ``max_event_bytes`` (most batches of real SDK events are) whose
            # events all fit: read whole as well, two calls instead of two per event.
            whole = self._decode_whole(body)
            if whole is not None:
                return whole
        shared = _Shared(raw)
        valid: list[Valid] = []
        rejected: list[Rejected] = []
        for index, event in enumerate(raw.batch):
            outcome = self._validate_raw(index, event, shared)
            if isinstance(outcome, Valid):
                valid.append(outcome)
            else:
                rejected.append(outcome)
        types = {r.index: t for r in rejected if (t := self._type_of(raw.batch[r.index]))}
        return Decoded(valid, rejected, raw.write_key, len(raw.batch), types)

    def _read_raw(self, body: bytes) -> _RawBatch:
        """The batch's envelope and its events as raw slices (the checks of ``decode``)."""
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
        return raw

    def _decode_whole(self, body: bytes) -> Decoded | None:
        """A batch read in two calls (typed, and as dicts) instead of two per event; None
        when that cannot be done (some event is invalid, the envelope is wrong), and the batch
        is read event by event, which refuses each bad one alone.

        The caller has made sure that no event is over ``max_event_bytes``; none has an empty
        userId (to be dropped before its message is typed): ``Id`` refuses it.
        """
        try:
            typed = self._typed_batch.decode(body)
            datas = self._dict_batch.decode(body).batch
        except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
            return None
        if len(datas) > self._max_events:
            return None  # refused by the event-by-event path, with its reason
        shared = _Shared(typed)
        lends = bool(shared.containers) or shared.sent_at is not None
        valid: list[Valid] = []
        rejected: list[Rejected] = []
        shares = _OBJECT_FIELDS
        # Once per event of every batch: the object fields shared (``_OBJECT_FIELDS``), and an
        # event without times (no year to check) and with an id valid as it is (``_identified``).
        for index, (message, data) in enumerate(zip(typed.batch, datas, strict=True)):
            for name, key in shares[type(message)]:
                own = data.get(key)
                if type(own) is dict:
                    setattr(message, name, own)
            if lends:
                outcome = _lend(index, message, data, shared)
            elif (message.user_id is not None or message.anonymous_id is not None) and (
                message.timestamp is None
                and message.original_timestamp is None
                and message.sent_at is None
            ):
                valid.append(Valid(index, message, data))
                continue
            else:
                outcome = _identified(Valid(index, message, data))
            if isinstance(outcome, Valid):
                valid.append(outcome)
            else:
                rejected.append(outcome)
        types = {r.index: t for r in rejected if (t := self._type_of(datas[r.index]))}
        return Decoded(valid, rejected, typed.write_key, len(datas), types)

    def _type_of(self, raw: msgspec.Raw | dict[str, Any]) -> str | None:
        """A refused event's type for the quality counts (decoded again: refusals are rare)."""
        try:
            data = self._any.decode(raw) if isinstance(raw, msgspec.Raw) else raw
        except (msgspec.DecodeError, RecursionError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            return None
        name = data.get("event") or data.get("name")
        return event_type(data["type"], name if isinstance(name, str) else None)

    def _decode_single(self, body: bytes, call_type: str) -> Decoded:
        data = self._decode_object(body)
        key = data.get("writeKey")
        key = key if isinstance(key, str) else None
        if len(body) > self._max_event:
            reason = f"event is {len(body)} bytes; the limit is {self._max_event}"
            return Decoded([], [Rejected(0, "$", reason)], key, 1)
        try:
            if _drop_empty_user_id(data):
                message: Message = msgspec.convert({**data, "type": call_type}, Message)
            elif data.get("type", call_type) == call_type:
                message = self._typed[call_type].decode(body)
            else:  # the path decides the type, as Segment does
                message = msgspec.convert({**data, "type": call_type}, Message)
        except msgspec.ValidationError as exc:
            types = {0: t} if (t := self._type_of({**data, "type": call_type})) else {}
            return Decoded([], [Rejected(0, *_path_and_reason(exc))], key, 1, types)
        data["type"] = call_type
        outcome = _identified(Valid(0, message, data))
        if isinstance(outcome, Rejected):
            return Decoded([], [outcome], key, 1, {0: str(self._type_of(data))})
        return Decoded([outcome], [], key, 1)

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

    def _validate_raw(self, index: int, raw: msgspec.Raw, shared: _Shared) -> Valid | Rejected:
        if len(raw) > self._max_event:
            return Rejected(
                index, "$", f"event is {len(raw)} bytes; the limit is {self._max_event}"
            )
        try:
            data = self._any.decode(raw)
            if not isinstance(data, dict):
                return Rejected(index, "$", "Expected `object`")
            if _drop_empty_user_id(data):
                message: Message = msgspec.convert(data, Message)
            else:
                message = self._message.decode(raw)
        except msgspec.ValidationError as exc:
            return Rejected(index, *_path_and_reason(exc))
        except (msgspec.DecodeError, RecursionError) as exc:  # the batch decode checked syntax
            return Rejected(index, "$", f"not valid JSON: {exc or _TOO_DEEP}")
        return _lend(index, message, data, shared)


_OBJECT_FIELDS = {
    cls: tuple(
        (field.name, field.encode_name)
        for field in msgspec.structs.fields(cls)
        if field.type == dict[str, Any]
    )
    for cls in MESSAGE_TYPES.values()
}
"""Per message type, its free-form object fields (``context``, ``properties``...): (attribute,
JSON name). ``Validator._decode_whole`` points a message's object fields at the same objects of
its dict, which the batch's second decode built equal: the typed copies are freed at once. Every
event of a request lives until its request is answered, and the garbage collector walks (and
promotes) every container alive whenever a few hundred new ones are: these were a third of
them."""


def _lend(index: int, message: Message, data: dict[str, Any], shared: _Shared) -> Valid | Rejected:
    """One decoded event with what its batch's envelope lends it, if it is identified."""
    for key, base in shared.containers:
        own = data.get(key)
        if own is None or isinstance(own, dict):
            data[key] = {**base, **(own or {})}
    if shared.sent_at is not None and message.sent_at is None:
        data["sentAt"] = shared.sent_at_text
        message = msgspec.structs.replace(message, sent_at=shared.sent_at)
    return _identified(Valid(index, message, data))
