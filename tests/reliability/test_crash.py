"""SIGKILL at random moments under load, restart, and count: exactly once, nothing refused sent.

A real ``forwarder serve`` takes batches from three producer threads while it delivers to a
sandbox process that outlives it. The server is killed with SIGKILL at random moments (during
ingest, group commits and HubSpot sends) and restarted on the same SQLite file. Producers resend
what got no answer with the same messageIds, as Segment's SDKs do. At the end every acknowledged
event is in the sandbox exactly once, every refused one is neither stored nor delivered, and every
item is ``delivered`` (none dead-lettered by the replays a crash causes).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.reliability.load import Producers
from tests.reliability.processes import (
    item_states,
    sandbox_process,
    serve_config,
    stored_message_ids,
    uuid_of,
    wait_until,
)
from tests.support import ServerProcess, free_port


def crash_rounds(tmp_path: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    db = tmp_path / "forwarder.db"
    port = free_port()
    with sandbox_process() as sandbox:
        # Slow answers keep sends in flight, so some kills land between HubSpot's 204 and our ack.
        sandbox.script({"route": "events.send_batch", "latencyMs": 150})
        config = serve_config(db, port, sandbox.url)
        server = ServerProcess(tmp_path, config).start(port)
        producers = Producers(server.url, threads=3, pause_s=0.02).start()
        try:
            for _ in range(rounds):
                time.sleep(rng.uniform(0.2, 1.2))
                server.kill()
                time.sleep(rng.uniform(0.0, 0.3))
                server = ServerProcess(tmp_path, config).start(port)
            time.sleep(0.5)
            producers.stop()
            ledger = producers.ledger
            expected = {uuid_of(m): m for m in ledger.acknowledged}

            def drained() -> bool:
                return set(sandbox.received_uuids()) >= set(expected)

            wait_until(drained, timeout_s=60, every_s=0.5)
            wait_until(lambda: item_states(db).keys() <= {"delivered"}, timeout_s=30)
        finally:
            server.stop()
        received = sandbox.received_uuids()
        refused_by_hubspot = {s: n for s, n in sandbox.requests().items() if s >= 400}
        log = server.log()

    assert ledger.unanswered > 0, "no kill landed while a request was in flight"
    assert len(ledger.acknowledged) > 500
    assert [u for u, n in received.items() if n != 1] == []
    assert set(received) == set(expected)
    refused = {uuid_of(m) for m in ledger.refused}
    assert refused.isdisjoint(received)
    assert ledger.refused.isdisjoint(stored_message_ids(db))
    assert item_states(db) == {"delivered": len(expected)}
    assert refused_by_hubspot == {}
    assert "Traceback" not in log


def test_sigkill_rounds_under_load_deliver_every_acknowledged_event_exactly_once(
    tmp_path: Path,
) -> None:
    crash_rounds(tmp_path, rounds=3, seed=9)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_twenty_sigkill_rounds_under_load_deliver_every_acknowledged_event_exactly_once(
    tmp_path: Path,
) -> None:
    crash_rounds(tmp_path, rounds=20, seed=20)
