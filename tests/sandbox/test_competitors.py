"""Competing integrations that really spend the shared window, and scripts of interleaved faults."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from forwarder.sandbox import ManualClock
from forwarder.sandbox.limits import CompetingApp, Limiter, RollingWindow

READ = "/crm/v3/objects/contacts/batch/read"
BODY = {"inputs": [], "properties": [], "propertiesWithHistory": []}  # as HubSpot's spec requires


class RecordingWindow(RollingWindow):
    """A rolling window that remembers when other integrations' requests were admitted."""

    def __init__(self, limit: int, window_s: float) -> None:
        super().__init__(limit, window_s)
        self.others: list[float] = []

    def admit_other(self, now: float) -> bool:
        admitted = super().admit_other(now)
        if admitted:
            self.others.append(now)
        return admitted


def spend(pattern: str, seconds: float, share: float = 0.5) -> list[float]:
    """When a competitor spending ``share`` of a 10-per-1-s window made its admitted requests."""
    window = RecordingWindow(10, 1.0)
    app = CompetingApp(window_share=share, pattern=pattern, rng=random.Random(7))  # type: ignore[arg-type]
    app.restart(0.0)
    t = 0.0
    while t < seconds:
        t += 0.01
        app.spend_until("app", window, t)
    return window.others


def busiest(times: list[float], window_s: float = 1.0) -> int:
    return max(sum(1 for u in times if t <= u < t + window_s - 1e-9) for t in times)


def test_steady_competitor_spends_its_share_evenly() -> None:
    times = spend("steady", 20.0)
    assert 99 <= len(times) <= 101
    assert busiest(times) == 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.19


def test_random_competitor_spends_its_share_on_average_at_uneven_moments() -> None:
    times = spend("random", 200.0)
    assert 995 <= len(times) <= 1000  # five in every window
    assert busiest(times) > 5  # some rolling windows get more than the average


def test_bursty_competitor_spends_its_whole_share_at_once() -> None:
    times = spend("bursts", 50.0)
    assert busiest(times, 0.011) == 5
    assert 49 * 5 <= len(times) <= 50 * 5


def test_reserving_competitor_spends_nothing_but_holds_its_share() -> None:
    app = CompetingApp(window_share=0.5)
    window = RollingWindow(10, 1.0)
    app.spend_until("app", window, 5.0)
    assert (app.spent, window.used(5.0), app.reserved(10)) == (0, 0, 5)


def test_competitor_requests_take_room_from_ours_in_the_same_window() -> None:
    limiter = Limiter(
        limit_10s=10,
        daily=None,
        search_rps=5,
        events_rps=10,
        time_scale=1.0,
        start=0.0,
        portal_id=1,
        window_ms=1000,
    )
    limiter.competing.window_share = 0.5
    limiter.competing.pattern = "steady"
    limiter.competing.restart(0.0)
    ours = [limiter.general("app", 0.5 + i * 0.01) for i in range(10)]
    admitted = [v for v in ours if isinstance(v, list)]
    assert len(admitted) == 7  # three competitor requests (t=0, 0.2, 0.4) were there first
    headers = dict(admitted[-1])
    assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"


async def test_faults_endpoint_selects_a_spending_competitor(
    make_client: Any, clock: ManualClock
) -> None:
    sandbox, client = make_client(limit_10s=10, window_ms=1000)
    async with client:
        script = {"competingApp": {"windowShare": 0.5, "pattern": "bursts"}}
        answer = await client.post("/_sandbox/faults", json=script)
        clock.advance(1.0)  # its first window (and burst) is over; the next burst is later
        response = await client.post(READ, json=BODY)
    assert answer.json()["competingApp"]["pattern"] == "bursts"
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "4"  # 5 theirs, 1 ours
    assert sandbox.limiter.competing.spent == 5


async def test_unknown_competitor_pattern_is_refused(make_client: Any) -> None:
    _, client = make_client()
    async with client:
        script = {"competingApp": {"windowShare": 0.5, "pattern": "sometimes"}}
        answer = await client.post("/_sandbox/faults", json=script)
    assert answer.status_code == 400
    assert "pattern" in answer.text


async def test_pass_first_interleaves_failures_with_successes(
    make_client: Any, clock: ManualClock
) -> None:
    _, client = make_client()
    script = {
        "faults": [
            {"route": "contacts", "passFirst": 2, "status": 503, "count": 2},
            {"route": "contacts", "passFirst": 1, "status": 502, "count": 1},
        ]
    }
    async with client:
        await client.post("/_sandbox/faults", json=script)
        statuses = []
        for _ in range(7):
            clock.advance(0.1)
            statuses.append((await client.post(READ, json=BODY)).status_code)
    assert statuses == [200, 200, 503, 503, 200, 502, 200]


@pytest.mark.parametrize("share", [-0.1, 1.5])
async def test_competitor_share_outside_zero_to_one_is_refused(
    make_client: Any, share: float
) -> None:
    _, client = make_client()
    async with client:
        answer = await client.post(
            "/_sandbox/faults", json={"competingApp": {"windowShare": share}}
        )
    assert answer.status_code == 400
