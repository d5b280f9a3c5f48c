"""A real ``forwarder serve`` on loopback for the examples, and a way to wait on the sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support import ServerProcess, config_toml, free_port

EXAMPLES = Path(__file__).parents[2] / "examples"
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``forwarder serve`` with a server source, a browser source and a sandbox portal, shared
    by the tests of a module (each uses its own user ids)."""
    tmp_path = tmp_path_factory.mktemp("forwarder")
    port = free_port()
    proc = ServerProcess(tmp_path, config_toml(tmp_path / "forwarder.db", port)).start(port)
    try:
        yield proc
    finally:
        proc.stop()


def wait_for(probe: Callable[[], T | None], *, what: str, timeout_s: float = 15.0) -> T:
    """Poll ``probe`` until it returns something truthy (delivery is asynchronous)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def sandbox_events(url: str) -> dict[str, list[dict[str, Any]]]:
    """What the in-process sandbox received, by HubSpot event name."""
    body: dict[str, Any] = httpx.get(f"{url}/sandbox/_sandbox/events", timeout=5).json()
    received: dict[str, list[dict[str, Any]]] = body["received"]
    return received
