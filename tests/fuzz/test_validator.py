"""Property-based fuzzing of the ingest decoder: it never raises anything but the documented
``ProducerError`` subclasses, and every refused event carries an index, a JSON path and a reason."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwarder.config import ServerSettings
from forwarder.errors import MalformedRequestError, PayloadTooLargeError
from forwarder.pipeline.validate import Validator

VALIDATOR = Validator(ServerSettings(max_event_bytes=2_000, max_batch_events=20))
CALLS = [None, "track", "identify", "page", "screen", "group", "alias"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
KEYS = [
    "type",
    "userId",
    "anonymousId",
    "event",
    "messageId",
    "timestamp",
    "sentAt",
    "properties",
    "traits",
    "context",
    "groupId",
    "previousId",
    "name",
    "integrations",
]
events = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)
bodies = (
    events.map(lambda e: json.dumps(e).encode())
    | st.dictionaries(
        st.sampled_from(["batch", "sentAt", "context", "writeKey"]),
        st.lists(events | json_values, max_size=25) | json_values,
        max_size=4,
    ).map(lambda b: json.dumps(b).encode())
    | st.binary(max_size=200)
)


def _decode(body: bytes, call: str | None) -> Any:
    try:
        return VALIDATOR.decode(body, call)
    except (MalformedRequestError, PayloadTooLargeError) as exc:
        reason = exc.reason
    assert reason
    return None


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, call=st.sampled_from(CALLS))
def test_decoder_raises_only_producer_errors_and_explains_every_rejection(
    body: bytes, call: str | None
) -> None:
    decoded = _decode(body, call)
    if decoded is None:
        return
    assert len(decoded.valid) + len(decoded.rejected) == decoded.count
    for rejected in decoded.rejected:
        assert 0 <= rejected.index < max(1, decoded.count)
        assert rejected.path.startswith("$")
        assert rejected.reason
    for valid in decoded.valid:
        assert valid.message.user_id is not None or valid.message.anonymous_id is not None


@settings(max_examples=40, deadline=None)
@given(
    prefix=st.binary(max_size=30),
    junk=st.sampled_from(
        [b"\x00", b"\xff\xfe", b"\xed\xa0\x80", b"[" * 5_000, b"1e999999", b"-" + b"9" * 5_000]
    ),
)
def test_hostile_bytes_are_refused_as_malformed(prefix: bytes, junk: bytes) -> None:
    for call in CALLS:
        # A body that ends in junk is never an event: the whole request is refused.
        assert _decode(prefix + junk, call) is None
        # Inside a batch the junk is refused too: the request as malformed, or the junk element
        # as a rejected event (whatever valid event the random prefix may spell stays valid).
        wrapped = _decode(b'{"batch":[' + prefix + junk + b"]}", call)
        assert wrapped is None or wrapped.rejected
