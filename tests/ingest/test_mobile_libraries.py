"""Batches exactly as analytics-kotlin and analytics-swift upload them, to a real server.

Written from the libraries' sources (segmentio/analytics-kotlin ``HTTPClient.kt``,
``StorageImpl.kt``; segmentio/analytics-swift ``HTTPClient.swift``, ``DirectoryStore.swift``):
both post a file of events to ``https://{apiHost}/b`` with no Authorization header, the write
key in the body. Kotlin's file is ``{"batch":[e1,e2],"sentAt":...,"writeKey":...}`` sent
gzipped and chunked as ``text/plain``; Swift's is ``{ "batch": [\\ne1\\n,e2\\n],...}\\n`` as
JSON. ``sentAt`` is written when the file is closed, and a retry sends the same file again
(same messageIds, same ``sentAt``) with ``X-Retry-Count``.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Forwarder, wait_for
from tests.support import SERVER_KEY, ServerProcess, config_toml, free_port

KOTLIN_HEADERS = {
    "Content-Type": "text/plain",
    "Content-Encoding": "gzip",
    "User-Agent": "analytics-kotlin/1.24.1",
}
SWIFT_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "User-Agent": "analytics-ios/1.9.4",
    "Accept-Encoding": "gzip",
}


@pytest.fixture(scope="module")
def forwarder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forwarder]:
    tmp = tmp_path_factory.mktemp("mobile")
    db = tmp / "forwarder.db"
    port = free_port()
    proc = ServerProcess(tmp, config_toml(db, port)).start(port)
    yield Forwarder(proc, db)
    proc.stop()


def instant(moment: datetime) -> str:
    """``SegmentInstant`` (Kotlin) and ``ISO8601DateFormatter`` with fractions (Swift)."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def mobile_event(kind: str, library: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """One event as the libraries serialise it (their defaults included)."""
    return {
        "type": kind,
        "messageId": str(uuid.uuid4()),
        "anonymousId": fields.pop("anonymousId"),
        "integrations": {},
        "context": {
            "app": {"name": "Shop", "version": "3.2.1", "namespace": "com.example.shop"},
            "device": {"manufacturer": "Google", "model": "Pixel 8", "type": library},
            "library": {"name": f"analytics-{library}", "version": "1.24.1"},
            "os": {"name": library, "version": "14"},
            "locale": "en-US",
            "timezone": "Europe/Paris",
            "instanceId": "6c8e2b8a-0f5e-4f0e-9a55-3b0f3c0c4b1d",
        },
        **fields,
        "_metadata": {"bundled": [], "unbundled": [], "bundledIds": []},
        "timestamp": instant(at),
    }


def kotlin_file(events: list[dict[str, Any]], sent_at: datetime) -> bytes:
    lines = ",".join(json.dumps(e, separators=(",", ":")) for e in events)
    tail = f'],"sentAt":"{instant(sent_at)}","writeKey":"{SERVER_KEY}"}}'
    return ('{"batch":[' + lines + tail).encode()


def swift_file(events: list[dict[str, Any]], sent_at: datetime) -> bytes:
    lines = "\n,".join(json.dumps(e, separators=(",", ":")) for e in events)
    tail = f'\n],"sentAt":"{instant(sent_at)}","writeKey":"{SERVER_KEY}"}}\n'
    return ('{ "batch": [\n' + lines + tail).encode()


def upload_kotlin(forwarder: Forwarder, body: bytes, retry: int = 0) -> httpx.Response:
    """gzip through a chunked stream, as OkHttp sends ``setChunkedStreamingMode(0)``."""
    compressed = gzip.compress(body)
    headers = KOTLIN_HEADERS | ({"X-Retry-Count": str(retry)} if retry else {})
    chunks = iter([compressed[:100], compressed[100:]])
    return httpx.post(f"{forwarder.url}/v1/b", content=chunks, headers=headers)


def upload_swift(forwarder: Forwarder, body: bytes, retry: int = 0) -> httpx.Response:
    headers = SWIFT_HEADERS | ({"X-Retry-Count": str(retry)} if retry else {})
    return httpx.post(f"{forwarder.url}/v1/b", content=body, headers=headers)


def delivered(forwarder: Forwarder, event: str) -> list[dict[str, Any]]:
    name = "pe123456_" + event.lower().replace(" ", "_")
    answer = httpx.get(f"{forwarder.url}/sandbox/_sandbox/events", params={"eventName": name})
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["received"].get(name, [])
    return found


def session(library: str, at: datetime) -> tuple[str, str, list[dict[str, Any]]]:
    """An app session: a screen, who the user is, then a purchase."""
    tag = uuid.uuid4().hex[:8]
    user, email, event = f"user-{tag}", f"{tag}@example.com", f"App Purchase {tag}"
    anon = str(uuid.uuid4())
    events = [
        mobile_event("screen", library, at, anonymousId=anon, name="Cart", properties={}),
        mobile_event(
            "identify", library, at, anonymousId=anon, userId=user, traits={"email": email}
        ),
        mobile_event(
            "track", library, at, anonymousId=anon, userId=user, event=event,
            properties={"revenue": 19.99, "currency": "EUR"},
        ),
    ]  # fmt: skip
    return email, event, events


@pytest.mark.parametrize(
    ("file", "upload"),
    [(kotlin_file, upload_kotlin), (swift_file, upload_swift)],
    ids=["analytics-kotlin", "analytics-swift"],
)
def test_mobile_batch_reaches_hubspot_with_the_identify_email(
    forwarder: Forwarder, file: Any, upload: Any
) -> None:
    now = datetime.now(UTC)
    email, event, events = session("kotlin" if file is kotlin_file else "swift", now)

    answer = upload(forwarder, file(events, now))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "accepted": 3, "duplicates": 0, "rejected": []}
    conversions = wait_for(lambda: delivered(forwarder, event), what="the conversion")
    assert [c["email"] for c in conversions] == [email]


@pytest.mark.parametrize(
    ("file", "upload"),
    [(kotlin_file, upload_kotlin), (swift_file, upload_swift)],
    ids=["analytics-kotlin", "analytics-swift"],
)
def test_retried_file_with_the_same_message_ids_is_stored_and_delivered_once(
    forwarder: Forwarder, file: Any, upload: Any
) -> None:
    """The library never saw the first answer (a timeout) and sends the same file again."""
    now = datetime.now(UTC)
    _, event, events = session("kotlin" if file is kotlin_file else "swift", now)
    body = file(events, now)

    first = upload(forwarder, body)
    again = upload(forwarder, body, retry=1)

    assert first.json()["accepted"] == 3
    assert again.status_code == 200
    assert again.json() == {"success": True, "accepted": 0, "duplicates": 3, "rejected": []}
    wait_for(lambda: delivered(forwarder, event), what="the conversion")
    assert len(forwarder.named(event)) == 1
    assert len(delivered(forwarder, event)) == 1


def test_device_time_is_kept_when_the_file_is_sent_promptly(forwarder: Forwarder) -> None:
    happened = datetime.now(UTC) - timedelta(seconds=90)
    _, event, events = session("kotlin", happened)

    upload_kotlin(forwarder, kotlin_file(events, datetime.now(UTC)))

    [track] = forwarder.named(event)
    assert track["timestamp"] == instant(happened)
    assert track["originalTimestamp"] == instant(happened)


def test_device_clock_an_hour_ahead_is_corrected_from_sent_at(forwarder: Forwarder) -> None:
    """``timestamp = receivedAt - (sentAt - device time)``: the hour comes off."""
    ahead = timedelta(hours=1)
    now = datetime.now(UTC)
    _, event, events = session("swift", now - timedelta(seconds=30) + ahead)

    upload_swift(forwarder, swift_file(events, now + ahead))

    [track] = forwarder.named(event)
    corrected = datetime.fromisoformat(track["timestamp"])
    received = datetime.fromisoformat(track["receivedAt"])
    assert track["originalTimestamp"] == events[2]["timestamp"]
    assert timedelta(seconds=25) < received - corrected < timedelta(seconds=35)


def test_file_retried_after_a_long_outage_is_stamped_at_its_arrival(forwarder: Forwarder) -> None:
    """Its ``sentAt`` is two hours old, which reads as a clock two hours slow (Segment's rule):
    the event keeps its distance to ``sentAt`` and lands ten seconds before its arrival."""
    closed = datetime.now(UTC) - timedelta(hours=2)
    _, event, events = session("kotlin", closed - timedelta(seconds=10))

    upload_kotlin(forwarder, kotlin_file(events, closed), retry=3)

    [track] = forwarder.named(event)
    assert track["originalTimestamp"] == events[2]["timestamp"]
    received = datetime.fromisoformat(track["receivedAt"])
    assert datetime.fromisoformat(track["timestamp"]) == received - timedelta(seconds=10)


@pytest.mark.parametrize(
    "headers",
    [
        {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "analytics-kotlin/1.24.1",
        },
        SWIFT_HEADERS,
    ],
    ids=["analytics-kotlin", "analytics-swift"],
)
def test_settings_read_with_cdn_host_at_the_forwarder_keep_the_apps_api_host(
    forwarder: Forwarder, headers: dict[str, str]
) -> None:
    """``https://{cdnHost}/projects/{key}/settings`` with ``cdnHost = "<forwarder>/v1"``: a
    settings ``apiHost`` would replace the app's configured one, so none is given."""
    answer = httpx.get(f"{forwarder.url}/v1/projects/{SERVER_KEY}/settings", headers=headers)

    assert answer.status_code == 200
    segment = answer.json()["integrations"]["Segment.io"]
    assert segment == {"apiKey": SERVER_KEY}
