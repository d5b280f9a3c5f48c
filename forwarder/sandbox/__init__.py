"""The HubSpot sandbox: a local simulator written from ../shared/hubspot-api.md, never from
``forwarder.hubspot``, so that our client and it can disagree and the tests catch it.

Use::

    app = create_sandbox_app(SandboxConfig(tier="free", time_scale=100))
    sandbox = app.state.sandbox                       # a Sandbox: seed, inspect, script faults
    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")

Simulated routes (each also under its dated path):
``POST /events/v3/send``, ``/events/v3/send/batch`` (+ ``/events/2026-03/...``,
``/events/custom/{2025-09,2026-09}/...``),
``/events/v3/event-definitions[/{name}[/property[/{p}]]]``,
``POST /crm/v3/objects/contacts/batch/{read,create,update,upsert}``,
``.../search``
(+ ``/crm/objects/{2026-03,2026-09}/contacts/...``; 2026-09 writes obey
``required_contact_properties``), ``GET /crm/v3/properties/contacts`` (+ dated),
``POST /crm/v3/timeline/events[/batch/create]`` (+ ``/integrators/timeline/v3/events...``),
``POST /integrators/timeline/2026-03/events/batch`` (app event occurrences, all-or-nothing),
``POST /oauth/v1/token``. Versions in ``unsupported_versions`` answer 410 on every path
(``forwarder sandbox --unsupported v3``); ``Sandbox.versions`` counts requests per version.
Every request body is first checked against HubSpot's own OpenAPI specs (``specs/``, matched
by method and path, so each dated version by its own spec): a body the spec refuses gets
HubSpot's ``400 VALIDATION_ERROR`` with one ``errors[]`` item per problem (``in`` is a JSON
pointer), before any of the simulator's own rules run. See ``openapi.py``.
Route names (for faults and ``/_sandbox/requests``): ``events.send``, ``events.send_batch``,
``definitions``, ``contacts.batch_read|batch_create|batch_update|batch_upsert|search``,
``contacts.properties``, ``timeline.create``, ``timeline.batch_create``, ``oauth.token``.

Inspection API (JSON, no auth, never rate limited):

- ``GET /_sandbox`` -> ``{"portalId", "tier", "events": {eventName: n}, "duplicates": n,
  "rejected": n, "contacts": n, "timelineEvents": n, "limits": <limits>, "faults": [<fault>]}``
- ``GET /_sandbox/events[?eventName=]`` -> ``{"received": {eventName: [<event>]},
  "duplicates": [<event>], "rejected": [{"requestId", "route", "error": <ErrorDetail>}]}``;
  ``<event>`` = ``{"eventName", "uuid", "requestId", "route", "properties", "email", "utk",
  "objectId", "occurredAt", "receivedAt"}`` (``requestId`` = the request's correlation id).
- ``GET /_sandbox/contacts`` -> ``{"results": [SimplePublicObject]}``;
  ``POST /_sandbox/contacts`` ``{"properties": {...}}`` -> 201 ``{"id"}``.
- ``GET /_sandbox/forms`` -> ``{"results": [{"formGuid", "email", "hutk", "pageUri",
  "contactId", "requestId"}]}`` (``POST /submissions/v3/integration[/secure]/submit/...``).
- ``GET /_sandbox/timeline`` -> ``{"results": [TimelineEventResponse + "requestId"],
  "duplicates": [...]}``.
- ``GET /_sandbox/requests`` -> ``{"byRoute": {route: {status: n}}}``.
- ``GET /_sandbox/limits`` -> ``{"tooManyRequests", "refusedByPolicy": {policy: n},
  "injected": {status: n}, "peakInTenSecondWindow", "peakSearchPerSecond",
  "peakEventSendsPerSecond", "dailyUsed", "limit10s", "dailyLimit"}`` (peaks count attempts,
  refused ones included).
- ``POST /_sandbox/reset`` -> 204 (state back to the config's seeds).
- ``GET /_sandbox/faults`` -> ``{"faults": [<fault>],
  "competingApp": {"dailyShare", "windowShare", "pattern", "spent", "refused"}}`` (``pattern``:
  ``reserve`` | ``steady`` | ``random`` | ``bursts``);
  ``POST /_sandbox/faults`` ``{"faults": [<fault>], "competingApp": {...}, "replace": false}``;
  ``DELETE /_sandbox/faults``. ``<fault>`` = ``{"route": "*", "status": 503, "count": 2,
  "errorRate": 1.0, "latencyMs": 0, "hang": false, "hangS": 300, "partialFailures": 0,
  "retryAfterS": null, "policyName": "TEN_SECONDLY_ROLLING", "passFirst": 0}``.
- ``POST /_sandbox/definitions`` ``{"name", "properties": [names] | {name: type}}``
  -> 201 definition.
- ``POST /_sandbox/templates`` ``{"id", "tokens": [names]}``; ``POST /_sandbox/tokens``
  ``{"token", "scopes": [...]}``.
- ``POST /_sandbox/webhooks`` ``{"url", "subscriptionType": "contact.merge|contact.deletion|
  contact.privacyDeletion", "objectId", "mergedObjectIds", "newObjectId", "send": true}`` ->
  ``{"url", "headers", "body", "status"}`` (signed v1 + v3; the contact store is updated too).
"""

from forwarder.clock import Clock, ManualClock, SystemClock
from forwarder.sandbox.app import create_sandbox_app
from forwarder.sandbox.config import ALL_SCOPES, DEFAULT_TOKEN, SandboxConfig
from forwarder.sandbox.faults import FaultScript, FaultSpec
from forwarder.sandbox.state import Sandbox
from forwarder.sandbox.webhooks import WebhookRequest

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_TOKEN",
    "Clock",
    "FaultScript",
    "FaultSpec",
    "ManualClock",
    "Sandbox",
    "SandboxConfig",
    "SystemClock",
    "WebhookRequest",
    "create_sandbox_app",
]
