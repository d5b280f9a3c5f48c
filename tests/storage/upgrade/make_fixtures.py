"""Write the stores of a release, with a backlog in them, for the upgrade tests.

Run with the release's code first on the path, e.g. for 0.1.0 (commit fdf16f8):

    git worktree add --detach /tmp/v010 fdf16f8
    PYTHONPATH=/tmp/v010 python tests/storage/upgrade/make_fixtures.py \
        --release 0.1.0 --commit fdf16f8

It starts that release's ``forwarder serve`` on a SQLite file, then on a Redis prefix, with its
portal pointed at a closed port (HubSpot "down"), sends identifies and conversions as a backend
would, lets delivery fail a few times, stops the server with SIGTERM and keeps what is stored:
the SQLite file (WAL checkpointed into it) and every Redis key of the prefix (``DUMP``, hex).
``manifest.json`` lists the messageIds that must be delivered after an upgrade and those held
until an identify links them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
KEY = "srv_fixture_key_0123456789"
TOKEN = "pat-na1-sandbox-token"  # the sandbox's built-in token: no real secret in a fixture
REDIS = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(storage_url: str, port: int, dead_port: int) -> str:
    return f"""
[server]
host = "127.0.0.1"
port = {port}
log_format = "json"
log_requests = false

[storage]
url = "{storage_url}"

[[sources]]
name = "backend"
write_key = "{KEY}"
portal = "main"

[portals.main]
portal_id = 123456
base_url = "http://127.0.0.1:{dead_port}"
access_token = "{TOKEN}"
unmapped_events = "auto"
max_delay_s = 0.1
request_timeout_s = 1.0
"""


def send_backlog(url: str) -> dict[str, list[str]]:
    auth = (KEY, "")
    deliverable, held = [], []
    with httpx.Client(base_url=url, auth=auth, timeout=10) as client:
        identify = {
            "type": "identify",
            "messageId": "fx-identify-1",
            "userId": "buyer-1",
            "traits": {"email": "buyer-1@example.com", "firstname": "Ada"},
        }
        client.post("/v1/identify", json=identify).raise_for_status()
        batch = []
        for i in range(40):
            message_id = f"fx-order-{i:03d}"
            deliverable.append(message_id)
            batch.append(
                {
                    "type": "track",
                    "messageId": message_id,
                    "userId": "buyer-1",
                    "event": "Order Completed",
                    "properties": {"revenue": 10 + i, "currency": "EUR"},
                    "context": {"traits": {"email": "buyer-1@example.com"}},
                }
            )
        for i in range(5):
            message_id = f"fx-held-{i:03d}"
            held.append(message_id)
            batch.append(
                {
                    "type": "track",
                    "messageId": message_id,
                    "userId": "later-1",
                    "event": "Trial Started",
                    "properties": {"plan": "pro"},
                }
            )
        client.post("/v1/batch", json={"batch": batch}).raise_for_status()
    return {"deliverable": deliverable, "held": held, "held_user": ["later-1"]}


def run_release(storage_url: str, workdir: Path) -> tuple[dict[str, list[str]], str]:
    port, dead_port = free_port(), free_port()
    path = workdir / "forwarder.toml"
    path.write_text(config(storage_url, port, dead_port))
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "serve", "--config", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
        cwd=workdir,  # not the repository: ``-m`` would import the checkout's code first
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            raise RuntimeError((workdir / "server.log").read_text())
        version = httpx.get(f"{url}/healthz", timeout=2).headers.get("server", "")
        ids = send_backlog(url)
        time.sleep(3.0)  # a few delivery attempts fail against the closed port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return ids, version


def keep_sqlite(db: Path, out: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    out.write_bytes(db.read_bytes())


def keep_redis(prefix: str, out: Path) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    dumped = {}
    for key in sorted(client.scan_iter(match=f"{prefix}:*", count=1000)):
        payload = client.dump(key)
        if payload is not None:
            dumped[key.decode()] = payload.hex()
    for key in dumped:
        client.delete(key)
    out.write_text(json.dumps({"prefix": prefix, "keys": dumped}, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", required=True, help="the release's version, e.g. 0.1.0")
    parser.add_argument("--commit", required=True, help="the release's commit, for the manifest")
    args = parser.parse_args()
    import forwarder

    assert forwarder.__version__ == args.release, (forwarder.__file__, forwarder.__version__)
    print(f"release code: {Path(forwarder.__file__).parent}")
    out = HERE / f"release-{args.release}"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "forwarder.db"
        ids, _ = run_release(f"sqlite:///{db}", work)
        keep_sqlite(db, out / "forwarder.db")
        prefix = f"fixture-{args.release}"
        ids_redis, _ = run_release(f"{REDIS}?prefix={prefix}", work)
        assert ids_redis == ids
        keep_redis(prefix, out / "redis.json")
    manifest = {"release": args.release, "commit": args.commit, **ids}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
