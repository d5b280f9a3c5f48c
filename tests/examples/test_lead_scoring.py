"""``examples/lead-scoring``: the job's scores land on HubSpot contacts, with the example config.

The example's ``forwarder.toml`` is used as written; only the port, the SQLite path and the
``${VAR}``s come from the environment. HubSpot is the example's ``sandbox.py`` (the simulator
with the custom contact properties defined) on a loopback port.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.examples.conftest import EXAMPLES, wait_for
from tests.support import ServerProcess, free_port

EXAMPLE = EXAMPLES / "lead-scoring"
WRITE_KEY = "lead_scoring_test_key_0123"
SANDBOX_TOKEN = "pat-na1-sandbox-token"  # the simulator's default private-app token


def load_job() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lead_scoring_job", EXAMPLE / "score.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hubspot(tmp_path: Path) -> Iterator[str]:
    """The example's ``sandbox.py`` on a free port."""
    port = free_port()
    log = (tmp_path / "sandbox.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "sandbox.py"), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/_sandbox", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def contacts(hubspot: str) -> dict[str, dict[str, Any]]:
    results = httpx.get(f"{hubspot}/_sandbox/contacts", timeout=5).json()["results"]
    return {c["properties"]["email"]: c["properties"] for c in results}


def test_lead_scores_become_contact_properties(tmp_path: Path, hubspot: str) -> None:
    port = free_port()
    env = {
        "FORWARDER_SERVER_PORT": str(port),
        "FORWARDER_STORAGE_URL": f"sqlite:///{tmp_path / 'lead-scoring.db'}",
        "LEAD_SCORING_WRITE_KEY": WRITE_KEY,
        "HUBSPOT_BASE_URL": hubspot,
        "HUBSPOT_TOKEN": SANDBOX_TOKEN,
    }
    config = (EXAMPLE / "forwarder.toml").read_text()
    server = ServerProcess(tmp_path, config, env=env).start(port)
    try:
        job = subprocess.run(
            [sys.executable, str(EXAMPLE / "score.py")],
            env={**os.environ, "FORWARDER_URL": server.url, "FORWARDER_WRITE_KEY": WRITE_KEY},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert job.returncode == 0, job.stdout + job.stderr
        assert "accepted 6, duplicates 0" in job.stdout
        scoring = load_job()
        with (EXAMPLE / "usage.csv").open(newline="") as f:
            expected = {
                row["email"]: (str(scoring.score(row)), scoring.band(scoring.score(row)))
                for row in csv.DictReader(f)
            }

        def all_scored() -> dict[str, dict[str, Any]] | None:
            found = contacts(hubspot)
            return found if len(found) == len(expected) else None

        stored = wait_for(all_scored, what="one contact per scored user")
        got = {e: (p["lead_score"], p["lead_score_band"]) for e, p in stored.items()}
        assert got == expected
        assert got["margaret@example.com"] == ("100", "hot")
        assert got["barbara@example.com"][1] == "cold"
    finally:
        server.stop()
