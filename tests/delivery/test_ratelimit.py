"""The rolling-window limiter: never over the limit in any window, header correction, FIFO."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.clock import ManualClock
from forwarder.delivery.envelopes import Envelope, EnvelopeLimits, PortalEnvelopes
from forwarder.delivery.ratelimit import PACE_SHARE, SlidingWindowLimiter
from forwarder.hubspot.models import RateLimitHeaders
from forwarder.sandbox.limits import Limiter, Pattern, Refusal

WINDOW_S = 10.0


def busiest_window(times: list[tuple[float, int]], window_s: float) -> int:
    """The most acquisitions in any half-open window [t, t + window_s)."""
    return max(sum(n for u, n in times if t <= u < t + window_s - 1e-6) for t, _ in times)


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 20),
    steps=st.lists(
        st.tuples(st.floats(0, 6, allow_nan=False), st.integers(1, 5)), min_size=1, max_size=80
    ),
)
def test_no_rolling_window_ever_holds_more_than_limit(
    limit: int, steps: list[tuple[float, int]]
) -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(limit, WINDOW_S, clock)
    granted: list[tuple[float, int]] = []
    for gap, wanted in steps:
        n = min(wanted, limit)
        clock.advance(gap)
        while (wait := limiter.delay_s(n)) > 0:
            clock.advance(wait)
        limiter.record(n)
        granted.append((clock.monotonic(), n))
    assert busiest_window(granted, WINDOW_S) <= limit


def test_full_allowance_at_a_window_edge_does_not_double_up() -> None:
    """The token-bucket failure: a burst at the end of one window and another just after."""
    clock = ManualClock()
    limiter = SlidingWindowLimiter(10, WINDOW_S, clock)
    clock.advance(9.9)
    limiter.record(10)
    clock.advance(0.2)
    assert abs(limiter.delay_s() - 9.8) < 1e-9


def test_header_showing_other_spenders_slows_us_down_before_429() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(90, WINDOW_S, clock)
    for _ in range(10):
        limiter.record()
    assert limiter.delay_s() == 0.0
    limiter.observe(100, 15, 10_000)  # 85 spent, 10 of them ours: 75 by someone else
    assert limiter.counts() == (10, 75)
    for _ in range(5):
        limiter.record()
    assert limiter.delay_s() > 0.0  # 90 of 90 used although only 15 are ours


def test_header_in_line_with_our_log_changes_nothing() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(90, WINDOW_S, clock)
    for _ in range(10):
        limiter.record()
    limiter.observe(100, 90, 10_000)
    assert limiter.counts() == (10, 0)


def test_header_correction_reduces_throughput() -> None:
    async def granted_in(seconds: float, phantom_remaining: int | None) -> int:
        clock = ManualClock()
        limiter = SlidingWindowLimiter(50, WINDOW_S, clock)
        if phantom_remaining is not None:
            limiter.observe(100, phantom_remaining, 10_000)
        count = 0
        while clock.monotonic() < seconds:
            wait = limiter.delay_s()
            if wait > 0:
                clock.advance(wait)
                continue
            limiter.record()
            count += 1
        return count

    assert asyncio.run(granted_in(5.0, 70)) < asyncio.run(granted_in(5.0, None))


def test_phantoms_of_a_first_reading_are_spread_over_the_window_and_expire_with_it() -> None:
    """HubSpot's first reading says how many others spent, not when: one per tenth here."""
    clock = ManualClock()
    limiter = SlidingWindowLimiter(10, WINDOW_S, clock)
    limiter.observe(10, 0, 10_000)
    assert limiter.delay_s() == pytest.approx(1.0)
    clock.advance(1.0)
    assert limiter.counts() == (0, 9)
    clock.advance(WINDOW_S - 1.0)
    assert limiter.delay_s() == 0.0


def test_phantoms_the_next_reading_does_not_confirm_are_dropped() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(10, 1.0, clock)
    limiter.observe(10, 4, 1000)
    clock.advance(0.1)
    limiter.observe(10, 8, 1000)  # the others' quiet spell: two in the window, not six
    assert limiter.counts() == (0, 2)


def test_penalize_blocks_until_the_given_time() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(10, WINDOW_S, clock)
    limiter.penalize(clock.monotonic() + 3.0)
    assert limiter.delay_s() == 3.0
    clock.advance(3.0)
    assert limiter.delay_s() == 0.0


