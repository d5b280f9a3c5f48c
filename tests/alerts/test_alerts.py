"""Alert rules fire once, repeat after the cooldown and resolve, against a real HTTP receiver."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from forwarder.app import create_app
from forwarder.config import (
    AlertRules,
    AlertSettings,
    ContactSettings,
    LimitSettings,
    PortalSettings,
    Secret,
)
from forwarder.sandbox import ALL_SCOPES, DEFAULT_TOKEN, FaultSpec, SandboxConfig
from forwarder.sandbox.config import SCOPE_EVENTS_SEND
from tests.alerts.receiver import Receiver, webhook_receiver
from tests.conftest import make_settings
from tests.delivery.harness import Forwarder, track, until

LIMITED_TOKEN = "pat-na1-without-event-sends"


@asynccontextmanager
async def alerting(
    tmp_path: Path,
    hook: Receiver,
    portal: PortalSettings,
    rules: AlertRules,
    configure: Callable[[SandboxConfig], SandboxConfig] | None = None,
) -> AsyncIterator[Forwarder]:
    """A forwarder whose one alert receiver is ``hook``, checking every 50 ms."""
    alert = AlertSettings(
        webhook_url=Secret(hook.url), rules=rules, evaluate_every_s=0.05, cooldown_s=3600
    )
    settings = make_settings(tmp_path, portals={"main": portal}, alerts=(alert,))
    app = create_app(settings, configure_sandbox=(lambda _, c: configure(c)) if configure else None)
    async with AsyncTestClient(app=app) as client:
        sandbox = app.state.sandboxes["main"].state.sandbox
        yield Forwarder(client, app.state.storage, sandbox, settings)


def seen(hook: Receiver, status: str, rule: str, n: int = 1) -> Callable[[], Any]:
    async def check() -> bool:
        return len(hook.alerts(status, rule)) >= n

    return check


def without_send_scope(config: SandboxConfig) -> SandboxConfig:
    scopes = tuple(s for s in ALL_SCOPES if s != SCOPE_EVENTS_SEND)
    return msgspec.structs.replace(
        config, tokens={DEFAULT_TOKEN: ALL_SCOPES, LIMITED_TOKEN: scopes}
    )


async def test_a_403_pause_fires_once_and_resolves_when_the_scope_is_granted(
    tmp_path: Path,
) -> None:
    portal = PortalSettings(
        portal_id=123456,
        unmapped_events="auto",
        max_delay_s=0.05,
        access_token=Secret(LIMITED_TOKEN),
        paused_retry_s=0.2,
    )
    with webhook_receiver() as hook:
        async with alerting(tmp_path, hook, portal, AlertRules(), without_send_scope) as fw:
            await fw.send([track(i) for i in range(5)])
            await until(seen(hook, "firing", "paused"))
            await asyncio.sleep(0.5)  # ten more checks while it stays paused
            assert len(hook.alerts("firing", "paused")) == 1
            fw.sandbox.add_token(LIMITED_TOKEN, ALL_SCOPES)
            await until(seen(hook, "resolved", "paused"))

    [firing] = hook.alerts("firing", "paused")
    assert firing["fields"]["queue"] == "main/conversions"
    assert "MISSING_SCOPES" in firing["fields"]["reason"]
    assert firing["severity"] == "critical"
    [body] = [b for b in hook.bodies if b["alert"] is firing]
    assert body["text"].startswith(":rotating_light: [hubspot-forwarder] FIRING: Delivery paused")
    assert body["attachments"][0]["fields"][0] == {
        "title": "queue",
        "value": "main/conversions",
        "short": True,
    }
    assert not any(LIMITED_TOKEN.encode() in raw or b"secretpath" in raw for raw in hook.raw)


def identify(i: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"user-{i}",
        "messageId": f"identify-{i}",
        "traits": {"email": f"lead{i}@example.com", "lead_score": i},
    }


async def test_a_dead_letter_burst_fires_and_resolves_once_the_window_is_quiet(
    tmp_path: Path,
) -> None:
    portal = PortalSettings(
        portal_id=123456,
        max_delay_s=0.05,
        contacts=ContactSettings(upsert=True, properties={"lead_score": "lead_score"}),
    )
    rules = AlertRules(dead_letters=3, window_s=1.0)

    def with_lead_score(config: SandboxConfig) -> SandboxConfig:
        return msgspec.structs.replace(config, contact_properties=("lead_score",))

    with webhook_receiver() as hook:
        async with alerting(tmp_path, hook, portal, rules, with_lead_score) as fw:
            fw.sandbox.script_faults(
                FaultSpec(route="contacts.batch_upsert", partial_failures=5, count=1)
            )
            await fw.send([identify(i) for i in range(20)])
            await until(seen(hook, "firing", "dead_letters"))
            await until(seen(hook, "resolved", "dead_letters"))

    [firing] = hook.alerts("firing", "dead_letters")
    assert firing["fields"]["added"] == "5"
    assert firing["fields"]["total"] == "5"
    assert hook.alerts("firing", "conservation") == []


async def test_the_monthly_quota_alert_fires_at_80_percent_and_resolves_when_the_month_ends(
    tmp_path: Path,
) -> None:
    """A 6-second month (time-scaled sandbox): 40 events of a 45-event quota (50 x 0.9 safety)
    are 89 %; the next month starts at 0."""
    month_s = 6.0
    portal = PortalSettings(
        portal_id=123456,
        unmapped_events="auto",
        max_delay_s=0.05,
        limits=LimitSettings(events_monthly=50, time_scale=30 * 86400 / month_s),
    )
    with webhook_receiver() as hook:
        async with alerting(tmp_path, hook, portal, AlertRules()) as fw:
            await fw.send([track(i) for i in range(40)])
            await until(seen(hook, "firing", "quota"), timeout_s=month_s)
            await until(seen(hook, "resolved", "quota"), timeout_s=month_s)

    [firing] = hook.alerts("firing", "quota")
    assert firing["fields"] == {"portal": "main", "used": "40", "cap": "45"}
    assert firing["title"] == "Monthly event quota at 89 %: main"


def test_alerts_test_sends_a_sample_to_every_receiver(tmp_path: Path) -> None:
    with webhook_receiver() as hook:
        config = tmp_path / "alerts.toml"
        config.write_text(f'[[alerts]]\nname = "ops"\nwebhook_url = "{hook.url}"\n')
        done = subprocess.run(
            [sys.executable, "-m", "forwarder", "alerts", "test", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ops: test alert delivered"
    [sample] = hook.alerts("test")
    assert sample["title"] == "Test alert from hubspot-forwarder"
    assert b"secretpath" not in hook.raw[0]


def test_alerts_test_without_a_receiver_says_so(tmp_path: Path) -> None:
    config = tmp_path / "none.toml"
    config.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "forwarder", "alerts", "test", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (
        2,
        "forwarder alerts test: no [[alerts]] receiver is configured",
    )
