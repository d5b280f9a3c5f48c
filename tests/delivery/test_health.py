"""The destination's circuit breaker: closed -> open -> half-open (one probe) -> closed."""

from __future__ import annotations

import pytest

from forwarder.clock import ManualClock
from forwarder.delivery.health import BreakerState, DestinationHealth


def breaker(clock: ManualClock, rand: float = 1.0) -> DestinationHealth:
    return DestinationHealth(clock, base_s=1.0, cap_s=8.0, rand=lambda: rand - 1e-9)


def test_a_failure_opens_the_breaker_for_a_jittered_backoff() -> None:
    clock = ManualClock()
    health = breaker(clock, rand=0.5)
    ticket = health.ticket()
    assert ticket is not None
    until = health.failed(ticket)
    assert health.state is BreakerState.OPEN
    assert until - clock.monotonic() == pytest.approx(0.5)  # full jitter: rand * 1 s
    assert health.ticket() is None
    assert health.wait_s() == pytest.approx(0.5)


def test_consecutive_failures_double_the_ceiling_up_to_the_cap() -> None:
    clock = ManualClock()
    health = breaker(clock)
    waits = []
    for _ in range(6):
        clock.advance(health.wait_s())
        ticket = health.ticket()
        assert ticket is not None
        assert ticket.probe == (health.failures > 0)
        waits.append(round(health.failed(ticket) - clock.monotonic(), 6))
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_requests_in_flight_when_it_opened_do_not_lengthen_the_wait() -> None:
    clock = ManualClock()
    health = breaker(clock)
    tickets = [health.ticket() for _ in range(4)]  # four batches out at once
    first = health.failed(tickets[0])  # type: ignore[arg-type]
    rest = [health.failed(t) for t in tickets[1:]]  # type: ignore[arg-type]
    assert rest == [first] * 3
    assert health.failures == 1


def test_half_open_lets_one_probe_through_and_its_success_closes_the_breaker() -> None:
    clock = ManualClock()
    health = breaker(clock)
    health.failed(health.ticket())  # type: ignore[arg-type]
    clock.advance(1.0)
    probe = health.ticket()
    assert probe is not None
    assert probe.probe
    assert health.state is BreakerState.HALF_OPEN
    assert health.ticket() is None  # the others wait for the probe's answer
    assert health.wait_s() > 0
    assert health.succeeded() is True
    assert (health.state, health.failures, health.wait_s()) == (BreakerState.CLOSED, 0, 0.0)
    assert health.succeeded() is False


def test_failed_probe_reopens_for_longer() -> None:
    clock = ManualClock()
    health = breaker(clock)
    health.failed(health.ticket())  # type: ignore[arg-type]
    clock.advance(1.0)
    probe = health.ticket()
    assert probe is not None
    assert health.failed(probe) - clock.monotonic() == pytest.approx(2.0)
    assert health.state is BreakerState.OPEN


def test_a_floor_from_hubspot_is_respected() -> None:
    clock = ManualClock()
    health = breaker(clock, rand=0.1)
    assert health.failed(health.ticket(), floor_s=5.0) == pytest.approx(5.0)  # type: ignore[arg-type]


def test_an_unanswered_probe_stops_blocking_after_its_timeout() -> None:
    clock = ManualClock()
    health = DestinationHealth(clock, base_s=1.0, cap_s=1.0, probe_timeout_s=3.0)
    health.failed(health.ticket())  # type: ignore[arg-type]
    clock.advance(1.0)
    assert health.ticket() is not None
    clock.advance(3.5)
    assert health.ticket() is not None