async def test_concurrent_acquirers_all_pass_in_arrival_order() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(2, 1.0, clock)
    order: list[int] = []

    async def worker(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    tasks = [asyncio.create_task(worker(i)) for i in range(7)]
    for _ in range(50):
        await asyncio.sleep(0)
        clock.advance(0.25)
        if len(order) == 7:
            break
    await asyncio.gather(*tasks)
    assert order == list(range(7))


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 20),
    burst=st.integers(1, 5),
    steps=st.lists(
        st.tuples(st.floats(0, 6, allow_nan=False), st.integers(1, 5)), min_size=1, max_size=80
    ),
)
def test_paced_limiter_never_holds_more_than_limit_in_any_rolling_window(
    limit: int, burst: int, steps: list[tuple[float, int]]
) -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(limit, WINDOW_S, clock, burst=burst)
    granted: list[tuple[float, int]] = []
    for gap, wanted in steps:
        n = min(wanted, limit)
        clock.advance(gap)
        while (wait := limiter.delay_s(n)) > 0:
            clock.advance(wait)
        limiter.record(n)
        granted.append((clock.monotonic(), n))
    assert busiest_window(granted, WINDOW_S) <= limit


def grant_times(limiter: SlidingWindowLimiter, clock: ManualClock, count: int) -> list[float]:
    """When ``count`` back-to-back requests are let through."""
    times = []
    for _ in range(count):
        while (wait := limiter.delay_s()) > 0:
            clock.advance(wait)
        limiter.record()
        times.append(clock.monotonic())
    return times


def test_paced_limiter_spreads_the_allowance_across_the_window_after_its_burst() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(10, WINDOW_S, clock, burst=3)
    times = grant_times(limiter, clock, 10)
    assert times[:3] == [0.0, 0.0, 0.0]
    gaps = [b - a for a, b in itertools.pairwise(times[2:])]
    assert gaps == [pytest.approx(1.0)] * 7  # one per window / limit after the burst


def test_others_spending_slows_our_pace_to_the_share_left() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(10, 1.0, clock, burst=1)
    limiter.observe(10, 5, 1000)  # five spent, none by us
    assert limiter.interval_s() == pytest.approx(1.0 / (5 * PACE_SHARE))
    assert limiter.burst_now() == 1


def test_safety_caps_our_requests_and_hubspots_max_caps_ours_and_others_together() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(9, 1.0, clock, capacity=10)
    assert len(grant_times_within(limiter, clock, 1.0)) == 9  # alone: our share, no more
    clock.advance(1.0)
    limiter.observe(10, 3, 1000)  # seven in the window: ours all expired, so seven others'
    assert limiter.counts() == (0, 7)
    assert limiter.delay_s(3) == 0.0
    assert limiter.delay_s(4) > 0.0


def grant_times_within(limiter: SlidingWindowLimiter, clock: ManualClock, span_s: float) -> list:
    """Requests let through back to back without the clock moving past ``span_s``."""
    start, times = clock.monotonic(), []
    while (wait := limiter.delay_s()) == 0 or clock.monotonic() + wait < start + span_s:
        clock.advance(wait)
        limiter.record()
        times.append(clock.monotonic())
    return times


def test_429_cuts_a_tenth_of_our_share_once_per_window_and_time_with_successes_regrows_it() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(10, 1.0, clock, burst=3)
    limiter.throttled()
    limiter.throttled()  # a second 429 of the same window: requests already in flight
    assert limiter.allowance == 9
    windows = 0
    while limiter.allowance < 10:
        clock.advance(1.0)
        limiter.succeeded()
        windows += 1
    assert windows == 100  # 0.1 % of the capacity per window of successes: slow, 429s cost
    limiter.throttled()
    assert limiter.allowance == 9


def test_a_429_cuts_only_our_share_above_what_others_spend() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLimiter(10, 1.0, clock, burst=3)
    limiter.observe(10, 4, 1000)  # six spent by others
    limiter.throttled()
    ours = 10 - 6
    assert limiter.interval_s() == pytest.approx(1.0 / (ours * 0.9 * PACE_SHARE))


def test_a_slow_answer_keeps_its_request_in_the_window_until_it_came() -> None:
    """HubSpot counts a request when it arrives, which may be as late as its answer: counted
    from its sending, a slow first answer let later requests crowd HubSpot's window (one 429
    at the start of a drain, alone)."""
    clock = ManualClock()
    limiter = SlidingWindowLimiter(18, 1.0, clock, burst=3)
    slow = [limiter.record() for _ in range(3)]  # the start-up burst, answered late
    hubspot: list[float] = []
    for _ in range(60):
        while (wait := limiter.delay_s()) > 0:
            clock.advance(wait)
        sent_at = limiter.record()
        if clock.monotonic() >= 0.3 and slow:
            hubspot.extend([0.3] * len(slow))  # they reach HubSpot and come back now
            for stamp in slow:
                limiter.answered(stamp)
            slow = []
        hubspot.append(clock.monotonic())  # the others go and come back at once
        limiter.answered(sent_at)
    assert busiest_window([(t, 1) for t in hubspot], 1.0) <= 18


