"""``Sandbox``: the whole simulated account in memory, and what tests inspect.

Usable directly (``Sandbox(config, clock=ManualClock())``) and mounted by ``create_sandbox_app``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from forwarder.clock import Clock, SystemClock
from forwarder.sandbox import openapi, webhooks
from forwarder.sandbox.auth import TokenStore
from forwarder.sandbox.config import SandboxConfig
from forwarder.sandbox.contacts import BUILT_IN, Contact, ContactStore, to_text
from forwarder.sandbox.definitions import Definition, DefinitionStore
from forwarder.sandbox.events import EventLog, ReceivedEvent, Rules
from forwarder.sandbox.faults import FaultPlan, FaultScript, FaultSpec
from forwarder.sandbox.forms import Submitted
from forwarder.sandbox.limits import Limiter, Pattern
from forwarder.sandbox.responses import ApiError
from forwarder.sandbox.timeline import TimelineStore


class Sandbox:
    """One HubSpot portal: definitions, events, contacts, timeline, tokens, limits, faults."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clock: Clock | None = None,
        seed: int | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config or SandboxConfig()
        self.clock = clock or SystemClock()
        self.webhook_transport = webhook_transport
        self._seed = seed
        self.specs = openapi.load()
        """HubSpot's published request schemas, checked on every simulated call's body."""
        self.reset()

    def reset(self) -> None:
        """Back to the configured start: seeds re-applied, everything received forgotten."""
        cfg = self.config
        self.generation = getattr(self, "generation", 0) + 1
        self.tokens = TokenStore(cfg.tokens, cfg.time_scale, cfg.service_keys)
        self.limiter = Limiter(
            limit_10s=cfg.window_limit(),
            daily=cfg.daily_limit(),
            search_rps=cfg.search_rps,
            events_rps=cfg.events_rps,
            time_scale=cfg.time_scale,
            start=self.clock.monotonic(),
            portal_id=cfg.portal_id,
            window_ms=cfg.window_ms,
            rng=random.Random(self._seed),
        )
        self.faults = FaultPlan(random.Random(self._seed))
        self.definitions = DefinitionStore(cfg.portal_id)
        self.rules = Rules(
            self.definitions,
            reject_duplicates=cfg.duplicate_uuid == "reject",
            reject_all=cfg.batch_with_bad_input == "reject_all",
        )
        self.events = EventLog()
        self.contacts = ContactStore(
            BUILT_IN | frozenset(cfg.contact_properties), frozenset(cfg.unique_contact_properties)
        )
        self.timeline = TimelineStore()
        self.forms: list[Submitted] = []
        """Accepted form submissions (``/submissions/v3/...``), in arrival order."""
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.injected: Counter[int] = Counter()
        self.versions: Counter[str] = Counter()
        """Requests by the API version in their path (``v3``, ``2026-03``)."""
        self.webhooks_sent: list[webhooks.Delivery] = []
        for name, props in (cfg.seed_definitions or {}).items():
            self.define_event(name, props)
        for template_id, token_names in (cfg.seed_templates or {}).items():
            self.timeline.define_template(template_id, token_names)

    # -- seeding -----------------------------------------------------------------------------

    def define_event(
        self, name: str, properties: Iterable[str] | Mapping[str, str] = ()
    ) -> dict[str, Any]:
        """Create an event definition (properties: names, or name -> type); its JSON."""
        outcome = self.definitions.define(name, properties)
        if isinstance(outcome, ApiError):
            raise ValueError(outcome.message)
        return outcome.to_json()

    def define_template(self, template_id: str, tokens: Iterable[str]) -> None:
        """Create a timeline event template with these token names."""
        self.timeline.define_template(str(template_id), tuple(tokens))

    def add_token(self, token: str, scopes: Iterable[str]) -> None:
        """Grant a private-app token (a new app with its own 10 s window)."""
        self.tokens.add(token, tuple(scopes))

    def add_contact(self, properties: Mapping[str, Any]) -> str:
        """Create a contact directly (no limits); its id."""
        return self.contacts.create(to_text(dict(properties))).id

    # -- faults ------------------------------------------------------------------------------

    def script_faults(self, *faults: FaultSpec, replace: bool = False) -> None:
        """Arm faults at run time (``replace`` drops the ones already armed)."""
        self.apply_script(FaultScript(faults=list(faults), replace=replace))

    def apply_script(self, script: FaultScript) -> None:
        """Apply a ``POST /_sandbox/faults`` body: faults and/or a competing app."""
        self.faults.script(script, self.limiter.competing, self.clock.monotonic())

    def compete(
        self, daily_share: float = 0.0, window_share: float = 0.0, pattern: Pattern = "reserve"
    ) -> None:
        """Start (or with zeros stop) a competing app spending a share of the budget.

        ``pattern``: ``reserve`` holds the share of every window; ``steady``, ``random`` and
        ``bursts`` spend it with real requests (see ``limits``).
        """
        competing = self.limiter.competing
        competing.daily_share = daily_share
        competing.window_share = window_share
        competing.pattern = pattern
        competing.restart(self.clock.monotonic())

    # -- inspection --------------------------------------------------------------------------

    def received_events(self, event_name: str | None = None) -> list[ReceivedEvent]:
        """Accepted custom event occurrences, in arrival order (one name or all)."""
        if event_name is not None:
            definition = self.definitions.find(event_name)
            key = definition.fully_qualified_name if definition else event_name
            return list(self.events.received.get(key, ()))
        return [e for events in self.events.received.values() for e in events]

    @property
    def duplicate_events(self) -> list[ReceivedEvent]:
        """Occurrences whose ``uuid`` was already received for their event type."""
        return list(self.events.duplicates)

    def contact_list(self) -> list[Contact]:
        """Every contact."""
        return list(self.contacts.by_id.values())

    def timeline_events(self) -> list[dict[str, Any]]:
        """Every stored timeline event (one per template id + event id)."""
        return list(self.timeline.events.values())

    def definition(self, name: str) -> Definition | None:
        """An event definition by short or fully qualified name."""
        return self.definitions.find(name)

    @property
    def too_many_requests(self) -> int:
        """429s answered: by a limit or injected."""
        return sum(self.limiter.refused.values()) + self.injected[429]

    def rate_stats(self) -> dict[str, Any]:
        """429 counts per policy and the highest attempt counts seen in any window."""
        limiter = self.limiter
        return {
            "tooManyRequests": self.too_many_requests,
            "refusedByPolicy": dict(limiter.refused),
            "injected": {str(k): v for k, v in self.injected.items()},
            "peakInTenSecondWindow": limiter.peak_10s(),
            "peakSearchPerSecond": limiter.search.peak,
            "peakEventSendsPerSecond": limiter.events.peak,
            "dailyUsed": limiter.daily.used if limiter.daily else None,
            "limit10s": limiter.limit_10s,
            "dailyLimit": limiter.daily.limit if limiter.daily else None,
        }

    # -- webhooks ----------------------------------------------------------------------------

    async def send_webhook(self, request: webhooks.WebhookRequest) -> webhooks.Delivery:
        """Apply a merge/deletion to the store, then POST the signed notification(s)."""
        self._apply_webhook(request)
        payload = webhooks.notifications(request, self.config.portal_id, self.config.app_id)
        delivery = webhooks.build(request.url, payload, self.config.client_secret)
        if request.send:
            delivery = await webhooks.send(delivery, self.webhook_transport)
        self.webhooks_sent.append(delivery)
        return delivery

    def _apply_webhook(self, request: webhooks.WebhookRequest) -> None:
        if request.subscription_type == "contact.merge":
            for loser in request.merged_object_ids:
                self.contacts.remove(str(loser))
        else:
            self.contacts.remove(str(request.object_id))
