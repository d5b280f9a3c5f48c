"""``examples/kubernetes``: the manifest agrees with the code it runs."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from forwarder.config import load_settings
from tests.examples.conftest import EXAMPLES
from tests.support import ServerProcess, free_port

MANIFEST = EXAMPLES / "kubernetes" / "forwarder.yaml"
SECRETS = {
    "BACKEND_WRITE_KEY": "k8s_backend_key_0123456789",
    "HUBSPOT_TOKEN": "pat-na1-test-token",
    "FORWARDER_ADMIN_TOKEN": "admin-token-0123456789",
}


def documents() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text())}


def container() -> dict[str, Any]:
    spec = documents()["Deployment"]["spec"]["template"]["spec"]
    first: dict[str, Any] = spec["containers"][0]
    return first


def config_text() -> str:
    text: str = documents()["ConfigMap"]["data"]["forwarder.toml"]
    return text


def test_configmap_holds_a_valid_config(tmp_path: Path) -> None:
    path = tmp_path / "forwarder.toml"
    path.write_text(config_text())
    settings = load_settings(path, env=SECRETS)
    assert settings.storage.url == "sqlite:////data/forwarder.db"
    assert settings.portals["main"].base_url == "https://api.hubapi.com"


def test_probes_and_grace_period_match_the_server(tmp_path: Path) -> None:
    path = tmp_path / "forwarder.toml"
    path.write_text(config_text())
    settings = load_settings(path, env=SECRETS)
    c = container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["ports"][0]["containerPort"] == settings.server.port
    pre_stop_s = 5  # the preStop sleep
    assert "time.sleep(5)" in " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    grace = documents()["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= pre_stop_s + settings.server.shutdown_deadline_s + 5
    assert documents()["Deployment"]["spec"]["replicas"] == 1  # SQLite: one writer
    assert documents()["Deployment"]["spec"]["strategy"]["type"] == "Recreate"


def test_probe_paths_answer_and_sigterm_exits_cleanly(tmp_path: Path) -> None:
    """The ConfigMap's config on a real server (HubSpot swapped for the sandbox by env)."""
    port = free_port()
    env = {
        **SECRETS,
        "FORWARDER_SERVER_HOST": "127.0.0.1",
        "FORWARDER_SERVER_PORT": str(port),
        "FORWARDER_STORAGE_URL": f"sqlite:///{tmp_path / 'forwarder.db'}",
        "FORWARDER_PORTALS_MAIN_BASE_URL": "sandbox",
    }
    server = ServerProcess(tmp_path, config_text(), env=env).start(port)
    try:
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}
        assert server.proc is not None
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not stop the server within the grace period")
        # uvicorn re-raises the signal after its graceful shutdown: "terminated by SIGTERM".
        assert code in (0, -signal.SIGTERM), server.log()
        assert time.monotonic() - started < 25  # preStop is not part of this; deadline 20 s
    finally:
        server.stop()
