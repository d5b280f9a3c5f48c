"""Validate: what the client libraries send that the Segment spec leaves open."""

from __future__ import annotations

import msgspec

from forwarder.config import ServerSettings
from forwarder.pipeline.validate import Validator


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


def test_a_batch_read_whole_gives_what_reading_it_event_by_event_gives() -> None:
    """A batch no bigger than one event may be is read in two calls instead of two per event;
    a bigger one (whose events are each checked against the limit) event by event: the
    events, refusals and envelope fields lent are the same either way."""
    body = msgspec.json.encode(_MIXED_BATCH)
    whole = _outcome(Validator(ServerSettings(max_event_bytes=len(body))), body)
    by_event = _outcome(Validator(ServerSettings(max_event_bytes=len(body) - 1)), body)
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
