"""The CRM envelope against the sandbox's rate limiter, in simulated time (seconds per run).

Run by hand, never in CI::

    python benchmarks/shared_window_sim.py                  # 300 requests, 5 seeds per row
    python benchmarks/shared_window_sim.py --requests 1000 --seeds 10
    python benchmarks/shared_window_sim.py --frontier       # what any sender could reach

A quick way to try a pacing or AIMD rule before the real-time ``shared_portal.py`` run: the
same ``PortalEnvelopes`` the workers use and the same sandbox ``Limiter`` (with its competing
app) meet on a virtual clock, with no HTTP, storage or event loop in between. HubSpot declares
``Max: 10`` per ``Interval-Milliseconds: 1000``; the forwarder is configured with
``crm_per_10s = 10``; a backlog is always ready. What the worker does is mimicked: up to
``--concurrency`` requests in flight, each reaching HubSpot and coming back after a random
latency; a 200's headers are observed and the envelope told of the success; a 429 cuts the
envelope's allowance (AIMD) and holds the destination until the envelope's log, filled by the
429's headers, has room again; every answer re-stamps its request in the log (``answered``).

Figures per row (one per seed): our use of the share the other app left (as ``shared_portal``
counts it), our 429s as a share of our requests, and the other app's requests HubSpot refused
(crowding it out is no win: its refusals raise "the share it left").

``--frontier`` replaces the forwarder by an *oracle* sender: at every millisecond it sees
HubSpot's window exactly as it is (ours and the other app's requests, to the instant), which no
client can, and sends when the window at the earliest arrival of its request, with its requests
in flight, leaves room for one more plus ``slack``. What it cannot know are the other app's
requests that arrive while its own is on the way (5-40 ms). Any rule the forwarder could follow
from HubSpot's headers does no better than this curve.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import random
from dataclasses import dataclass
from typing import Any

import structlog

from forwarder.delivery.envelopes import EnvelopeLimits, PortalEnvelopes
from forwarder.hubspot.models import RateLimitHeaders
from forwarder.sandbox.limits import Headers, Limiter, Pattern, Refusal, RollingWindow

DESTINATION = "contacts"


class VirtualClock:
    """Time that moves only when the simulation says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> float:
        return 1_800_000_000.0 + self.t

    async def sleep(self, seconds: float) -> None:
        raise RuntimeError("the simulation never sleeps")


@dataclass(frozen=True, slots=True)
class Run:
    ok: int
    too_many: int
    use: float
    others_spent: int
    others_refused: int
    ours_per_s: float = 0.0


def rate_headers(headers: Headers) -> RateLimitHeaders:
    found = {name.lower(): int(value) for name, value in headers}
    return RateLimitHeaders(
        max=found.get("x-hubspot-ratelimit-max"),
        remaining=found.get("x-hubspot-ratelimit-remaining"),
        interval_ms=found.get("x-hubspot-ratelimit-interval-milliseconds"),
    )


def simulate(
    pattern: Pattern | None, safety: float, requests: int, seed: int, concurrency: int
) -> Run:
    """One drain of ``requests`` successful upserts; ``pattern`` None: HubSpot to ourselves."""
    rng = random.Random(seed)
    clock = VirtualClock()
    envelopes = PortalEnvelopes(EnvelopeLimits(10, None), clock, safety=safety, burst=3)
    limiter = envelopes.limiter(envelopes.envelope_for(DESTINATION))
    hubspot = Limiter(
        limit_10s=10,
        daily=None,
        search_rps=5,
        events_rps=100,
        time_scale=1.0,
        start=0.0,
        portal_id=1,
        window_ms=1000,
        rng=random.Random(seed + 1),
    )
    if pattern is not None:
        hubspot.competing.window_share, hubspot.competing.pattern = 0.5, pattern
        hubspot.competing.restart(0.0)
    events: list[tuple[float, int, str, Any]] = []
    order = 0

    def at(when: float, kind: str, data: Any = None) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (when, order, kind, data))

    def latency() -> float:
        return rng.uniform(0.005, 0.04)

    ok = too_many = in_flight = 0
    held_until = 0.0
    at(0.0, "ready")
    while events and ok < requests:
        clock.t, _, kind, data = heapq.heappop(events)
        if kind == "ready" and in_flight < concurrency:
            wait = max(held_until - clock.t, envelopes.delay_s(DESTINATION))
            if wait > 0:
                at(clock.t + wait, "ready")
                continue
            sent_at = limiter.record()
            in_flight += 1
            at(clock.t + latency(), "arrive", sent_at)
            at(clock.t, "ready")
        elif kind == "arrive":
            assert isinstance(data, float)
            at(clock.t + latency(), "answer", (data, hubspot.general("app", clock.t)))
        elif kind == "answer":
            in_flight -= 1
            assert isinstance(data, tuple)
            sent_at, data = data
            envelopes.answered(DESTINATION, sent_at)
            if isinstance(data, Refusal):
                too_many += 1
                envelopes.observe(DESTINATION, rate_headers(data.headers))
                hold_s = envelopes.throttled(DESTINATION)  # until the log has room
                held_until = max(held_until, clock.t + hold_s)
            elif data is not None:
                ok += 1
                envelopes.observe(DESTINATION, rate_headers(data))
                envelopes.succeeded(DESTINATION)
            at(clock.t, "ready")
    free_per_s = 10 - hubspot.competing.spent / clock.t
    competing = hubspot.competing
    return Run(ok, too_many, ok / clock.t / free_per_s, competing.spent, competing.refused)


