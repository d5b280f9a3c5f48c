"""A real ``forwarder serve`` process on loopback, met by real clients."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
import segment.analytics as segment

from tests.support import SERVER_KEY, ServerProcess, config_toml, free_port, track


def stored_message_ids(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT message_id FROM events ORDER BY seq")]
    finally:
        conn.close()


def test_segment_python_sdk_batches_are_stored_once_each(
    server: ServerProcess, tmp_path: Path
) -> None:
    errors: list[Exception] = []
    client = segment.Client(
        SERVER_KEY,
        host=server.url,
        gzip=True,
        upload_size=50,
        on_error=lambda exc, batch: errors.append(exc),
        max_retries=1,
    )
    sent: list[str] = []
    for i in range(120):
        _, msg = client.track(f"user-{i % 7}", "Order Completed", {"revenue": i})
        sent.append(msg["messageId"])
        _, msg = client.identify(f"user-{i % 7}", {"email": f"u{i % 7}@example.com"})
        sent.append(msg["messageId"])
        _, msg = client.page(f"user-{i % 7}", "Docs", "Pricing", {"url": "https://x.test/p"})
        sent.append(msg["messageId"])
    client.flush()
    client.shutdown()
    assert errors == []
    stored = stored_message_ids(tmp_path / "forwarder.db")
    assert sorted(stored) == sorted(sent)
    assert len(set(stored)) == len(stored) == 360


def test_event_acknowledged_before_sigkill_is_there_after_restart(tmp_path: Path) -> None:
    """Every 200 means committed: kill -9 right after answers, restart, count."""
    port = free_port()
    db = tmp_path / "forwarder.db"
    proc = ServerProcess(tmp_path, config_toml(db, port)).start(port)
    acknowledged: list[str] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(base_url=proc.url, auth=(SERVER_KEY, ""), timeout=5) as http:
            n = 0
            while not stop.is_set():
                message_id = f"w{worker}-{n}"
                n += 1
                try:
                    r = http.post("/v1/track", json=track(messageId=message_id))
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    acknowledged.append(message_id)
                    if len(acknowledged) >= 400:
                        proc.kill()  # SIGKILL right after a 200, while others are in flight
                        stop.set()

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stop.set()
    proc.kill()
    assert len(acknowledged) >= 400
    restarted = ServerProcess(tmp_path, config_toml(db, port)).start(port)
    try:
        missing = set(acknowledged) - set(stored_message_ids(db))
        assert missing == set()
        # and the restarted server still knows them as duplicates
        r = httpx.post(
            f"{restarted.url}/v1/track",
            json=track(messageId=acknowledged[0]),
            auth=(SERVER_KEY, ""),
        )
        assert r.json()["duplicates"] == 1
    finally:
        restarted.stop()


def test_write_keys_and_tokens_never_reach_the_log(tmp_path: Path) -> None:
    port = free_port()
    token = "pat-na1-0000-super-secret-token"
    config = config_toml(tmp_path / "forwarder.db", port).replace(
        'base_url = "sandbox"', f'base_url = "sandbox"\naccess_token = "{token}"'
    )
    proc = ServerProcess(tmp_path, config).start(port)
    try:
        with httpx.Client(base_url=proc.url, timeout=5) as http:
            http.post("/v1/track", json=track(), auth=(SERVER_KEY, ""))
            http.post("/v1/track", json={**track(), "writeKey": SERVER_KEY})
            http.post("/v1/track", json=track(), headers={"Authorization": f"Bearer {SERVER_KEY}x"})
            http.post("/v1/batch", content=b"{bad", auth=(SERVER_KEY, ""))
            http.post(
                "/v1/track",
                json={**track(), "properties": {"leak": SERVER_KEY}},
                auth=(SERVER_KEY, ""),
            )
            metrics = http.get("/metrics").text
    finally:
        proc.stop()
    log = proc.log()
    assert "ingest_request_handled" in log
    assert SERVER_KEY not in log.replace("development write key", "")
    assert token not in log
    assert SERVER_KEY not in metrics
    assert token not in metrics
