"""Schemathesis against our own OpenAPI document: no input makes the API answer 5xx.

Runs against a real ``forwarder serve`` on loopback. Bodies come from the published request
schemas (and what violates them), plus schemathesis' coverage phase (unexpected methods,
edge values); every answer must be below 500 and every refusal a JSON reason. The server must
be ready afterwards.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from tests.support import SERVER_KEY, ServerProcess, config_toml, free_port

schemathesis = pytest.importorskip("schemathesis")

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{SERVER_KEY}:".encode()).decode()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    proc = ServerProcess(tmp, config_toml(tmp / "f.db", port)).start(port)
    yield proc
    assert httpx.get(f"{proc.url}/readyz", timeout=5).status_code == 200
    proc.stop()


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json").include(
        path_regex=r"^/v1/"
    )


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_ingest_api_never_answers_5xx(case: Any) -> None:
    response = case.call(headers=AUTH)
    assert response.status_code < 500, (response.status_code, response.text, case.method)
    if response.status_code >= 400 and response.status_code not in (404, 405):
        body = response.json()
        assert body["success"] is False
        assert body["error"]
