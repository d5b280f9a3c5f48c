"""Several real ``forwarder serve`` processes on one Redis, a standalone sandbox, a private Redis.

Shared by the replica tests and ``benchmarks/replicas.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import redis

from forwarder.delivery.destinations import stable_uuid
from tests.support import SANDBOX_PORTAL_ID, SERVER_KEY, ServerProcess, free_port, serve_config

PORTAL_ID = SANDBOX_PORTAL_ID
AUTH = (SERVER_KEY, "")


LIMIT_10S = 10
"""The sandbox's 10-second window: small, so three unshared replicas would overrun it at once."""


def replica_config(storage_url: str, port: int, sandbox_url: str) -> str:
    """One replica: server on ``port``, storage at ``storage_url``, HubSpot at the sandbox."""
    extra = (
        f"[portals.main.limits]\ncrm_per_10s = {LIMIT_10S}\n\n"
        "[portals.main.contacts]\nupsert = true"
    )
    return serve_config(storage_url, port, sandbox_url, extra=extra, max_delay_s=0.05)


def start_replicas(tmp: Path, storage_url: str, sandbox_url: str, n: int) -> list[ServerProcess]:
    """``n`` replicas, each in its own directory (config and log)."""
    replicas = []
    for i in range(n):
        home = tmp / f"replica-{i}"
        home.mkdir(exist_ok=True)
        port = free_port()
        config = replica_config(storage_url, port, sandbox_url)
        replicas.append(ServerProcess(home, config).start(port))
    return replicas


class Process:
    """A helper process (sandbox, redis-server) with its output in a file."""

    def __init__(self, args: list[str], log: Path, url: str) -> None:
        self.args = args
        self.log_path = log
        self.url = url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: str) -> Process:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the file
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.args[0]} exited: {self.log_path.read_text()}")
            if self._ready(ready):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.args[0]} did not start: {self.log_path.read_text()}")

    def _ready(self, ready: str) -> bool:
        try:
            if ready == "redis":
                with redis.Redis.from_url(self.url, socket_timeout=1) as client:
                    return bool(client.ping())
            return httpx.get(f"{self.url}{ready}", timeout=1).status_code == 200
        except (httpx.HTTPError, redis.RedisError):
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_sandbox(tmp: Path) -> Process:
    """The simulator on its own port, with a small 10-second window (only a portal on the
    built-in sandbox may be time-scaled, so this window is a real 10 seconds)."""
    port = free_port()
    args = [sys.executable, "-m", "forwarder", "sandbox", "--port", str(port)]
    args += ["--portal-id", str(PORTAL_ID), "--limit-10s", str(LIMIT_10S)]
    return Process(args, tmp / "sandbox.log", f"http://127.0.0.1:{port}").start("/_sandbox")


def start_redis(tmp: Path) -> Process:
    """A private redis-server with AOF on (``appendfsync always``), for restart tests."""
    port = free_port()
    data = tmp / "redis-data"
    data.mkdir(exist_ok=True)
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data)]
    return Process(args, tmp / "redis.log", f"redis://127.0.0.1:{port}/0").start("redis")


def flush_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def new_prefix() -> str:
    return f"replicas-{uuid.uuid4().hex[:10]}"


def track(message_id: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": message_id,
        "userId": f"u-{message_id}",
        "context": {"traits": {"email": f"{message_id}@example.com"}},
    }


def identify(message_id: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "messageId": message_id,
        "userId": f"u-{message_id}",
        "traits": {"email": f"{message_id}@example.com"},
    }


def post(url: str, events: list[dict[str, Any]], timeout_s: float = 10.0) -> int:
    """POST one batch; the status (0 when the replica did not answer)."""
    try:
        response = httpx.post(
            f"{url}/v1/batch", json={"batch": events}, auth=AUTH, timeout=timeout_s
        )
        return response.status_code
    except httpx.HTTPError:
        return 0


def sandbox_uuids(sandbox_url: str) -> list[str]:
    """Every accepted occurrence's uuid (one per delivered conversion)."""
    body = httpx.get(f"{sandbox_url}/_sandbox/events", timeout=10).json()
    return [e["uuid"] for events in body["received"].values() for e in events]


def conversion_uuid(message_id: str) -> str:
    return stable_uuid(PORTAL_ID, message_id)


def missing(sandbox_url: str, message_ids: Iterable[str]) -> set[str]:
    """Acknowledged conversions not (yet) in the sandbox."""
    seen = set(sandbox_uuids(sandbox_url))
    return {m for m in message_ids if conversion_uuid(m) not in seen}
