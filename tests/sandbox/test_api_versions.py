"""Every API version routed with its own semantics; a sunset version refused; service keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from forwarder.sandbox import Sandbox
from tests.sandbox.conftest import event

Build = Callable[..., tuple[Sandbox, httpx.AsyncClient]]
SEND = {
    "v3": "/events/v3/send/batch",
    "2026-03": "/events/2026-03/send/batch",
    "2026-09": "/events/custom/2026-09/send/batch",
}


async def test_every_version_sends_custom_events(make_client: Build) -> None:
    sandbox, client = make_client()
    async with client:
        for path in SEND.values():
            response = await client.post(path, json={"inputs": [event()]})
            assert response.status_code == 204, (path, response.text)
    assert len(sandbox.received_events()) == 3
    assert dict(sandbox.versions) == {"v3": 1, "2026-03": 1, "2026-09": 1}


async def test_sunset_version_is_refused_and_dated_paths_are_not(make_client: Build) -> None:
    sandbox, client = make_client(unsupported_versions=("v3",))
    async with client:
        refused = await client.post(SEND["v3"], json={"inputs": [event()]})
        read = await client.post("/crm/v3/objects/contacts/batch/read", json={"inputs": []})
        dated = await client.post(SEND["2026-03"], json={"inputs": [event()]})

    assert refused.status_code == 410
    assert refused.json()["category"] == "UNSUPPORTED_API_VERSION"
    assert "correlationId" in refused.json()
    assert read.status_code == 410
    assert dated.status_code == 204
    assert len(sandbox.received_events()) == 1


async def test_sunset_of_v3_leaves_apis_without_a_dated_version_alone(make_client: Build) -> None:
    _, client = make_client(unsupported_versions=("v3", "v1"))
    async with client:
        token = await client.post(
            "/oauth/v1/token",
            data={"grant_type": "refresh_token", "client_id": "x", "client_secret": "y"},
        )
    assert token.status_code != 410


async def test_2026_09_contact_create_without_a_required_property_is_refused(
    make_client: Build,
) -> None:
    sandbox, client = make_client(required_contact_properties=("firstname",))
    body = {"inputs": [{"properties": {"email": "a@example.com"}, "associations": []}]}
    async with client:
        refused = await client.post("/crm/objects/2026-09/contacts/batch/create", json=body)
        before_rules = await client.post("/crm/objects/2026-03/contacts/batch/create", json=body)

    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["code"] == "MISSING_REQUIRED_PROPERTY"
    assert error["context"] == {"propertyName": ["firstname"]}
    assert before_rules.status_code == 201
    assert len(sandbox.contacts.by_id) == 1


async def test_2026_09_upsert_of_an_existing_contact_needs_no_creation_fields(
    make_client: Build,
) -> None:
    sandbox, client = make_client(required_contact_properties=("firstname",))
    sandbox.add_contact({"email": "a@example.com", "firstname": "A"})
    upsert = {"inputs": [{"id": "a@example.com", "idProperty": "email", "properties": {}}]}
    async with client:
        response = await client.post("/crm/objects/2026-09/contacts/batch/upsert", json=upsert)
    assert response.status_code == 200, response.text


def occurrence(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "eventTypeName": "1001",
        "id": f"occ-{i}",
        "email": f"p{i}@example.com",
        "properties": {"petName": f"pet{i}"},
        **fields,
    }


APP_EVENTS = "/integrators/timeline/2026-03/events/batch"


async def test_dated_timeline_batch_accepts_all_with_200(make_client: Build) -> None:
    sandbox, client = make_client()
    async with client:
        response = await client.post(APP_EVENTS, json={"inputs": [occurrence(1), occurrence(2)]})
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == ["occ-1", "occ-2"]
    assert len(sandbox.timeline.events) == 2


async def test_dated_timeline_batch_with_one_bad_input_accepts_none(make_client: Build) -> None:
    sandbox, client = make_client()
    bad = occurrence(2, properties={"unknown": "x"})
    async with client:
        response = await client.post(APP_EVENTS, json={"inputs": [occurrence(1), bad]})
    assert response.status_code == 400
    assert "none were accepted" in response.json()["message"]
    assert sandbox.timeline.events == {}


async def test_dated_timeline_batch_with_an_existing_occurrence_accepts_none(
    make_client: Build,
) -> None:
    sandbox, client = make_client()
    async with client:
        await client.post(APP_EVENTS, json={"inputs": [occurrence(1)]})
        again = await client.post(APP_EVENTS, json={"inputs": [occurrence(2), occurrence(1)]})
    assert again.status_code == 409
    assert list(sandbox.timeline.events) == [("1001", "occ-1")]


async def test_service_key_authenticates_as_its_own_app(make_client: Build) -> None:
    key = "svc-0123456789"
    _, client = make_client(service_keys={key: ("analytics.behavioral_events.send",)})
    async with client:
        sent = await client.post(
            SEND["2026-03"], json={"inputs": [event()]}, headers={"Authorization": f"Bearer {key}"}
        )
        no_scope = await client.get(
            "/events/2026-03/event-definitions", headers={"Authorization": f"Bearer {key}"}
        )
    assert sent.status_code == 204
    assert no_scope.status_code == 403
    assert no_scope.json()["category"] == "MISSING_SCOPES"


async def test_contact_properties_are_listed_on_every_version(make_client: Build) -> None:
    _, client = make_client(contact_properties=("plan_tier",))
    async with client:
        for path in (
            "/crm/v3/properties/contacts",
            "/crm/properties/2026-03/contacts",
            "/crm/properties/2026-09/contacts",
        ):
            response = await client.get(path)
            assert response.status_code == 200
            names = {p["name"] for p in response.json()["results"]}
            assert {"email", "plan_tier"} <= names
