"""The alert rules and the fire / repeat / resolve cycle on snapshots (no I/O but the sender's
own loopback receiver)."""

from __future__ import annotations

import asyncio

import msgspec

from forwarder.alerts.monitor import Receiver, hubspot_requests
from forwarder.alerts.rules import Requests, Snapshot, TypeScore, evaluate
from forwarder.alerts.webhook import QUEUE_MAX, WebhookSender, payload, scrubbed
from forwarder.config import AlertRules, AlertSettings, Secret
from forwarder.telemetry import Metrics
from tests.alerts.receiver import webhook_receiver

RULES = AlertRules()
PAUSED = {"main/conversions": "MISSING_SCOPES: needs analytics.behavioral_events.send"}


def keys(now: Snapshot, then: Snapshot | None = None, rules: AlertRules = RULES) -> list[str]:
    return [c.key for c in evaluate(now, then or Snapshot(at=0.0), rules)]


def test_a_quiet_forwarder_raises_nothing() -> None:
    assert keys(Snapshot(at=600.0, quotas={"main": (10, 45)})) == []


def test_429_share_above_the_threshold_fires_with_enough_requests() -> None:
    then = Snapshot(at=0.0, requests=Requests(100, 0, 0))
    now = Snapshot(at=600.0, requests=Requests(200, 6, 1))
    assert keys(now, then) == ["throttled_share"]
    few = Snapshot(at=600.0, requests=Requests(110, 6, 0))  # 10 requests: too few to judge
    assert keys(few, then) == []


def test_error_share_counts_5xx_and_failed_connections() -> None:
    metrics = Metrics()
    for status, n in (("204", 6), ("429", 1), ("503", 2), ("0", 1)):
        metrics.requests_to_hubspot.labels("/events/v3/send/batch", status).inc(n)
    totals = hubspot_requests(metrics.requests_to_hubspot)
    assert totals == Requests(total=10, throttled=1, failed=3)
    rules = msgspec.structs.replace(RULES, min_requests=10)
    assert keys(Snapshot(at=60.0, requests=totals), rules=rules) == [
        "throttled_share",
        "error_share",
    ]


def test_latency_score_drop_drift_and_storage_each_fire_their_own_alert() -> None:
    now = Snapshot(
        at=600.0,
        latency_p95_ms=1_800_000,
        scores={"Purchase": TypeScore(hour=5.0, day=8.5, sent_in_hour=40)},
        drift=3,
        storage_error="storage failed: disk I/O error",
    )
    assert keys(now) == ["storage", "latency", "score:Purchase", "conservation"]


def test_a_score_drop_on_a_handful_of_events_is_not_judged() -> None:
    now = Snapshot(at=1.0, scores={"Purchase": TypeScore(hour=2.0, day=9.0, sent_in_hour=3)})
    assert keys(now) == []


def test_a_threshold_of_zero_turns_its_rule_off() -> None:
    rules = msgspec.structs.replace(RULES, quota_share=0.0, paused=False)
    assert keys(Snapshot(at=1.0, paused=PAUSED, quotas={"main": (45, 45)}), rules=rules) == []


class _Collect(WebhookSender):
    def __init__(self) -> None:
        super().__init__(AlertSettings(webhook_url=Secret("http://127.0.0.1:9/x")), [])
        self.sent: list[dict[str, object]] = []

    def submit(self, body: dict[str, object]) -> None:
        self.sent.append(body)


async def test_a_condition_fires_once_repeats_after_the_cooldown_and_then_resolves() -> None:
    sender = _Collect()
    receiver = Receiver(AlertSettings(webhook_url=Secret("http://x/"), cooldown_s=100), sender)
    start = Snapshot(at=0.0)

    steps = [
        receiver.step(Snapshot(at=t, paused=PAUSED if paused else {}), start)
        for t, paused in ((0.0, True), (50.0, True), (99.0, True), (100.0, True), (130.0, False))
    ]

    assert [[status for status, _ in s] for s in steps] == [
        ["firing"],
        [],
        [],
        ["firing"],
        ["resolved"],
    ]
    resolved = sender.sent[-1]["alert"]
    assert isinstance(resolved, dict)
    assert (resolved["status"], resolved["since"]) == ("resolved", "1970-01-01T00:00:00Z")
    await sender.aclose()


def test_every_configured_secret_is_scrubbed_from_the_body() -> None:
    condition = evaluate(Snapshot(at=1.0, paused={"main/conversions": "token pat-na1-s3cret"}),
                         Snapshot(at=0.0), RULES)[0]  # fmt: skip
    body = scrubbed(payload("firing", condition, at=1.0), ["pat-na1-s3cret"])
    assert b"pat-na1-s3cret" not in body
    assert b"token ***" in body


async def test_delivery_is_retried_until_the_receiver_takes_it() -> None:
    with webhook_receiver() as hook:
        hook.fail_next = 2
        settings = AlertSettings(webhook_url=Secret(hook.url), retries=3)
        sender = WebhookSender(settings, [], backoff_s=0.01)
        ok = await sender.deliver(b'{"text": "hi", "alert": {"status": "test", "rule": "t"}}')
        await sender.aclose()
    assert ok
    assert (hook.attempts, len(hook.bodies)) == (3, 1)


async def test_submitting_never_waits_even_when_nothing_delivers() -> None:
    """The sender's task is not running (a dead receiver): submit stays instant and bounded."""
    sender = WebhookSender(AlertSettings(webhook_url=Secret("http://127.0.0.1:9/")), [])
    condition = evaluate(Snapshot(at=1.0, paused=PAUSED), Snapshot(at=0.0), RULES)[0]
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(QUEUE_MAX + 50):
        sender.submit(payload("firing", condition, at=1.0))
    assert loop.time() - started < 1.0
    assert sender._queue.qsize() == QUEUE_MAX
    await sender.aclose()


async def test_a_refused_message_is_not_retried() -> None:
    with webhook_receiver() as hook:
        hook.fail_next, hook.fail_status = 5, 400
        settings = AlertSettings(webhook_url=Secret(hook.url), retries=5)
        sender = WebhookSender(settings, [], backoff_s=0.01)
        ok = await sender.deliver(b"{}")
        await sender.aclose()
    assert not ok
    assert hook.attempts == 1
