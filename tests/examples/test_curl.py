"""``examples/curl/requests.sh`` runs against a real server and every answer is as documented."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.examples.conftest import EXAMPLES
from tests.support import SERVER_KEY, ServerProcess

SCRIPT = EXAMPLES / "curl" / "requests.sh"
STEPS = [
    "healthz", "readyz", "identify", "track", "page", "screen", "group", "alias", "batch",
    "short-form", "bearer", "gzip", "duplicate", "rejected", "partly-rejected", "unknown-key",
    "metrics", "delivered-to-sandbox",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("curl") is None, reason="the example needs curl")
def test_curl_script_gets_every_documented_answer(server: ServerProcess) -> None:
    env = {**os.environ, "FORWARDER_URL": server.url, "WRITE_KEY": SERVER_KEY, "RUN_ID": "t1"}
    run = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    done = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("ok ")]
    assert done == STEPS
    assert run.stdout.rstrip().endswith("all answers as documented")
