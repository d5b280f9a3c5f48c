"""Test support: settings builders and a real ``forwarder serve`` process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

SERVER_KEY = "srv_test_key_0123456789"
BROWSER_KEY = "pub_test_key_0123456789"
ORIGIN = "https://www.example.com"


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
        log = self.log_path.open("wb")
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
