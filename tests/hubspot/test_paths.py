"""One table of paths per API version, and nothing else in the package spelling a path."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import httpx
import msgspec
import pytest

from forwarder.config import PortalSettings, Secret
from forwarder.hubspot.auth import StaticToken
from forwarder.hubspot.client import HubSpotClient
from forwarder.hubspot.definitions import new_definition, new_property
from forwarder.hubspot.models import (
    AppEventOccurrence,
    CreateInput,
    EventCompletion,
    TimelineEvent,
    UpdateInput,
    UpsertInput,
)
from forwarder.hubspot.paths import API_VERSIONS, PATHS, paths_for

PACKAGE = Path(__file__).resolve().parents[2] / "forwarder"
PATH_LITERAL = re.compile(
    r"""["']/(events|crm|integrators|oauth|submissions|account-info)(/[a-z-]+)*/(v\d+|\d{4}-\d{2})/"""
)
"""A quoted HubSpot API path with a version segment (``"/crm/v3/..."``, ``"/events/2026-03"``)."""
DEFINITION = {"id": "1", "name": "x", "fullyQualifiedName": "pe1_x", "properties": []}


def test_no_hubspot_path_literal_outside_the_path_table() -> None:
    """The sandbox is exempt: it is HubSpot, written from the reference, not our client."""
    assert PATH_LITERAL.search('x = "/integrators/timeline/2026-03/events/batch"')
    assert PATH_LITERAL.search("'/crm/v3/objects/contacts'")
    assert not PATH_LITERAL.search('"/events/stream"')  # the debugger's own API
    offenders = []
    for source in PACKAGE.rglob("*.py"):
        relative = source.relative_to(PACKAGE).as_posix()
        if relative.startswith("sandbox/") or relative == "hubspot/paths.py":
            continue
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            if PATH_LITERAL.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == []


def test_every_version_has_a_table_and_2026_03_is_the_default() -> None:
    assert set(PATHS) == set(API_VERSIONS) == {"v3", "2026-03", "2026-09"}
    configurable = typing.get_args(typing.get_type_hints(PortalSettings)["api_version"])
    assert set(configurable) == set(API_VERSIONS)
    assert HubSpotClient("https://x", StaticToken(Secret("t"))).paths.version == "2026-03"


def test_dated_versions_use_the_paths_of_hubspots_spec_collection() -> None:
    assert paths_for("2026-03").events_send_batch == "/events/2026-03/send/batch"
    assert paths_for("2026-09").events_send_batch == "/events/custom/2026-09/send/batch"
    assert (
        paths_for("2026-09").contacts_batch_upsert == "/crm/objects/2026-09/contacts/batch/upsert"
    )
    assert paths_for("2026-03").timeline_batch == "/integrators/timeline/2026-03/events/batch"
    assert paths_for("v3").contacts_search == "/crm/v3/objects/contacts/search"


def _answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/event-definitions") and request.method == "GET":
        return httpx.Response(200, json={"results": [DEFINITION]})
    if path.endswith("/event-definitions"):
        return httpx.Response(201, json=DEFINITION)
    if path.endswith("/property"):
        return httpx.Response(201, json={"name": "p"})
    return httpx.Response(200, json={"results": []})


@pytest.mark.parametrize("version", API_VERSIONS)
async def test_client_makes_every_call_on_its_configured_version(version: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return _answer(request)

    paths = paths_for(version)
    client = HubSpotClient(
        "https://api.test",
        StaticToken(Secret("t")),
        transport=httpx.MockTransport(handler),
        paths=paths,
    )
    await client.send_event_batch([EventCompletion("pe1_x", {}, "u")])
    if paths.dated_timeline:
        await client.send_app_events([AppEventOccurrence("t", "i", {}, email="a@b.c")])
    else:
        await client.create_timeline_batch([TimelineEvent("1", "i", {}, email="a@b.c")])
    await client.batch_read_contacts(["a@b.c"], id_property="email", properties=[])
    await client.batch_upsert_contacts([UpsertInput("a@b.c", "email", {})])
    await client.batch_update_contacts([UpdateInput("1", {})])
    await client.batch_create_contacts([CreateInput({}, associations=[])])
    await client.search_contacts([], [])
    await client.list_event_definitions()
    await client.create_event_definition(new_definition("pe1_x", []))
    await client.create_event_property("pe1_x", new_property("p"))
    await client.list_contact_properties()
    await client.aclose()

    assert len(seen) == 11
    # 2026-09 has no timeline API in HubSpot's spec collection: the newest (2026-03) is used.
    expected = {version, "2026-03"} if version == "2026-09" else {version}
    assert {segment for p in seen for segment in p.split("/") if segment in PATHS} == expected
    assert [p for p in seen if version not in p] == (
        [paths.timeline_batch] if version == "2026-09" else []
    )


def test_dated_timeline_occurrence_is_named_by_type_with_properties() -> None:
    body = AppEventOccurrence("order_placed", "i1", {"amount": "5"}, email="a@b.c")
    assert json.loads(msgspec.json.encode(body)) == {
        "eventTypeName": "order_placed",
        "id": "i1",
        "properties": {"amount": "5"},
        "email": "a@b.c",
    }
