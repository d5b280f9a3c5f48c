"""Test support: settings builders and a real ``forwarder serve`` process on loopback."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from forwarder.sandbox import DEFAULT_TOKEN

SERVER_KEY = "srv_test_key_0123456789"
BROWSER_KEY = "pub_test_key_0123456789"
ORIGIN = "https://www.example.com"


def npm_ci(directory: Path, installed: Sequence[Path], timeout_s: float) -> None:
    """``npm ci`` in ``directory`` (its committed lock, npm's cache beside it) unless every
    directory of ``installed`` is there already. One test process at a time (the suite runs on
    every core): two ``npm ci`` in one directory at once fail (``ENOTEMPTY``), so the second
    waits for the first's lock, then finds them."""
    if all(path.is_dir() for path in installed):
        return
    name = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"forwarder-npm-ci-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(path.is_dir() for path in installed):
            return
        run = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--cache", str(directory / ".npm-cache")],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    assert run.returncode == 0, f"npm ci failed (is the npm registry reachable?):\n{run.stderr}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_toml(db: Path, port: int, extra: str = "", portal_extra: str = "") -> str:
    return f"""
[server]
host = "127.0.0.1"
port = {port}
log_format = "json"

[storage]
url = "sqlite:///{db}"

[[sources]]
name = "backend"
write_key = "{SERVER_KEY}"
kind = "server"
portal = "main"

[[sources]]
name = "website"
write_key = "{BROWSER_KEY}"
kind = "browser"
allowed_origins = ["{ORIGIN}"]
portal = "main"

[portals.main]
portal_id = 123456
base_url = "sandbox"
unmapped_events = "auto"
{portal_extra}
{extra}
"""


class ServerProcess:
    """``python -m forwarder serve`` in a subprocess, with its log captured to a file."""

    def __init__(self, tmp: Path, config: str, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.config_path = tmp / "forwarder.toml"
        self.config_path.write_text(config)
        self.log_path = tmp / f"server-{time.monotonic_ns()}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, port: int) -> ServerProcess:
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "forwarder", "serve", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become ready: {self.log_path.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def track(event: str = "Order Completed", **fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "user-1", "event": event, **fields}


SANDBOX_PORTAL_ID = 123456
"""The portal id standalone sandboxes run with in these tests."""


class SandboxProcess:
    """``python -m forwarder sandbox`` on a loopback port; read and script it over HTTP."""

    def __init__(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.proc = proc

    def received_uuids(self) -> Counter[str]:
        body = httpx.get(f"{self.url}/_sandbox/events", timeout=30).json()
        return Counter(e["uuid"] for events in body["received"].values() for e in events)

    def requests(self, route: str = "events.send_batch") -> dict[int, int]:
        """Answers given on one route so far, by status."""
        body = httpx.get(f"{self.url}/_sandbox/requests", timeout=10).json()
        return {int(s): n for s, n in body["byRoute"].get(route, {}).items()}

    def script(self, *faults: dict[str, Any]) -> None:
        response = httpx.post(
            f"{self.url}/_sandbox/faults", json={"faults": list(faults), "replace": True}, timeout=5
        )
        response.raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.url}/_sandbox/faults", timeout=5).raise_for_status()


@contextlib.contextmanager
def sandbox_process(*extra: str) -> Iterator[SandboxProcess]:
    """A sandbox on a free port, killed at the end (hung requests must not delay the test)."""
    port = free_port()
    command = [sys.executable, "-m", "forwarder", "sandbox", "--port", str(port)]
    command += ["--portal-id", str(SANDBOX_PORTAL_ID), *extra]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "sandbox exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_sandbox", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "sandbox did not start"
            time.sleep(0.05)
        yield SandboxProcess(url, proc)
    finally:
        proc.kill()
        proc.wait()


def serve_config(
    storage: Path | str,
    port: int,
    sandbox_url: str,
    *,
    extra: str = "",
    server_extra: str = "",
    max_delay_s: float = 0.1,
) -> str:
    """A server source on one portal delivered to a standalone sandbox at ``sandbox_url``.

    ``storage`` is a SQLite file or a storage URL; ``extra`` goes at the end (portal fields,
    then further tables), ``server_extra`` into ``[server]``.
    """
    url = f"sqlite:///{storage}" if isinstance(storage, Path) else storage
    return f"""
[server]
host = "127.0.0.1"
port = {port}
log_format = "json"
log_requests = false
{server_extra}

[storage]
url = "{url}"

[[sources]]
name = "backend"
write_key = "{SERVER_KEY}"
portal = "main"

[portals.main]
portal_id = {SANDBOX_PORTAL_ID}
base_url = "{sandbox_url}"
access_token = "{DEFAULT_TOKEN}"
unmapped_events = "auto"
max_delay_s = {max_delay_s}
request_timeout_s = 2.0
{extra}
"""
