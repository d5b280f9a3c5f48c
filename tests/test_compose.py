"""The composition root's delivery wiring: every worker is built ready, test routing included."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec

from forwarder.clock import SystemClock
from forwarder.compose import DeliveryWiring
from forwarder.config import PortalSettings, Secret, Settings
from forwarder.delivery.engine import Engine
from forwarder.sandbox import DEFAULT_TOKEN
from forwarder.storage import create_storage
from forwarder.telemetry import Metrics
from tests.conftest import make_settings

UNREACHABLE = "http://127.0.0.1:9"  # discard port: a "real" HubSpot that never answers


def _with_real_portal(tmp_path: Path) -> Settings:
    base = make_settings(tmp_path)
    real = PortalSettings(
        portal_id=424242, base_url=UNREACHABLE, access_token=Secret("pat-na1-not-a-real-token")
    )
    return msgspec.structs.replace(base, portals={**base.portals, "real": real})


def _engine(settings: Settings, made: list[str]) -> Engine:
    def test_transport(name: str) -> httpx.AsyncBaseTransport:
        made.append(name)
        return httpx.MockTransport(lambda request: httpx.Response(200, json={}))

    storage = create_storage(settings.storage, dedup_window_s=settings.dedup.window_s)
    wiring = DeliveryWiring(
        settings, storage, SystemClock(), Metrics(), sandbox_token=DEFAULT_TOKEN
    )
    return wiring.engine({}, test_transport)


def test_workers_of_a_real_portal_share_one_test_sandbox_from_construction(tmp_path: Path) -> None:
    engine = _engine(_with_real_portal(tmp_path), [])

    real = [w.test_sandbox for (p, _), w in engine.workers.items() if p == "real"]
    sandbox = [w.test_sandbox for (p, _), w in engine.workers.items() if p == "main"]

    assert real[0] is not None
    assert all(sandbox is real[0] for sandbox in real)
    assert sandbox == [None] * len(sandbox)  # a sandbox portal already delivers to one


async def test_a_real_portals_test_sandbox_is_made_on_its_first_test_batch_only(
    tmp_path: Path,
) -> None:
    made: list[str] = []
    engine = _engine(_with_real_portal(tmp_path), made)
    sandbox = engine.workers[("real", "conversions")].test_sandbox
    assert sandbox is not None
    assert made == []

    first = await sandbox.client_for([])
    second = await sandbox.client_for([])

    assert made == ["real"]
    assert first is second
    await first.aclose()


def test_every_portal_gets_a_worker_per_destination(tmp_path: Path) -> None:
    engine = _engine(_with_real_portal(tmp_path), [])

    assert sorted(engine.workers) == [
        ("main", "contacts"),
        ("main", "conversions"),
        ("main", "timeline"),
        ("real", "contacts"),
        ("real", "conversions"),
        ("real", "timeline"),
    ]
    assert sorted(engine.portals) == ["main", "real"]
