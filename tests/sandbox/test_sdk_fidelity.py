"""HubSpot's own Python SDK, pointed at the sandbox on a loopback port, parses every answer."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.timeline import TimelineEvent
from hubspot.events.send import (
    BatchedBehavioralEventHttpCompletionRequest,
    BehavioralEventHttpCompletionRequest,
)
from hubspot.events.send.exceptions import ApiException as EventsApiException

from forwarder.sandbox import DEFAULT_TOKEN, Sandbox, SandboxConfig, create_sandbox_app

from .conftest import EVENT, SEEDS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(SandboxConfig(seed_definitions=SEEDS, seed_templates={"1001": ("petName",)}))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_sandbox_app(sandbox=sandbox), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield sandbox, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def sdk(served: tuple[Sandbox, str]) -> tuple[Sandbox, Any]:
    sandbox, host = served
    sandbox.reset()
    return sandbox, HubSpot(access_token=DEFAULT_TOKEN, host=host)


def test_sdk_sends_a_custom_event(sdk: tuple[Sandbox, Any]) -> None:
    sandbox, client = sdk
    request = BehavioralEventHttpCompletionRequest(
        event_name=EVENT, email="jane@example.com", uuid="u-1", properties={"amount": "1"}
    )
    client.events.send.basic_api.send(behavioral_event_http_completion_request=request)
    assert [e.uuid for e in sandbox.received_events(EVENT)] == ["u-1"]


def test_sdk_sends_a_batch_of_custom_events(sdk: tuple[Sandbox, Any]) -> None:
    sandbox, client = sdk
    inputs = [
        BehavioralEventHttpCompletionRequest(event_name=EVENT, utk=f"{i:032x}", properties={})
        for i in range(3)
    ]
    batch = BatchedBehavioralEventHttpCompletionRequest(inputs=inputs)
    client.events.send.batch_api.send(batched_behavioral_event_http_completion_request=batch)
    assert len(sandbox.received_events(EVENT)) == 3


def test_sdk_parses_a_custom_event_validation_error(sdk: tuple[Sandbox, Any]) -> None:
    _, client = sdk
    request = BehavioralEventHttpCompletionRequest(event_name="pe1_nope", properties={})
    api = client.events.send.basic_api
    with pytest.raises(EventsApiException) as caught:
        api.send(behavioral_event_http_completion_request=request)
    error = api.api_client._ApiClient__deserialize(json.loads(caught.value.body), "Error")
    assert (caught.value.status, error.category) == (400, "VALIDATION_ERROR")
    assert error.correlation_id == caught.value.headers["X-HubSpot-Correlation-Id"]


def test_sdk_upserts_then_batch_reads_contacts(sdk: tuple[Sandbox, Any]) -> None:
    _, client = sdk
    upsert = BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[
            SimplePublicObjectBatchInputUpsert(
                id="jane@example.com", id_property="email", properties={"firstname": "Jane"}
            )
        ]
    )
    written = client.crm.contacts.batch_api.upsert(
        batch_input_simple_public_object_batch_input_upsert=upsert
    )
    read = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id="jane@example.com"), SimplePublicObjectId(id="x@y.z")],
        properties=["firstname"],
        properties_with_history=[],
        id_property="email",
    )
    found = client.crm.contacts.batch_api.read(batch_read_input_simple_public_object_id=read)
    assert written.results[0].new is True
    assert found.results[0].properties["firstname"] == "Jane"
    assert found.errors[0].context == {"ids": ["x@y.z"]}


def test_sdk_searches_contacts(sdk: tuple[Sandbox, Any]) -> None:
    sandbox, client = sdk
    sandbox.add_contact({"email": "a@example.com", "firstname": "A"})
    sandbox.add_contact({"email": "b@example.com"})
    # The SDK sends only the fields given; HubSpot's spec requires all five.
    request = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "firstname", "operator": "HAS_PROPERTY"}]}],
        properties=["email"],
        limit=10,
        after="0",
        sorts=[],
    )
    page = client.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert (page.total, page.results[0].properties["email"]) == (1, "a@example.com")


def test_sdk_parses_a_search_limit_error(sdk: tuple[Sandbox, Any]) -> None:
    _, client = sdk
    request = PublicObjectSearchRequest(
        filter_groups=[], properties=[], limit=201, after="0", sorts=[]
    )
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert caught.value.status == 400


def test_sdk_creates_a_timeline_event(sdk: tuple[Sandbox, Any]) -> None:
    sandbox, client = sdk
    event = TimelineEvent(
        event_template_id="1001", email="pet@example.com", tokens={"petName": "Art3mis"}, id="e-1"
    )
    created = client.crm.timeline.events_api.create(timeline_event=event)
    assert (created.id, created.object_type) == ("e-1", "contacts")
    assert len(sandbox.timeline_events()) == 1


def test_sdk_refreshes_a_token_and_uses_it(
    sdk: tuple[Sandbox, Any], served: tuple[Sandbox, str]
) -> None:
    _, client = sdk
    config = SandboxConfig()
    tokens = client.oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id=config.client_id,
        client_secret=config.client_secret,
        refresh_token=config.refresh_token,
    )
    oauth_client = HubSpot(access_token=tokens.access_token, host=served[1])
    request = BehavioralEventHttpCompletionRequest(
        event_name=EVENT, email="jane@example.com", properties={}
    )
    oauth_client.events.send.basic_api.send(behavioral_event_http_completion_request=request)
    assert tokens.expires_in == 1800


def test_sdk_sees_bad_refresh_token(sdk: tuple[Sandbox, Any]) -> None:
    _, client = sdk
    config = SandboxConfig()
    from hubspot.oauth.exceptions import ApiException as OAuthApiException

    with pytest.raises(OAuthApiException) as caught:
        client.oauth.tokens_api.create(
            grant_type="refresh_token",
            client_id=config.client_id,
            client_secret=config.client_secret,
            refresh_token="stale",
        )
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["status"] == "BAD_REFRESH_TOKEN"