def oracle(pattern: Pattern, slack: int, requests: int, seed: int, concurrency: int) -> Run:
    """One drain by the oracle sender (see the module's docstring), on a 1 ms grid."""
    rng = random.Random(seed)
    hubspot = Limiter(
        limit_10s=10,
        daily=None,
        search_rps=5,
        events_rps=100,
        time_scale=1.0,
        start=0.0,
        portal_id=1,
        window_ms=1000,
        rng=random.Random(seed + 1),
    )
    hubspot.competing.window_share, hubspot.competing.pattern = 0.5, pattern
    hubspot.competing.restart(0.0)
    window = hubspot.windows["app"] = RollingWindow(10, 1.0)
    flights: list[tuple[float, str]] = []  # (when, "arrive" | "answer")
    ok = too_many = in_flight = 0
    step = t = 0.001
    while ok < requests:
        t += step
        while flights and flights[0][0] <= t:
            when, kind = heapq.heappop(flights)
            if kind == "arrive":
                answer = hubspot.general("app", when)
                too_many += isinstance(answer, Refusal)
                ok += not isinstance(answer, Refusal)
                heapq.heappush(flights, (when + rng.uniform(0.005, 0.04), "answer"))
            else:
                in_flight -= 1
        if in_flight >= concurrency:
            continue
        hubspot.competing.spend_until("app", window, t)
        window.used(t)  # prunes what has left the window
        earliest = t + 0.005  # its request cannot arrive sooner
        if window.used_since(earliest - 1.0) + in_flight + 1 + slack <= 10:
            in_flight += 1
            heapq.heappush(flights, (t + rng.uniform(0.005, 0.04), "arrive"))
    competing = hubspot.competing
    use = ok / t / (10 - competing.spent / t)
    return Run(ok, too_many, use, competing.spent, competing.refused, ok / t)


def crowding(run: Run) -> float:
    """The other app's requests HubSpot refused, as a share of those it made (percent)."""
    made = run.others_spent + run.others_refused
    return round(100 * run.others_refused / made, 1) if made else 0.0


def frontier(args: argparse.Namespace) -> None:
    patterns: tuple[Pattern, ...] = ("steady", "random", "bursts")
    for pattern in patterns:
        for slack in (0, 1, 2, 3):
            runs = [
                oracle(pattern, slack, args.requests, seed, args.concurrency)
                for seed in range(args.seeds)
            ]
            print(
                f"oracle {pattern:7} slack={slack} use={[round(r.use, 3) for r in runs]}"
                f" of_5_per_s={[round(r.ours_per_s / 5, 3) for r in runs]}"
                f" 429_percent={[round(100 * r.too_many / (r.ok + r.too_many), 1) for r in runs]}"
                f" others_refused_percent={[crowding(r) for r in runs]}",
                flush=True,
            )


def main(args: argparse.Namespace) -> None:
    if args.frontier:
        frontier(args)
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    patterns: tuple[Pattern | None, ...] = ("steady", "random", "bursts", None)
    for pattern in patterns:
        for safety in (0.9, 1.0):
            runs = [
                simulate(pattern, safety, args.requests, seed, args.concurrency)
                for seed in range(args.seeds)
            ]
            uses = [round(r.use, 3) for r in runs]
            shares = [round(100 * r.too_many / (r.ok + r.too_many), 1) for r in runs]
            crowded = [crowding(r) for r in runs]
            print(
                f"{pattern or 'alone':7} safety={safety} use={uses} 429_percent={shares}"
                f" others_refused_percent={crowded}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="successful upserts per run")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at most")
    parser.add_argument("--frontier", action="store_true", help="the oracle sender's curve")
    main(parser.parse_args())
