"""The response classifier: one row per rule (docs/hubspot-contract.md, "Errors and retries")."""

from __future__ import annotations

import json

import msgspec
import pytest

from forwarder.delivery.retry import (
    UNSUPPORTED_VERSION,
    VALIDATION_RULE,
    AlreadyDone,
    Done,
    GiveUp,
    Outcome,
    Pause,
    RefreshAuth,
    Retry,
    RetryPartial,
    Split,
    backoff_s,
    classify,
)
from forwarder.errors import (
    HubSpotAuthError,
    HubSpotPermanentError,
    HubSpotRetryableError,
    HubSpotTransportError,
)
from forwarder.hubspot.models import ErrorBody, RateLimitHeaders
from forwarder.hubspot.responses import HubSpotResponse, error_for


def reply(
    status: int,
    body: object = None,
    *,
    retry_after_s: float | None = None,
    rate_limit: RateLimitHeaders | None = None,
    auth_retried: bool = False,
) -> HubSpotResponse:
    raw = b"" if body is None else json.dumps(body).encode()
    error = None
    if status >= 400:
        fields = body if isinstance(body, dict) else {}
        error = ErrorBody(
            message=str(fields.get("message", "")),
            category=fields.get("category"),
            correlation_id=fields.get("correlationId"),
            policy_name=fields.get("policyName"),
            status=fields.get("status"),
        )
    return HubSpotResponse(
        status=status,
        body=raw,
        error=error,
        rate_limit=rate_limit,
        correlation_id=error.correlation_id if error else None,
        retry_after_s=retry_after_s,
        duration_ms=1.0,
        auth_retried=auth_retried,
    )


def half(*_: object) -> float:
    return 0.5


def run(result: HubSpotResponse | Exception, **kwargs: object) -> Outcome:
    options: dict[str, object] = {"batch_size": 1, "attempt": 1, "rand": half, **kwargs}
    return classify(result, **options)  # type: ignore[arg-type]


RESULTS = {"status": "COMPLETE", "results": [{"id": "1"}]}
LIMIT_10S = {"policyName": "TEN_SECONDLY_ROLLING", "message": "ten_secondly_rolling"}

