"""Typed outcomes: the store scripts' fixed outcomes decode, and each reads back in plain words."""

from __future__ import annotations

from importlib.resources import files

from forwarder.storage.outcomes import Outcome, Reason, decode, describe, encode


def test_outcomes_the_redis_scripts_write_are_the_encoded_outcomes() -> None:
    lua = files("forwarder.storage.redis").joinpath("lua")
    requeue = lua.joinpath("requeue.lua").read_text(encoding="utf-8")
    erase = lua.joinpath("erase_events.lua").read_text(encoding="utf-8")
    assert f"'{encode(Outcome(Reason.REPLAYED))}'" in requeue
    assert f"'{encode(Outcome(Reason.ERASED))}'" in erase


def test_an_outcome_survives_its_stored_form() -> None:
    outcome = Outcome(Reason.REJECTED, "400: bad", "VALIDATION_ERROR", "c-1")
    assert decode(encode(outcome)) == outcome
    assert (encode(None), decode(None)) == (None, None)


def test_describe_says_what_the_debugger_shows() -> None:
    delivered = Outcome(
        Reason.DELIVERED, identifier="email", notes=("used email from traits.email",)
    )
    assert [
        describe(delivered),
        describe(Outcome(Reason.PAUSED, "403: forbidden")),
        describe(Outcome(Reason.TOO_OLD, "timeout")),
        describe(Outcome(Reason.PURGED)),
        describe(Outcome(Reason.RETRYING)),
    ] == [
        "used email from traits.email",
        "paused: 403: forbidden",
        "too old: timeout",
        "purged by operator",
        None,
    ]
