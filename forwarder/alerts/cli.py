"""``forwarder alerts test``: send a sample alert to every ``[[alerts]]`` receiver now."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from forwarder.alerts.rules import Condition
from forwarder.alerts.webhook import WebhookSender, payload, scrubbed
from forwarder.config import Settings, load_settings, secrets_of
from forwarder.telemetry import Redactor, configure_logging

SAMPLE = Condition(
    key="test",
    rule="test",
    severity="warning",
    title="Test alert from hubspot-forwarder",
    summary="If you can read this, alerts reach you. Nothing is wrong.",
    fields={"sent_by": "forwarder alerts test"},
)


def add_arguments(commands: Any) -> None:
    """``alerts test`` under the CLI's subparsers."""
    alerts: argparse.ArgumentParser = commands.add_parser("alerts", help="alert receivers")
    actions = alerts.add_subparsers(dest="action", required=True)
    test = actions.add_parser("test", help="send a sample alert to every [[alerts]] receiver")
    test.add_argument("--config", help="TOML file (default: $FORWARDER_CONFIG)")
    test.set_defaults(run=run)


async def send_samples(settings: Settings) -> list[tuple[str, bool]]:
    """(receiver name, delivered) for each receiver, with the configured retries."""
    secrets = secrets_of(settings)
    out = []
    for alert in settings.alerts:
        sender = WebhookSender(alert, secrets)
        try:
            # A one-off sample from the CLI, outside any app: the system clock is the clock.
            body = scrubbed(payload("test", SAMPLE, at=time.time()), secrets)
            out.append((alert.name, await sender.deliver(body)))
        finally:
            await sender.aclose()
    return out


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every receiver took the sample, 1 when one did not, 2 with none set up."""
    settings = load_settings(args.config)
    # Log lines (retries, refusals) go to stderr, secrets masked; stdout is the verdict.
    configure_logging(Redactor(secrets_of(settings)), fmt="console", stream=sys.stderr)
    if not settings.alerts:
        print("forwarder alerts test: no [[alerts]] receiver is configured")
        return 2
    results = asyncio.run(send_samples(settings))
    for name, ok in results:
        print(f"{name}: {'test alert delivered' if ok else 'FAILED (see the log lines above)'}")
    return 0 if all(ok for _, ok in results) else 1
