"""Identity enrichment end to end: stitching, fallback chain, hold and release, contacts, OAuth."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec

from forwarder.config import ContactSettings, LimitSettings, PortalSettings, Secret
from forwarder.sandbox import SandboxConfig
from forwarder.storage.outcomes import Reason
from tests.delivery.harness import running, until

PORTAL = PortalSettings(portal_id=123456, max_delay_s=0.05, unmapped_events="auto")
UTK = "a3b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "event": "Demo Booked", **fields}


async def test_identify_then_anonymous_track_reaches_hubspot_with_the_email(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, PORTAL) as fw:
        identify = {
            "type": "identify",
            "anonymousId": "A",
            "traits": {"email": " Ana@Example.COM "},
        }
        await fw.send([identify, track("t1", anonymousId="A")])

        async def delivered() -> bool:
            return (await fw.counts()).get("delivered", 0) == 1

        await until(delivered)
        [event] = fw.received()
        assert event["email"] == "ana@example.com"
        assert event["utk"] is None


async def test_malformed_email_falls_back_to_the_utk(tmp_path: Path) -> None:
    async with running(tmp_path, PORTAL) as fw:
        context = {"traits": {"email": "not-an-email"}, "hubspotutk": UTK}
        await fw.send([track("t1", userId="u1", context=context)])

        async def delivered() -> bool:
            return (await fw.counts()).get("delivered", 0) == 1

        await until(delivered)
        [event] = fw.received()
        assert (event["email"], event["utk"]) == (None, UTK)
        [item] = await fw.storage.items_of(1)
        assert item.state == "delivered"


async def test_unknown_visitor_is_held_then_released_by_identify_with_original_time(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, PORTAL) as fw:
        occurred = "2026-11-01T10:00:00.000Z"
        await fw.send([track("held-1", anonymousId="V", timestamp=occurred)])

        async def held() -> bool:
            return (await fw.counts()).get("held", 0) == 1

        await until(held)
        assert fw.received() == []
        [record] = await fw.storage.items_in_state("held")
        assert record.outcome is not None
        assert record.outcome.reason == Reason.AWAITING_IDENTITY
        assert any("no objectId, email or utk" in n for n in record.outcome.notes)
        await fw.send([{"type": "identify", "anonymousId": "V", "traits": {"email": "v@x.io"}}])

        async def delivered() -> bool:
            return (await fw.counts()).get("delivered", 0) == 1

        await until(delivered)
        [event] = fw.received()
        assert event["email"] == "v@x.io"
        assert event["occurredAt"] == occurred


async def test_alias_links_the_anonymous_visitor_to_the_user(tmp_path: Path) -> None:
    async with running(tmp_path, PORTAL) as fw:
        await fw.send(
            [
                {"type": "identify", "userId": "U", "traits": {"email": "u@x.io"}},
                track("t1", anonymousId="anon-9"),
            ]
        )

        async def held() -> bool:
            return (await fw.counts()).get("held", 0) == 1

        await until(held)
        await fw.send([{"type": "alias", "userId": "U", "previousId": "anon-9"}])

        async def delivered() -> bool:
            return (await fw.counts()).get("delivered", 0) == 1

        await until(delivered)
        assert fw.received()[0]["email"] == "u@x.io"


async def test_unlinked_held_conversion_expires(tmp_path: Path) -> None:
    portal = msgspec.structs.replace(PORTAL, hold_s=0.2)
    async with running(tmp_path, portal) as fw:
        await fw.send([track("lonely", anonymousId="nobody")])

        async def held() -> bool:
            return (await fw.counts()).get("held", 0) == 1

        await until(held)
        await asyncio.sleep(0.3)
        engine = fw.client.app.state.engine
        assert await engine.expire_held() == 1
        counts = await fw.counts()
        assert counts == {"accepted": 1, "expired": 1}
        assert await engine.check_conservation() == 0


LEADS = PortalSettings(
    portal_id=123456,
    max_delay_s=0.2,
    contacts=ContactSettings(
        upsert=True, properties={"firstName": "firstname", "lead_score": "custom_lead_score"}
    ),
)


def lead_fields(config: SandboxConfig) -> SandboxConfig:
    return msgspec.structs.replace(config, contact_properties=("custom_lead_score",))


async def test_250_identifies_become_three_batch_upserts_with_the_scores(tmp_path: Path) -> None:
    identifies = [
        {
            "type": "identify",
            "userId": f"u{i}",
            "traits": {"email": f"lead{i}@example.com", "lead_score": i, "firstName": f"N{i}"},
        }
        for i in range(250)
    ]
    async with running(tmp_path, LEADS, lead_fields) as fw:
        await fw.send(identifies, chunk=250)

        async def delivered() -> bool:
            return (await fw.counts()).get("delivered", 0) == 250

        await until(delivered)
        assert fw.requests("contacts.batch_upsert") == {200: 3}
        contacts = {
            c["properties"]["email"]: c for c in msgspec.to_builtins(fw.sandbox.contact_list())
        }
        assert contacts["lead7@example.com"]["properties"]["custom_lead_score"] == "7"
        assert contacts["lead249@example.com"]["properties"]["firstname"] == "N249"


async def test_same_email_twice_in_one_batch_is_merged_last_write_wins(tmp_path: Path) -> None:
    first = {"type": "identify", "userId": "u", "traits": {"email": "d@x.io", "lead_score": 1}}
    second = {"type": "identify", "userId": "u", "traits": {"email": "d@x.io", "lead_score": 9}}
    async with running(tmp_path, LEADS, lead_fields) as fw:
        await fw.send([first, second])

        async def delivered() -> bool:
            return (await fw.counts()).get("delivered", 0) == 2

        await until(delivered)
        assert fw.requests("contacts.batch_upsert") == {200: 1}
        [contact] = msgspec.to_builtins(fw.sandbox.contact_list())
        assert contact["properties"]["custom_lead_score"] == "9"


OAUTH = PortalSettings(
    portal_id=123456,
    max_delay_s=0.05,
    unmapped_events="auto",
    client_id="client-1",
    client_secret=Secret("client-secret-1"),
    refresh_token=Secret("refresh-token-1"),
    limits=LimitSettings(time_scale=1800.0),  # access tokens live 1 s instead of 30 min
)


async def test_delivery_carries_on_across_several_token_refreshes(tmp_path: Path) -> None:
    async with running(tmp_path, OAUTH) as fw:
        sent = 0
        for round_ in range(4):
            batch = [
                track(f"r{round_}-{i}", userId="u", context={"traits": {"email": "o@x.io"}})
                for i in range(20)
            ]
            await fw.send(batch)
            sent += len(batch)

            async def delivered(expected: int = sent) -> bool:
                return (await fw.counts()).get("delivered", 0) == expected

            await until(delivered)
            await asyncio.sleep(1.2)
        assert len({e["uuid"] for e in fw.received()}) == 80
        portal = fw.client.app.state.engine.portals["main"]
        assert portal.client._auth.refresh_count >= 3
        assert await fw.counts() == {"accepted": 80, "delivered": 80}


FORMS = msgspec.structs.replace(PORTAL, forms_guid="0b1c2d3e-form")


async def test_browser_identify_with_email_and_utk_is_submitted_to_the_form(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, FORMS) as fw:
        identify = {
            "type": "identify",
            "anonymousId": "A",
            "traits": {"email": "Web@Example.com"},
            "context": {"hubspotutk": UTK, "page": {"url": "https://x.io/signup"}},
        }
        await fw.send(
            [identify, {"type": "identify", "userId": "u", "traits": {"email": "x@y.io"}}]
        )

        async def delivered() -> bool:
            return (await fw.counts()).get("delivered", 0) == 1

        await until(delivered)
        [submission] = fw.sandbox.forms
        assert (submission.form_guid, submission.email, submission.hutk) == (
            "0b1c2d3e-form",
            "web@example.com",
            UTK,
        )
        assert submission.page_uri == "https://x.io/signup"
