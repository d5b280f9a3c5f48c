"""The sandbox refuses what HubSpot's own OpenAPI specs refuse, with HubSpot's 400 shape."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from forwarder.sandbox import Sandbox, openapi

from .conftest import EVENT

ROOT = Path(__file__).resolve().parents[2]
REFRESH = ROOT / "scripts" / "refresh-hubspot-specs"

SandboxClient = tuple[Sandbox, httpx.AsyncClient]


async def test_body_the_spec_refuses_gets_hubspots_validation_error_shape(
    sandbox_client: SandboxClient,
) -> None:
    sandbox, client = sandbox_client
    response = await client.post(
        "/events/v3/event-definitions",
        json={"label": "Signup", "name": "signup", "propertyDefinitions": []},
    )
    body = response.json()
    assert response.status_code == 400
    assert body["status"] == "error"
    assert body["category"] == "VALIDATION_ERROR"
    assert body["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
    assert "includeDefaultProperties" in body["message"]
    assert body["errors"] == [
        {
            "message": '"includeDefaultProperties" is a required property',
            "code": "REQUIRED",
            "in": "/",
            "context": {
                "schema": ["ExternalBehavioralEventTypeDefinitionEgg"],
                "keyword": ["required"],
            },
        }
    ]
    assert sandbox.definition("signup") is None


async def test_each_wrong_field_is_reported_with_its_json_pointer(
    sandbox_client: SandboxClient,
) -> None:
    _, client = sandbox_client
    batch = {"inputs": [{"eventName": EVENT, "properties": {"amount": 49.9}}]}
    response = await client.post("/events/v3/send/batch", json=batch)
    assert response.status_code == 400
    # The route is in two v3 spec files (send completions and event definitions): one report.
    assert [e["in"] for e in response.json()["errors"]] == ["/inputs/0/properties/amount"]


@pytest.mark.parametrize(
    ("path", "body", "spec"),
    [
        pytest.param(
            "/events/2026-03/send/batch",
            {"inputs": [{"eventName": EVENT}]},
            "events-send-2026-03.json",
            id="events_2026_03",
        ),
        pytest.param(
            "/events/custom/2026-09/send/batch",
            {"inputs": [{"eventName": EVENT, "properties": {}, "occurredAt": "yesterday"}]},
            "events-send-2026-09.json",
            id="events_2026_09",
        ),
        pytest.param(
            "/crm/objects/2026-03/contacts/batch/read",
            {"inputs": [{"id": "1"}], "properties": []},
            "contacts-2026-03.json",
            id="contacts_2026_03",
        ),
    ],
)
async def test_dated_routes_are_checked_against_their_own_versions_spec(
    sandbox_client: SandboxClient, path: str, body: dict[str, Any], spec: str
) -> None:
    _, client = sandbox_client
    response = await client.post(path, json=body)
    assert response.status_code == 400
    assert spec in response.json()["message"]


async def test_token_form_is_checked_against_the_oauth_spec(
    sandbox_client: SandboxClient,
) -> None:
    _, client = sandbox_client
    response = await client.post(
        "/oauth/v1/token", data={"grant_type": "password", "client_id": "sandbox-client-id"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["in"] == "/grant_type"


async def test_body_that_is_not_json_is_left_to_the_routes_own_decoding(
    sandbox_client: SandboxClient,
) -> None:
    _, client = sandbox_client
    response = await client.post("/events/v3/send/batch", content=b'{"inputs": [')
    assert response.status_code == 400
    assert response.json()["message"].startswith("Invalid input JSON")


def test_literal_segments_win_over_path_parameters() -> None:
    book = openapi.load()
    found = book.find("POST", "/crm/objects/2026-09/contacts/search")
    assert found is not None
    assert found.template == "/crm/objects/2026-09/{objectType}/search"


def test_route_no_spec_defines_is_not_checked() -> None:
    book = openapi.load()
    assert book.find("POST", "/submissions/v3/integration/secure/submit/1/f") is None
    assert book.check("POST", "/submissions/v3/integration/secure/submit/1/f", b"{}") is None


def _spec(required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "required": required, "properties": {}}
    body = {"required": True, "content": {"application/json": {"schema": schema}}}
    return {"openapi": "3.0.1", "paths": {"/things/v1/batch": {"post": {"requestBody": body}}}}


def test_same_route_in_two_spec_files_must_satisfy_both(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_spec(["a"])))
    (tmp_path / "b.json").write_text(json.dumps(_spec(["b"])))
    files = {"a.json": {}, "b.json": {}}
    (tmp_path / "manifest.json").write_text(json.dumps({"files": files}))
    book = openapi.load(tmp_path)
    assert book.check("POST", "/things/v1/batch", b'{"a": 1, "b": 2}') is None
    refused = book.check("POST", "/things/v1/batch", b'{"a": 1}')
    assert refused is not None
    assert [e["message"] for e in refused.errors or []] == ['"b" is a required property']


def test_shipped_spec_files_are_hubspots_unchanged() -> None:
    """Each file hashes to what the refresh script recorded from the collection's commit."""
    manifest = json.loads((openapi.SPECS_DIR / "manifest.json").read_text())
    assert len(manifest["commit"]) == 40
    for name, entry in manifest["files"].items():
        digest = hashlib.sha256((openapi.SPECS_DIR / name).read_bytes()).hexdigest()
        assert (name, digest) == (name, entry["sha256"])


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return done.stdout.decode().strip()


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "git_url"])
def test_refresh_copies_the_manifest_files_and_records_the_commit(
    tmp_path: Path, as_url: bool
) -> None:
    collection = tmp_path / "collection"
    source = collection / "PublicApiSpecs" / "Events" / "v3" / "events.json"
    source.parent.mkdir(parents=True)
    source.write_bytes(json.dumps(_spec(["inputs"])).encode())
    _git(collection, "init", "-q")
    _git(collection, "add", ".")
    identity = ("-c", "user.name=t", "-c", "user.email=t@example.com")
    _git(collection, *identity, "commit", "-q", "-m", "specs")
    specs = tmp_path / "specs"
    specs.mkdir()
    entry = {"path": "PublicApiSpecs/Events/v3/events.json", "sha256": ""}
    (specs / "manifest.json").write_text(json.dumps({"files": {"events-v3.json": entry}}))
    where = collection.as_uri() if as_url else str(collection)
    command = [sys.executable, str(REFRESH), where, "--specs-dir", str(specs)]
    subprocess.run(command, check=True, capture_output=True)
    manifest = json.loads((specs / "manifest.json").read_text())
    assert (specs / "events-v3.json").read_bytes() == source.read_bytes()
    assert manifest["commit"] == _git(collection, "rev-parse", "HEAD")
    assert manifest["files"]["events-v3.json"]["sha256"] == (
        hashlib.sha256(source.read_bytes()).hexdigest()
    )


def test_refresh_from_a_missing_commit_is_one_clear_line(tmp_path: Path) -> None:
    collection = tmp_path / "collection"
    collection.mkdir()
    _git(collection, "init", "-q")
    command = [sys.executable, str(REFRESH), str(collection), "--specs-dir", str(tmp_path)]
    (tmp_path / "manifest.json").write_text(json.dumps({"files": {}}))
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("refresh-hubspot-specs: git failed:")
    assert len(done.stderr.strip().splitlines()) == 1
