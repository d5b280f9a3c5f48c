"""A HubSpot outage (503s and hanging requests), then recovery, against a real server.

Proves: nothing acknowledged is lost or sent twice; during the outage the forwarder stays inside
its envelope and each item is retried no more often than exponential backoff allows (no retry
storm); after recovery the backlog drains within the envelope's time plus the longest backoff
an item was waiting out. ``OUTAGE_TRACE`` (a path) keeps the trace for ``benchmarks/chart.py``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from tests.reliability.outage import EVENTS_RPS, TIMEOUT_S, OutageRun, run_outage
from tests.reliability.processes import uuid_of

BATCH = 500


def check(run: OutageRun) -> None:
    expected = {uuid_of(m) for m in run.acknowledged}
    assert set(run.received) == expected
    assert set(run.received.values()) == {1}
    assert run.states == {"delivered": len(expected)}
    assert run.backlog_at_recovery > 0
    # The envelope holds during the outage (a timed-out send still spent its slot).
    assert run.sends_during_outage <= EVENTS_RPS * run.outage_s + 4
    # Full-jitter backoff: attempt k waits up to 2**(k-1) s, and a hang costs TIMEOUT_S, so an
    # item cannot be tried more than ~log2(outage) + a few times while HubSpot is down.
    assert run.max_attempts_per_item <= math.log2(run.outage_s) + 5
    longest_backoff_s = 2.0 ** (run.max_attempts_per_item - 1)
    envelope_s = run.backlog_at_recovery / (EVENTS_RPS * BATCH)
    drain_s = run.drained_at - run.outage_ended
    assert drain_s <= envelope_s + longest_backoff_s + TIMEOUT_S + 3.0, run.trace()


def keep(run: OutageRun) -> None:
    target = os.environ.get("OUTAGE_TRACE")
    if target:
        Path(target).write_text(json.dumps(run.trace(), indent=1))


def test_outage_of_six_seconds_loses_nothing_and_retries_within_backoff(tmp_path: Path) -> None:
    run = run_outage(tmp_path, outage_s=6.0)
    keep(run)
    check(run)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_outage_of_a_minute_loses_nothing_and_retries_within_backoff(tmp_path: Path) -> None:
    run = run_outage(tmp_path, outage_s=60.0)
    keep(run)
    check(run)
