"""Validate: what the client libraries send that the Segment spec leaves open."""

from __future__ import annotations

import msgspec

from forwarder.config import ServerSettings
from forwarder.pipeline.validate import Decoded, Validator


def test_empty_user_id_counts_as_none_in_a_batch_and_a_single_call() -> None:
    """RudderStack's SDKs send ``"userId": ""`` for visitors not yet identified."""
    validator = Validator(ServerSettings())
    page = {"type": "page", "userId": "", "anonymousId": "anon-1"}
    batch = validator.decode(msgspec.json.encode({"batch": [page]}), None)
    single = validator.decode(msgspec.json.encode(page), "page")

    for decoded in (batch, single):
        [valid] = decoded.valid
        assert (valid.message.user_id, valid.message.anonymous_id) == (None, "anon-1")
        assert "userId" not in valid.data


def test_empty_user_id_alone_does_not_identify_anyone() -> None:
    decoded = Validator(ServerSettings()).decode(b'{"userId": "", "event": "X"}', "track")
    assert decoded.rejected[0].reason == "userId or anonymousId is required"


_MIXED_BATCH = {
    "sentAt": "2026-01-02T03:04:05.000Z",
    "context": {"library": {"name": "analytics.js"}, "ip": "10.0.0.1"},
    "integrations": {"All": True},
    "writeKey": "wk",
    "batch": [
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"n": 1}},
        {"type": "page", "anonymousId": "a1", "context": {"ip": "10.0.0.2"}},
        {"type": "identify", "userId": "u2", "traits": {"email": "x@example.com"}},
        {"type": "track", "event": "No One"},
        {"type": "track", "userId": "u3", "event": "Old", "timestamp": "1900-01-01T00:00:00Z"},
        {"type": "screen", "anonymousId": "a2", "sentAt": "2026-01-02T03:04:06Z", "x": [1]},
    ],
}


def _outcome(validator: Validator, body: bytes) -> object:
    decoded = validator.decode(body, None)
    return (
        [(v.index, v.message, v.data) for v in decoded.valid],
        decoded.rejected,
        decoded.write_key,
        decoded.count,
        decoded.rejected_types,
    )


class _EventByEvent(Validator):
    """A validator that never reads a batch whole (as when some event is invalid)."""

    def _decode_whole(self, body: bytes) -> Decoded | None:
        return None


class _CountingWhole(Validator):
    """A validator that counts the batches it read whole."""

    wholes = 0

    def _decode_whole(self, body: bytes) -> Decoded | None:
        decoded = super()._decode_whole(body)
        self.wholes += decoded is not None
        return decoded


def test_a_batch_read_whole_gives_what_reading_it_event_by_event_gives() -> None:
    """A batch is read in two calls instead of two per event when it can be; else event by
    event: the events, refusals and envelope fields lent are the same either way.

    (The event-by-event side was once reached with a body one byte over ``max_event_bytes``;
    such a body is now read whole too, when every event fits: see the test below.)"""
    body = msgspec.json.encode(_MIXED_BATCH)
    whole = _outcome(Validator(ServerSettings(max_event_bytes=len(body))), body)
    by_event = _outcome(_EventByEvent(ServerSettings(max_event_bytes=len(body))), body)
    assert whole == by_event
    valid, rejected, write_key, count, _ = whole  # type: ignore[misc]
    assert [index for index, _, _ in valid] == [0, 1, 2, 5]
    assert [(r.index, r.path) for r in rejected] == [(3, "$.userId"), (4, "$.timestamp")]
    assert (write_key, count) == ("wk", 6)
    assert valid[1][2]["context"] == {"library": {"name": "analytics.js"}, "ip": "10.0.0.2"}
    assert valid[0][2]["sentAt"] == "2026-01-02T03:04:05.000Z"
    assert valid[3][2]["sentAt"] == "2026-01-02T03:04:06Z"


def test_an_invalid_event_in_a_small_batch_is_refused_alone() -> None:
    events = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(3)]
    events[1]["properties"] = "not an object"
    decoded = Validator(ServerSettings()).decode(msgspec.json.encode({"batch": events}), None)
    assert [v.index for v in decoded.valid] == [0, 2]
    [refused] = decoded.rejected
    assert (refused.index, refused.path) == (1, "$.properties")


def test_a_batch_over_max_event_bytes_is_read_whole_when_every_event_fits() -> None:
    """Batches of real SDK events are mostly bigger than one event may be: their events' sizes
    are checked from the raw slices, and the batch is still read in two calls."""
    events = [{"type": "track", "userId": f"u{i}", "event": "E" * 50} for i in range(10)]
    body = msgspec.json.encode({"batch": events})
    validator = _CountingWhole(ServerSettings(max_event_bytes=len(body) // 2))
    decoded = validator.decode(body, None)
    assert (len(decoded.valid), validator.wholes) == (10, 1)


def test_an_event_over_max_event_bytes_in_a_batch_is_refused_alone() -> None:
    events = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(3)]
    events[1]["properties"] = {"text": "x" * 200}
    validator = _CountingWhole(ServerSettings(max_event_bytes=150))
    decoded = validator.decode(msgspec.json.encode({"batch": events}), None)
    assert [v.index for v in decoded.valid] == [0, 2]
    [refused] = decoded.rejected
    assert (refused.index, refused.path, validator.wholes) == (1, "$", 0)
    assert refused.reason.endswith("bytes; the limit is 150")
