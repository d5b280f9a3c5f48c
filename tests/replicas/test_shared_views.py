"""Two replicas on one Redis show the same ingest funnel and queue counts, and a restart
changes none of them: the figures are the store's, not a process's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.processes import wait_until
from tests.replicas.cluster import flush_prefix, new_prefix
from tests.support import SERVER_KEY, ServerProcess, free_port, sandbox_process, serve_config

REDIS = "redis://127.0.0.1:6379/11"
ADMIN = "admin-token-for-shared-views"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = new_prefix()
    try:
        yield name
    finally:
        flush_prefix(REDIS, name)


def start(tmp: Path, name: str, storage: str, sandbox_url: str) -> ServerProcess:
    home = tmp / name
    home.mkdir(exist_ok=True)
    port = free_port()
    config = serve_config(storage, port, sandbox_url, server_extra=f'admin_token = "{ADMIN}"')
    return ServerProcess(home, config).start(port)


def admin(replica: ServerProcess, path: str) -> Any:
    headers = {"authorization": f"Bearer {ADMIN}"}
    answer = httpx.get(f"{replica.url}/admin/api{path}", headers=headers, timeout=10)
    answer.raise_for_status()
    return answer.json()


def funnel(replica: ServerProcess) -> dict[str, Any]:
    body = admin(replica, "/overview")
    return {"ingest": body["ingest"], "received": [p["received"] for p in body["portals"]]}


def history(replica: ServerProcess) -> list[dict[str, Any]]:
    """The portal's HubSpot requests per minute over the last day."""
    [portal] = admin(replica, "/envelopes")["portals"]
    return list(portal["history"])


def sent_ok(replica: ServerProcess) -> int:
    return sum(m["ok"] for m in history(replica))


def send(replica: ServerProcess, events: list[dict[str, Any]]) -> None:
    answer = httpx.post(
        f"{replica.url}/v1/batch", json={"batch": events}, auth=(SERVER_KEY, ""), timeout=10
    )
    assert answer.status_code == 200, answer.text


def track(message_id: str) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "userId": "u1",
        "event": "Order Completed",
        "context": {"traits": {"email": "u1@example.com"}},
    }


def test_two_replicas_show_the_same_funnel_before_and_after_a_restart(
    tmp_path: Path, prefix: str
) -> None:
    storage = f"{REDIS}?prefix={prefix}"
    with sandbox_process() as sandbox:
        a = start(tmp_path, "a", storage, sandbox.url)
        b = start(tmp_path, "b", storage, sandbox.url)
        try:
            # A: 3 new, 1 repeat of them, 1 invalid (no user); B: 2 new, 1 repeat of A's.
            send(a, [track("m1"), track("m2"), track("m3"), track("m1"), {"type": "track"}])
            send(b, [track("m4"), track("m5"), track("m2")])
            expected = {
                "ingest": {"received": 8, "accepted": 5, "rejected": 1, "duplicates": 2},
                "received": [8],
            }
            wait_until(lambda: funnel(a) == expected and funnel(b) == expected, timeout_s=20)
            # Both replicas delivered; each one's requests are in the one history both show.
            wait_until(lambda: sandbox.requests().get(204, 0) >= 2, timeout_s=20)
            wait_until(lambda: sent_ok(a) == sandbox.requests().get(204, 0), timeout_s=20)
            assert history(a) == history(b)
            b.stop()
            b = start(tmp_path, "b2", storage, sandbox.url)
            assert funnel(b) == expected
            assert funnel(a) == expected
            assert history(b) == history(a)
        finally:
            a.stop()
            b.stop()