def test_unpaced_limiter_ignores_429_cuts() -> None:
    limiter = SlidingWindowLimiter(10, 1.0, ManualClock())
    limiter.throttled()
    assert (limiter.allowance, limiter.interval_s()) == (10, 0.0)


def drain_against_sandbox(pattern: Pattern | None, requests: int) -> tuple[float, int]:
    """Our requests, one at a time (20 ms each way), against the sandbox's limiter whose other
    app spends half of every 1-second window: (our use of the share it left, our 429s)."""
    clock = ManualClock()
    envelopes = PortalEnvelopes(EnvelopeLimits(10, None), clock, safety=0.9, burst=3)
    hubspot = Limiter(
        limit_10s=10, daily=None, search_rps=5, events_rps=100, time_scale=1.0, start=0.0,
        portal_id=1, window_ms=1000, rng=random.Random(7),
    )  # fmt: skip
    if pattern is not None:
        hubspot.competing.window_share, hubspot.competing.pattern = 0.5, pattern
        hubspot.competing.restart(0.0)
    ok = refused = 0
    while ok < requests:
        while (wait := envelopes.delay_s("contacts")) > 0:
            clock.advance(wait)
        sent_at = envelopes.limiter(Envelope.CRM).record()
        clock.advance(0.02)
        answer = hubspot.general("app", clock.monotonic())
        clock.advance(0.02)
        envelopes.answered("contacts", sent_at)
        headers = dict((k.lower(), int(v)) for k, v in getattr(answer, "headers", answer))
        envelopes.observe(
            "contacts",
            RateLimitHeaders(
                max=headers["x-hubspot-ratelimit-max"],
                remaining=headers["x-hubspot-ratelimit-remaining"],
                interval_ms=headers["x-hubspot-ratelimit-interval-milliseconds"],
            ),
        )
        if isinstance(answer, Refusal):
            refused += 1
            clock.advance(envelopes.throttled("contacts"))
        else:
            ok += 1
            envelopes.succeeded("contacts")
    elapsed = clock.monotonic()
    others = hubspot.competing.spent / elapsed + hubspot.competing.reserved(10)
    return ok / elapsed / (10 - others), refused


def test_a_steady_competitor_leaves_us_nine_tenths_of_its_free_share_without_429s() -> None:
    """HubSpot allows 10 per second; another app spends 5 of every window at a steady pace:
    safety (0.9) is not taken off the 5 it leaves, and its requests are paced around."""
    use, refused = drain_against_sandbox("steady", 300)
    assert refused == 0
    assert use >= 0.85


def test_a_competitor_holding_half_of_every_window_costs_no_429s() -> None:
    """Its share never frees up: a phantom leaving our log between two readings is one it
    still holds (a send timed just after that met a full window: one 429 in 100 before)."""
    use, refused = drain_against_sandbox("reserve", 300)
    assert refused == 0
    assert use >= 0.9


def test_alone_we_use_the_configured_share_without_429s() -> None:
    use, refused = drain_against_sandbox(None, 300)
    assert refused == 0
    assert use >= 0.85  # of HubSpot's 10: our 9, less the round trips each entry counts for


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 20),
    burst=st.integers(1, 5),
    requests=st.lists(
        st.tuples(st.floats(0, 0.5), st.floats(0, 0.49), st.floats(0, 0.49)),
        min_size=1,
        max_size=60,
    ),
)
def test_hubspots_window_never_holds_more_of_ours_than_the_limit_whatever_the_latency(
    limit: int, burst: int, requests: list[tuple[float, float, float]]
) -> None:
    """Requests in flight at once, each reaching HubSpot after one random delay and answered
    after another (within the window, together): counted as HubSpot counts them (on arrival),
    no rolling window of HubSpot's holds more of ours than the limit."""
    clock = ManualClock()
    limiter = SlidingWindowLimiter(limit, 1.0, clock, burst=burst)
    answers: list[tuple[float, float]] = []  # (answered at, logged at)
    arrivals: list[tuple[float, int]] = []

    def advance_to(until: float) -> None:
        answers.sort()
        while answers and answers[0][0] <= until:
            at, sent_at = answers.pop(0)
            clock.advance(max(0.0, at - clock.monotonic()))
            limiter.answered(sent_at)
        clock.advance(max(0.0, until - clock.monotonic()))

    for gap, to_hubspot, back in requests:
        advance_to(clock.monotonic() + gap)
        while (wait := limiter.delay_s()) > 0:
            advance_to(clock.monotonic() + wait)
        sent_at = limiter.record()
        arrivals.append((sent_at + to_hubspot, 1))
        answers.append((sent_at + to_hubspot + back, sent_at))
    assert busiest_window(arrivals, 1.0) <= limit
