"""A table of invalid requests, each answered with the status and body the reference documents."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from forwarder.sandbox import Sandbox

from .conftest import EVENT, event

Case = tuple[str, str, dict[str, Any], dict[str, str] | None, int, str]

CASES: list[Any] = [
    pytest.param(
        "/events/v3/send",
        "POST",
        event(eventName="purchase"),
        None,
        400,
        "VALIDATION_ERROR",
        id="event_name_not_fully_qualified",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(eventName="pe1_purchase"),
        None,
        400,
        "VALIDATION_ERROR",
        id="event_name_of_another_portal",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(email=None),
        None,
        400,
        "VALIDATION_ERROR",
        id="missing_identity",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(properties={f"p{i}": "x" for i in range(51)}),
        None,
        400,
        "VALIDATION_ERROR",
        id="fifty_one_properties",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(properties={"nope": "x"}),
        None,
        400,
        "VALIDATION_ERROR",
        id="property_not_on_definition",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(properties={"Amount": "1"}),
        None,
        400,
        "VALIDATION_ERROR",
        id="property_name_not_lowercase",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(properties={"amount": "x" * 257}),
        None,
        400,
        "VALIDATION_ERROR",
        id="value_over_256_characters",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(properties={"page_url": "x" * 1025}),
        None,
        400,
        "VALIDATION_ERROR",
        id="url_value_over_1024_characters",
    ),
    pytest.param(
        "/events/v3/send/batch",
        "POST",
        {"inputs": [event() for _ in range(501)]},
        None,
        400,
        "VALIDATION_ERROR",
        id="batch_of_501_inputs",
    ),
    pytest.param(
        "/crm/v3/objects/contacts/batch/read",
        "POST",
        {
            "inputs": [{"id": str(i)} for i in range(101)],
            "properties": [],
            "propertiesWithHistory": [],
        },
        None,
        400,
        "VALIDATION_ERROR",
        id="contacts_batch_of_101",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(),
        {"Authorization": "Bearer wrong"},
        401,
        "INVALID_AUTHENTICATION",
        id="bad_token",
    ),
    pytest.param(
        "/events/v3/send",
        "POST",
        event(),
        {"Authorization": ""},
        401,
        "INVALID_AUTHENTICATION",
        id="no_token",
    ),
]


@pytest.mark.parametrize(("path", "method", "body", "headers", "status", "category"), CASES)
async def test_invalid_request_gets_documented_error(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
    path: str,
    method: str,
    body: dict[str, Any],
    headers: dict[str, str] | None,
    status: int,
    category: str,
) -> None:
    sandbox, client = sandbox_client
    response = await client.request(method, path, json=body, headers=headers)
    payload = response.json()
    assert (status, category, "error") == (
        response.status_code,
        payload["category"],
        payload["status"],
    )
    assert payload["correlationId"] == response.headers["X-HubSpot-Correlation-Id"]
    assert sandbox.received_events() == []


async def test_duplicate_uuid_is_rejected_when_configured(make_client: Any) -> None:
    sandbox, client = make_client(duplicate_uuid="reject")
    async with client:
        first = await client.post("/events/v3/send", json=event(uuid="u-1"))
        second = await client.post("/events/v3/send", json=event(uuid="u-1"))
    assert (first.status_code, second.status_code) == (204, 400)
    assert second.json()["category"] == "VALIDATION_ERROR"
    assert [e.uuid for e in sandbox.received_events(EVENT)] == ["u-1"]
    assert [e.uuid for e in sandbox.duplicate_events] == ["u-1"]


async def test_duplicate_uuid_is_dropped_silently_by_default(make_client: Any) -> None:
    sandbox, client = make_client()
    async with client:
        await client.post("/events/v3/send", json=event(uuid="u-1"))
        second = await client.post("/events/v3/send", json=event(uuid="u-1"))
    assert second.status_code == 204
    assert len(sandbox.received_events(EVENT)) == 1


async def test_missing_scope_gets_403_with_required_granular_scopes(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = sandbox_client
    sandbox.add_token("pat-na1-contacts-only", ["crm.objects.contacts.read"])
    response = await client.post(
        "/events/v3/send", json=event(), headers={"Authorization": "Bearer pat-na1-contacts-only"}
    )
    body = response.json()
    assert response.status_code == 403
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == [
        "analytics.behavioral_events.send"
    ]


async def test_batch_with_one_bad_input_is_rejected_whole(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = sandbox_client
    response = await client.post(
        "/events/v3/send/batch", json={"inputs": [event(), event(email=None)]}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["in"] == "inputs[1]"
    assert sandbox.received_events() == []


async def test_batch_with_one_bad_input_keeps_the_valid_ones_when_configured(
    make_client: Any,
) -> None:
    sandbox, client = make_client(batch_with_bad_input="accept_valid")
    async with client:
        response = await client.post(
            "/events/v3/send/batch", json={"inputs": [event(), event(email=None)]}
        )
    assert response.status_code == 204
    assert len(sandbox.received_events()) == 1


async def test_contact_upsert_with_duplicate_ids_is_rejected(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    _, client = sandbox_client
    same = {"id": "a@example.com", "idProperty": "email", "properties": {"firstname": "A"}}
    response = await client.post(
        "/crm/v3/objects/contacts/batch/upsert", json={"inputs": [same, same]}
    )
    assert response.status_code == 400
    assert response.json()["context"] == {"ids": ["a@example.com"]}


async def test_contact_create_with_existing_email_is_a_conflict(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = sandbox_client
    existing = sandbox.add_contact({"email": "a@example.com"})
    response = await client.post(
        "/crm/v3/objects/contacts/batch/create",
        json={"inputs": [{"properties": {"email": "A@example.com"}, "associations": []}]},
    )
    assert response.status_code == 409
    assert response.json()["message"] == f"Contact already exists. Existing ID: {existing}"


async def test_unknown_contact_property_is_rejected(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    _, client = sandbox_client
    response = await client.post(
        "/crm/v3/objects/contacts/batch/create",
        json={"inputs": [{"properties": {"testproperty": "x"}, "associations": []}]},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
