"""Three replicas on one Redis spend one daily CRM budget and one monthly event quota between
them, counted in the store: together they never send more than configured in a (time-scaled)
day or month, and killing and restarting a replica changes no count.

Periods are counted from the epoch, so the bound is the cap times the number of periods the run
touched; the producers ask for far more than that, so a budget counted per replica (three times
the cap) or forgotten at a restart would pass it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.replicas.cluster import flush_prefix, new_prefix
from tests.support import SERVER_KEY, ServerProcess, free_port, sandbox_process, serve_config

REDIS = "redis://127.0.0.1:6379/11"
RUN_S = 14.0
PERIOD_S = 5.0
"""A scaled day (or month) of five seconds."""


@pytest.fixture
def prefix() -> Iterator[str]:
    name = new_prefix()
    try:
        yield name
    finally:
        flush_prefix(REDIS, name)


def start(tmp: Path, name: str, storage: str, sandbox_url: str, limits: str) -> ServerProcess:
    home = tmp / name
    home.mkdir(exist_ok=True)
    port = free_port()
    extra = f"{limits}\n\n[portals.main.contacts]\nupsert = true"
    config = serve_config(storage, port, sandbox_url, extra=extra, max_delay_s=0.05)
    return ServerProcess(home, config).start(port)


def produce(
    replicas: list[ServerProcess], make: Callable[[int], dict[str, Any]], stop: threading.Event
) -> None:
    """Small batches round-robin to the replicas (a restarting one refuses some: fine)."""
    counter = itertools.count()
    with httpx.Client(auth=(SERVER_KEY, ""), timeout=5) as client:
        while not stop.is_set():
            for replica in list(replicas):
                batch = [make(next(counter)) for _ in range(3)]
                with contextlib.suppress(httpx.HTTPError):
                    client.post(f"{replica.url}/v1/batch", json={"batch": batch})
            time.sleep(0.05)


def run(
    tmp: Path,
    prefix: str,
    limits: str,
    make: Callable[[int], dict[str, Any]],
    spent: Callable[[Any], int],
) -> tuple[int, int]:
    """Run three replicas for ``RUN_S`` (one killed and restarted midway); (spent, periods)."""
    storage = f"{REDIS}?prefix={prefix}"
    with sandbox_process() as sandbox:
        replicas = [start(tmp, f"r{i}", storage, sandbox.url, limits) for i in range(3)]
        stop = threading.Event()
        producer = threading.Thread(target=produce, args=(replicas, make, stop), daemon=True)
        first = time.time()
        producer.start()
        try:
            time.sleep(RUN_S / 2)
            replicas[1].kill()
            replicas[1] = start(tmp, "r1-again", storage, sandbox.url, limits)
            time.sleep(RUN_S / 2)
        finally:
            stop.set()
            producer.join(timeout=10)
            for replica in replicas:
                replica.kill()  # no drain: nothing may be sent after the measured span
            last = time.time()
        total = spent(sandbox)
    periods = math.floor(last / PERIOD_S) - math.floor(first / PERIOD_S) + 1
    return total, periods


def test_three_replicas_never_send_more_crm_requests_in_a_day_than_configured(
    tmp_path: Path, prefix: str
) -> None:
    scale = 86400.0 / PERIOD_S
    limits = f"[portals.main.limits]\ncrm_daily = 10\ntime_scale = {scale}"
    cap = 9  # crm_daily x safety (0.9)

    def identify(i: int) -> dict[str, Any]:
        return {"type": "identify", "userId": f"b-{i}", "traits": {"email": f"b{i}@example.com"}}

    def crm_requests(sandbox: Any) -> int:
        body = httpx.get(f"{sandbox.url}/_sandbox/requests", timeout=10).json()["byRoute"]
        return sum(
            n for route, by in body.items() if route.startswith("contacts.") for n in by.values()
        )

    total, days = run(tmp_path, prefix, limits, identify, crm_requests)
    assert total <= cap * days, (total, days)
    assert total > cap, "the budget never reset or nothing was sent"


def test_three_replicas_never_send_more_events_in_a_month_than_configured(
    tmp_path: Path, prefix: str
) -> None:
    scale = 30 * 86400.0 / PERIOD_S
    limits = f"[portals.main.limits]\nevents_monthly = 40\ntime_scale = {scale}"
    cap = 36  # events_monthly x safety (0.9)

    def track(i: int) -> dict[str, Any]:
        return {
            "type": "track",
            "userId": f"m-{i}",
            "event": "Order Completed",
            "context": {"traits": {"email": f"m{i}@example.com"}},
        }

    def completions(sandbox: Any) -> int:
        return sum(sandbox.received_uuids().values())

    total, months = run(tmp_path, prefix, limits, track, completions)
    assert total <= cap * months, (total, months)
    assert total > cap, "the quota never reset or nothing was sent"
