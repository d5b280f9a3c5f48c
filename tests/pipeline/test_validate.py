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
