"""Scripted faults: statuses, partial 207s, latency and hangs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from forwarder.sandbox import FaultSpec, Sandbox

from .conftest import event


async def test_next_n_requests_fail_with_the_scripted_status(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = sandbox_client
    sandbox.script_faults(FaultSpec(route="events.send", status=503, count=2))
    statuses = [(await client.post("/events/v3/send", json=event())).status_code for _ in range(3)]
    assert statuses == [503, 503, 204]
    assert len(sandbox.received_events()) == 1


async def test_faults_can_be_scripted_over_http(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    _, client = sandbox_client
    script = {"faults": [{"route": "events", "status": 429, "count": 1, "retryAfterS": 3}]}
    armed = await client.post("/_sandbox/faults", json=script)
    response = await client.post("/events/v3/send/batch", json={"inputs": [event()]})
    assert armed.status_code == 200
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["policyName"] == "TEN_SECONDLY_ROLLING"


async def test_partial_failure_fault_gives_207_with_object_not_found(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = sandbox_client
    ids = [sandbox.add_contact({"email": f"{i}@example.com"}) for i in range(3)]
    sandbox.script_faults(FaultSpec(route="contacts.batch_read", partial_failures=1, count=1))
    response = await client.post(
        "/crm/v3/objects/contacts/batch/read",
        json={
            "inputs": [{"id": i} for i in ids],
            "properties": ["email"],
            "propertiesWithHistory": [],
        },
    )
    body = response.json()
    assert response.status_code == 207
    assert body["errors"][0]["context"]["ids"] == [ids[0]]
    assert len(body["results"]) == 2


async def test_hanging_request_ends_on_reset(
    sandbox_client: tuple[Sandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = sandbox_client
    sandbox.script_faults(FaultSpec(route="events.send", hang=True, count=1))
    pending = asyncio.ensure_future(client.post("/events/v3/send", json=event()))
    await asyncio.sleep(0.1)
    assert not pending.done()
    sandbox.reset()
    response = await asyncio.wait_for(pending, 2.0)
    assert response.status_code == 204  # answered normally once released


async def test_random_error_rate_fails_some_requests(make_client: Any) -> None:
    sandbox, client = make_client()
    sandbox.script_faults(FaultSpec(route="*", status=500, error_rate=0.5))
    async with client:
        statuses = [
            (await client.post("/events/v3/send", json=event())).status_code for _ in range(40)
        ]
    assert {204, 500} == set(statuses)