TABLE: list[tuple[str, HubSpotResponse | Exception, dict[str, object], Outcome]] = [
    ("204 is done", reply(204), {}, Done()),
    ("200 with results is done", reply(200, RESULTS), {"expected_results": True}, Done()),
    (
        "empty success where results were expected is retried",
        reply(200, {"status": "COMPLETE", "results": []}),
        {"expected_results": True},
        Retry(0.5, "200 without results where results were expected", own=True),
    ),
    (
        "empty success keeps failing: dead-letter",
        reply(200, {"status": "COMPLETE", "results": []}),
        {"expected_results": True, "attempt": 3},
        GiveUp("200 without results where results were expected", None, "EMPTY_SUCCESS"),
    ),
    (
        "400 on a batch bisects",
        reply(400, {"message": "bad"}),
        {"batch_size": 8},
        Split("400: bad; bisecting 8 inputs"),
    ),
    (
        "400 on one input gives up with HubSpot's words",
        reply(400, {"message": "bad", "correlationId": "c1", "category": "VALIDATION_ERROR"}),
        {},
        GiveUp("400: bad", "c1", "VALIDATION_ERROR"),
    ),
    (
        "401 with OAuth refreshes",
        reply(401, {"message": "expired"}),
        {"oauth": True},
        RefreshAuth(),
    ),
    (
        "401 after a refresh pauses",
        reply(401, {"message": "x"}, auth_retried=True),
        {"oauth": True},
        Pause("401: refreshed OAuth token refused: x", "INVALID_AUTHENTICATION"),
    ),
    (
        "401 with a private token pauses",
        reply(401, {"message": "x", "category": "INVALID_AUTHENTICATION"}),
        {},
        Pause("401: private app token refused: x", "INVALID_AUTHENTICATION"),
    ),
    (
        "403 missing scopes pauses",
        reply(403, {"message": "scopes", "category": "MISSING_SCOPES"}),
        {},
        Pause("403: scopes", "MISSING_SCOPES"),
    ),
    ("404 gives up", reply(404, {"message": "gone"}), {}, GiveUp("404: gone", None, None)),
    ("409 on idempotency key: done", reply(409), {"conflict_is_duplicate": True}, AlreadyDone()),
    (
        "409 on a batch bisects",
        reply(409, {"message": "c"}),
        {"batch_size": 2},
        Split("409: c; bisecting 2 inputs"),
    ),
    ("423 waits 2 s", reply(423), {}, Retry(2.0, "423 locked", own=True)),
    (
        "429 ten-secondly waits for the window from the headers",
        reply(429, LIMIT_10S, rate_limit=RateLimitHeaders(interval_ms=4000)),
        {},
        Retry(4.0, "rolling window limit reached", "TEN_SECONDLY_ROLLING", until_room=True),
    ),
    (
        "429 ten-secondly without headers waits 10 s",
        reply(429, LIMIT_10S),
        {},
        Retry(10.0, "rolling window limit reached", "TEN_SECONDLY_ROLLING", until_room=True),
    ),
    (
        "429 secondly waits 1 s",
        reply(429, {"policyName": "SECONDLY"}),
        {},
        Retry(1.0, "secondly limit reached", "SECONDLY"),
    ),
    (
        "429 search message without policy waits 1 s",
        reply(429, {"message": "You have reached your secondly limit."}),
        {},
        Retry(1.0, "secondly limit reached", "SECONDLY"),
    ),
    (
        "429 daily waits until the reset",
        reply(429, {"policyName": "DAILY"}, retry_after_s=5),
        {"daily_reset_in_s": 7200.0},
        Retry(7200.0, "daily limit reached", "DAILY"),
    ),
    (
        "429 honours Retry-After",
        reply(429, LIMIT_10S, retry_after_s=3),
        {},
        Retry(3.0, "429 with Retry-After", "TEN_SECONDLY_ROLLING"),
    ),
    (
        "477 honours Retry-After",
        reply(477, retry_after_s=60),
        {},
        Retry(60.0, "477 migration in progress"),
    ),
    ("500 backs off", reply(500), {"attempt": 3}, Retry(2.0, "HubSpot answered 500")),
    ("524 backs off", reply(524), {}, Retry(0.5, "HubSpot answered 524")),
    ("timeout backs off", HubSpotTransportError("t", timeout=True), {}, Retry(0.5, "timeout")),
    ("connection error backs off", HubSpotTransportError("c"), {}, Retry(0.5, "connection error")),
    (
        "bad refresh token pauses",
        HubSpotAuthError("refused", status=400, category="BAD_REFRESH_TOKEN"),
        {},
        Pause("refused", "BAD_REFRESH_TOKEN"),
    ),
    ("retryable error backs off", HubSpotRetryableError("x", status=503), {}, Retry(0.5, "x")),
    (
        "permanent error gives up",
        HubSpotPermanentError("no", status=400, category="V", correlation_id="c"),
        {},
        GiveUp("no", "c", "V"),
    ),
]


@pytest.mark.parametrize(
    ("result", "kwargs", "expected"), [r[1:] for r in TABLE], ids=[r[0] for r in TABLE]
)
def test_classifier_rule(
    result: HubSpotResponse | Exception, kwargs: dict[str, object], expected: Outcome | None
) -> None:
    outcome = run(result, **kwargs)
    if expected is None:  # rows whose reason text is not the point
        assert isinstance(outcome, (Split, Retry))
    else:
        assert outcome == expected


def test_477_waits_the_retry_after_seconds() -> None:
    assert run(reply(477, retry_after_s=60)) == Retry(60.0, "477 migration in progress")


def test_400_on_batch_is_split() -> None:
    assert isinstance(run(reply(400, {"message": "bad"}), batch_size=8), Split)


def test_207_maps_errors_to_input_indexes() -> None:
    body = {
        "status": "COMPLETE",
        "results": [{"id": "1"}],
        "numErrors": 2,
        "errors": [
            {"category": "OBJECT_NOT_FOUND", "message": "gone", "context": {"ids": ["B@x.com"]}},
            {"category": "INTERNAL", "message": "later", "context": {"objectWriteTraceId": "t-3"}},
        ],
    }
    outcome = run(reply(207, body), batch_size=4, input_keys=["a@x.com", "b@x.com", "c", "t-3"])
    assert isinstance(outcome, RetryPartial)
    assert (outcome.failed, outcome.dead) == ((3,), (1,))


def test_207_with_unmappable_error_retries_the_batch() -> None:
    body = {"results": [], "errors": [{"category": "X", "message": "who?"}]}
    assert isinstance(run(reply(207, body), batch_size=2, input_keys=["a", "b"]), Retry)


def test_backoff_has_full_jitter_and_a_cap() -> None:
    assert backoff_s(1, rand=lambda: 0.999) < 1.0
    assert backoff_s(4, rand=lambda: 1.0) == 8.0
    assert backoff_s(50, rand=lambda: 1.0) == 300.0
    assert backoff_s(3, rand=lambda: 0.0) == 0.0


def test_repeated_uuid_refusal_of_a_single_input_counts_as_delivered() -> None:
    from forwarder.delivery.retry import AlreadyDone, classify
    from forwarder.hubspot.models import ErrorBody, ErrorDetail
    from forwarder.hubspot.responses import HubSpotResponse

    error = ErrorBody(
        message="Invalid input",
        category="VALIDATION_ERROR",
        errors=[ErrorDetail(message="uuid 1 already used", code="DUPLICATE_UUID")],
    )
    response = HubSpotResponse(
        status=400,
        body=b"{}",
        error=error,
        rate_limit=None,
        correlation_id="c",
        retry_after_s=None,
        duration_ms=1.0,
    )
    assert classify(response, batch_size=1, attempt=1) == AlreadyDone()


# -- API versions: dated semantics ------------------------------------------------------------


def _rule_refusal() -> HubSpotResponse:
    body = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "The property values provided are invalid",
        "errors": [
            {
                "code": "MISSING_REQUIRED_PROPERTY",
                "message": "A value for firstname must be provided",
                "context": {"propertyName": ["firstname"]},
            }
        ],
    }
    raw = json.dumps(body).encode()
    return HubSpotResponse(
        status=400,
        body=raw,
        error=msgspec.json.decode(raw, type=ErrorBody),
        rate_limit=None,
        correlation_id="c9",
        retry_after_s=None,
        duration_ms=1.0,
    )


def test_write_refused_by_validation_rules_gives_up_with_its_own_category() -> None:
    outcome = classify(_rule_refusal(), batch_size=1, attempt=1)
    reason = "400: refused by the account's validation rules: "
    reason += "MISSING_REQUIRED_PROPERTY: A value for firstname must be provided"
    assert outcome == GiveUp(reason, "c9", VALIDATION_RULE)


def test_validation_rule_refusal_of_a_batch_is_bisected_first() -> None:
    assert isinstance(classify(_rule_refusal(), batch_size=4, attempt=1), Split)


def test_unsupported_api_version_pauses_rather_than_dead_letters() -> None:
    answer = reply(410, {"message": "API version v3 is unsupported"})
    outcome = classify(answer, batch_size=10, attempt=1)
    assert outcome == Pause("410: API version v3 is unsupported", UNSUPPORTED_VERSION)


def test_conflict_on_an_all_or_nothing_batch_is_bisected_not_taken_as_done() -> None:
    outcome = classify(
        reply(409, {"message": "c"}), batch_size=3, attempt=1, conflict_is_duplicate=True
    )
    assert outcome == Split("409: c; bisecting 3 inputs")


@pytest.mark.parametrize("status", range(400, 600))
def test_the_raised_error_and_the_classifier_agree_on_what_a_retry_can_cure(status: int) -> None:
    """A failure read through ``expect_body`` and one classified by a worker get one verdict."""
    response = reply(status, {"message": "no"})
    raised_retryable = isinstance(error_for(response), HubSpotRetryableError)
    assert raised_retryable == isinstance(run(response), Retry)
