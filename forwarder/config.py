"""Settings: one TOML file, overridable by ``FORWARDER_<SECTION>_<FIELD>`` env vars.

Loading order: defaults <- TOML file (``--config`` or ``FORWARDER_CONFIG``) <- env vars, then
``${VAR}`` interpolation, then validation. Every error names the key and the problem before
anything binds a port. Field names here are public interface: extend, never rename.
"""

from __future__ import annotations

import os
import re
import secrets as _secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from forwarder.errors import ConfigError

SANDBOX_BASE_URL = "sandbox"
ApiVersion = Literal["2026-03", "2026-09", "v3"]
"""HubSpot's date-based API versions, and ``v3`` for the legacy numbered paths."""
Tier = Literal["free", "starter", "professional", "enterprise", "oauth"]
"""A portal's HubSpot subscription tier (``oauth`` for a publicly distributed app), which sets
its default rate envelopes."""
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Secret:
    """A string that never shows itself in ``repr``, logs or error messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The HTTP listener."""

    host: str = "127.0.0.1"
    """Address to bind."""
    port: int = 8080
    """TCP port to bind."""
    admin_token: Secret | None = None
    """Protects the admin API and the debugger (``Authorization: Bearer`` or login form)."""
    server: Literal["uvicorn", "granian"] = "uvicorn"
    """ASGI server; uvicorn won the measurement in ``benchmarks/RESULTS.md``."""
    max_event_bytes: int = 32 * 1024
    """Largest single event accepted, in bytes of JSON."""
    max_request_bytes: int = 500 * 1024
    """Largest request body accepted, measured after gzip decompression."""
    max_batch_events: int = 2500
    """Largest number of events in one ``/v1/batch`` request."""
    clock_skew_threshold_s: float = 300.0
    """Correct client clocks (Segment's rule) only when ``sentAt`` is off by more than this."""
    browser_rate_per_s: float = 50.0
    """Per browser write key: sustained events per second accepted."""
    browser_burst: int = 200
    """Per browser write key: burst of events accepted above the sustained rate."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """Log renderer; ``auto`` is console on a terminal and JSON elsewhere."""
    log_requests: bool = True
    """Write one log line per ingest request."""
    shutdown_deadline_s: float = 10.0
    """On SIGTERM, how long delivery may keep flushing before the process exits."""
    mask_personal_data: bool = False
    """Mask emails and ids in the debugger."""
    delivery: bool = True
    """Run the delivery workers in this process (false: an ingest-only replica)."""
    delivery_processes: int = 0
    """Run delivery in this many child processes instead of the serving one, so ingest never
    waits on delivery's CPU (``serve --delivery-workers N``). 0: delivery in the serving process.
    SQLite allows 1 (one pacing of each HubSpot envelope); Redis any number. Not with
    ``base_url = "sandbox"`` portals: their simulator lives in the serving process. A child that
    dies is restarted; SIGTERM to the server stops the children within the shutdown deadline."""


class StorageSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where accepted events live until delivered."""

    url: str = "sqlite:///./forwarder.db"
    """``sqlite:///path`` (default, embedded) or ``redis://host:port/db`` for several replicas."""
    max_backlog: int = 5_000_000
    """Pending events at which ingest answers 503 instead of growing without bound."""
    commit_interval_ms: float = 0.0
    """Extra wait before a group commit, to gather more requests per fsync (0 = as soon as idle)."""
    synchronous: Literal["full", "normal"] = "full"
    """SQLite ``synchronous``: ``full`` fsyncs every commit (survives power loss)."""
    retention_s: float = 7 * 86400.0
    """How long delivered events stay for the debugger before they are purged.

    On SQLite an event also stays at least ``dedup.window_s``: the events are the record of the
    dedup keys, whose index is kept in memory and rebuilt from them at start."""


class DedupSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Duplicate suppression by ``messageId``."""

    window_s: float = 86400.0
    """A repeated ``messageId`` (per portal) within this window is a duplicate."""
    fingerprint_window_s: float = 0.0
    """When > 0, events without ``messageId`` and with equal content are duplicates within it."""


ENV_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "server": ServerSettings,
    "storage": StorageSettings,
    "dedup": DedupSettings,
}
"""The tables ``FORWARDER_<SECTION>_<FIELD>`` environment variables override."""


class SourceSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A producer of events, identified by its write key."""

    name: str
    """Name shown in logs, metrics and the debugger."""
    write_key: Secret
    """The key producers send (Basic user name, Bearer token or ``writeKey`` in the body)."""
    kind: Literal["server", "browser"] = "server"
    """``browser`` keys are public: only accepted from ``allowed_origins`` and rate limited."""
    portal: str = "main"
    """The ``[portals.NAME]`` events of this source go to."""
    allowed_origins: tuple[str, ...] = ()
    """For browser sources: the origins (scheme://host[:port]) allowed to send."""
    test: bool = False
    """Events of a test source are delivered only to the sandbox."""


class EventMapping(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a Segment event becomes a HubSpot custom event."""

    event: str
    """Segment ``track`` name (or ``page``/``screen`` name)."""
    custom_event: str
    """HubSpot event name; a short name gets the ``pe{portal_id}_`` prefix."""
    properties: dict[str, str] = {}
    """Source path (``revenue``, ``context.page.url``) -> HubSpot event property."""
    timeline_template: str | None = None
    """Optional timeline template id: also write a CRM timeline event."""


class LimitSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Rate envelopes; unset numbers come from the portal's tier."""

    crm_per_10s: int | None = None
    """Rolling 10-second window shared by timeline, contacts and look-ups."""
    crm_daily: int | None = None
    """Daily CRM request cap (resets at midnight in ``daily_reset_tz``)."""
    search_per_s: int | None = None
    """Search requests per second."""
    events_per_s: int | None = None
    """Custom event send requests per second."""
    events_monthly: int | None = None
    """Monthly custom event completions quota."""
    safety: float = 0.9
    """Share of each envelope the forwarder allows its own requests (others' spending, read
    from HubSpot's headers, comes off HubSpot's whole allowance)."""
    daily_reset_tz: str = "UTC"
    """Time zone of the portal (the daily cap resets at its midnight)."""
    time_scale: float = 1.0
    """Shrink every window and period by this factor (a sandbox only, built in or on loopback;
    like ``sandbox --time-scale``)."""
    burst: int = 3
    """Requests of one envelope that may go back to back; after them, requests are spaced
    evenly across the window (window / allowance apart), so the allowance is never spent all
    at once when the window rolls over."""


class ContactSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Contact updates from ``identify`` traits."""

    upsert: bool = False
    """Upsert contacts by email from identify traits."""
    properties: dict[str, str] = {}
    """Trait -> HubSpot contact property."""
    user_id_property: str | None = None
    """Unique contact property holding the userId (resolution via batch read)."""


class AttributionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where a conversion's first and last touch come from when the event does not carry them."""

    last_touch_window_s: float = 30 * 86400.0
    """A remembered touch older than this before the conversion is not its last touch (ad
    platforms' click windows); the first touch has no window."""
    touches: tuple[Literal["click_id", "utm", "referrer"], ...] = ("click_id", "utm")
    """Which visits count as touches: ad click ids (``gclid`` ...), UTM campaign fields, and
    optionally a plain referrer from another site."""
    remember: bool = True
    """Remember each person's touches in the store and fill conversions from them."""


class PortalSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One HubSpot account and how to reach it."""

    portal_id: int = 0
    """HubSpot portal (Hub) id."""
    access_token: Secret | None = None
    """Legacy private app or project app static token (``pat-...``)."""
    service_key: Secret | None = None
    """HubSpot service key (beta): an account-level key sent as ``Authorization: Bearer``, with
    the limits of a privately distributed app. No webhooks: merges and deletions by webhook
    still need an app (``webhook_secret`` or OAuth ``client_secret``)."""
    api_version: ApiVersion = "2026-03"
    """HubSpot API version every call uses: ``2026-03``, ``2026-09`` (CRM writes also checked
    against the account's validation rules) or ``v3`` (legacy numbered paths, unsupported by
    HubSpot from September 2027)."""
    base_url: str = SANDBOX_BASE_URL
    """``https://api.hubapi.com`` or ``sandbox`` for the built-in simulator."""
    tier: Tier = "professional"
    """Sets default envelopes."""
    unmapped_events: Literal["reject", "drop", "auto"] = "reject"
    """Track events with no mapping: refuse at ingest, drop, or map automatically."""
    events: tuple[EventMapping, ...] = ()
    """Segment event -> HubSpot custom event mappings."""
    limits: LimitSettings = LimitSettings()
    """Rate envelope overrides."""
    contacts: ContactSettings = ContactSettings()
    """Contact updates from identify."""
    client_id: str | None = None
    """OAuth public-app mode: client id."""
    client_secret: Secret | None = None
    """OAuth public-app mode: client secret (also verifies webhooks)."""
    refresh_token: Secret | None = None
    """OAuth public-app mode: refresh token."""
    webhook_secret: Secret | None = None
    """Webhook signing secret when the portal uses a private token."""
    webhook_url: str | None = None
    """The exact URL registered in HubSpot for webhooks (signatures cover it); default: the
    URL the request arrived at, which differs behind a proxy that rewrites host or scheme."""
    webhook_versions: tuple[str, ...] = ("v3",)
    """Signature versions accepted; add ``v1``/``v2`` only for apps that still send them."""
    forms_guid: str | None = None
    """Attribution-preserving identify: an identify carrying an email and the ``hubspotutk``
    cookie is also submitted to this HubSpot form (with ``context.hutk``), so the visitor's web
    history lands on the contact. Create a form with just an email field for it."""
    identity_order: tuple[str, ...] = ("objectId", "email", "utk")
    """Identity fallback chain for custom events."""
    attribution: AttributionSettings = AttributionSettings()
    """Touch memory: first and last touch per person, used for conversions."""
    hold_s: float = 30 * 86400.0
    """How long a conversion without identity waits for an identify before it expires."""
    max_delay_s: float = 1.0
    """A batch flushes when its oldest event has waited this long."""
    max_event_age_s: float = 7 * 86400.0
    """Events still failing after this age are dead-lettered as expired."""
    request_timeout_s: float = 10.0
    """Timeout of one request to HubSpot."""
    concurrency: int = 4
    """Requests in flight per destination queue (the envelope still bounds the rate)."""
    paused_retry_s: float = 60.0
    """A destination paused for scopes or credentials tries again after this long."""


class AlertRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When an alert fires; the defaults work unconfigured. A threshold of 0 turns a rule off."""

    paused: bool = True
    """A destination is paused (HubSpot answered 401/403: bad token or missing scopes)."""
    dead_letters: int = 10
    """Dead letters added within ``window_s`` at which the growth alert fires."""
    throttled_share: float = 0.05
    """Share of requests to HubSpot answered 429 within ``window_s``."""
    error_share: float = 0.2
    """Share of requests to HubSpot that failed (5xx, timeouts, refused) within ``window_s``."""
    min_requests: int = 20
    """Requests within ``window_s`` below which the two shares are not judged."""
    p95_latency_s: float = 900.0
    """Accepted -> HubSpot p95 over the last hour (held conversions count from acceptance)."""
    quota_share: float = 0.8
    """Share of a portal's monthly custom-event quota used."""
    score_drop: float = 2.0
    """Points an event type's quality score lost: the last hour against the last day."""
    min_events: int = 20
    """Events of a type sent in the last hour below which its score drop is not judged."""
    conservation: bool = True
    """Accepted items are not all accounted for (final + open): a bug, events may be lost."""
    storage: bool = True
    """The store refuses writes (ingest answers 503)."""
    window_s: float = 600.0
    """The rolling window of the dead-letter growth and the request shares."""


class AlertSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One alert receiver: a webhook taking Slack-compatible JSON."""

    webhook_url: Secret
    """Slack incoming webhook, a Teams workflow, or any URL taking ``{"text": ...}`` JSON
    (plus structured fields); it is a secret: it never shows in logs or alerts."""
    name: str = "alerts"
    """Shown in logs (never the URL)."""
    rules: AlertRules = AlertRules()
    """Which conditions fire, and their thresholds."""
    cooldown_s: float = 3600.0
    """A condition still true sends again after this long."""
    evaluate_every_s: float = 30.0
    """How often the conditions are checked."""
    timeout_s: float = 10.0
    """Timeout of one webhook request."""
    retries: int = 5
    """Attempts per message beyond the first (exponential backoff from 1 s, up to 60 s)."""


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole configuration."""

    server: ServerSettings = ServerSettings()
    """HTTP listener."""
    storage: StorageSettings = StorageSettings()
    """Durable storage."""
    dedup: DedupSettings = DedupSettings()
    """Duplicate suppression."""
    sources: tuple[SourceSettings, ...] = ()
    """Producers and their write keys."""
    portals: dict[str, PortalSettings] = {}
    """HubSpot accounts by name."""
    alerts: tuple[AlertSettings, ...] = ()
    """Alert receivers (``[[alerts]]``); none: nothing is sent."""
    sandbox_mode: bool = False
    """True when no config was given and a development setup was generated."""


def _dec_hook(tp: type, value: object) -> object:
    if tp is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError


def _interpolate(value: object, path: str, env: Mapping[str, str]) -> object:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(path, f"environment variable {name} is not set")
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else k, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", env) for i, v in enumerate(value)]
    return value


def _parse_env_value(raw: str) -> object:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Apply ``FORWARDER_<SECTION>_<FIELD>`` (and ``FORWARDER_PORTALS_<NAME>_<FIELD>``)."""
    sections = {name.upper(): cls for name, cls in ENV_SECTIONS.items()}
    for key, raw in env.items():
        if not key.startswith("FORWARDER_") or key == "FORWARDER_CONFIG":
            continue
        rest = key[len("FORWARDER_") :]
        section, _, field = rest.partition("_")
        if section in sections:
            name = field.lower()
            if name in sections[section].__struct_fields__:
                data.setdefault(section.lower(), {})[name] = _parse_env_value(raw)
        elif section == "PORTALS":
            for portal in data.get("portals", {}):
                prefix = portal.upper() + "_"
                if field.startswith(prefix):
                    name = field[len(prefix) :].lower()
                    if name in PortalSettings.__struct_fields__:
                        data["portals"][portal][name] = _parse_env_value(raw)


def _error_key(exc: msgspec.ValidationError) -> tuple[str, str]:
    text = str(exc)
    reason, _, where = text.partition(" - at `$")
    key = where.rstrip("`").lstrip(".") or "(root)"
    return key, reason


def _failing_portal(data: dict[str, Any]) -> str | None:
    """The name of the first portal that does not convert (msgspec says only ``[...]``)."""
    for name, portal in (data.get("portals") or {}).items():
        try:
            msgspec.convert(portal, PortalSettings, dec_hook=_dec_hook)
        except msgspec.ValidationError:
            return str(name)
    return None


def _validate(settings: Settings) -> None:
    _validate_sources(settings)
    for name, portal in settings.portals.items():
        _validate_portal_access(f"portals.{name}", portal)
        _validate_portal_limits(f"portals.{name}", portal)
    for i, alert in enumerate(settings.alerts):
        if not alert.webhook_url.reveal().startswith(("http://", "https://")):
            raise ConfigError(f"alerts[{i}].webhook_url", "must be an http(s) URL")
        if alert.evaluate_every_s <= 0:
            raise ConfigError(f"alerts[{i}].evaluate_every_s", "must be > 0")
        if alert.retries < 0:
            raise ConfigError(f"alerts[{i}].retries", "must be >= 0")
    if settings.server.max_event_bytes > settings.server.max_request_bytes:
        raise ConfigError("server.max_event_bytes", "must not exceed server.max_request_bytes")
    validate_delivery_processes(settings)


def validate_delivery_processes(settings: Settings) -> None:
    """Refuse delivery processes the store or the portals cannot share.

    Raises:
        ConfigError: naming ``server.delivery_processes``.
    """
    n = settings.server.delivery_processes
    key = "server.delivery_processes"
    if n < 0:
        raise ConfigError(key, "must be >= 0")
    if n == 0 or not settings.server.delivery:
        return
    if n > 1 and settings.storage.url.startswith("sqlite"):
        # Each process paces HubSpot's envelopes alone on SQLite (Redis shares the windows).
        raise ConfigError(key, "SQLite storage allows at most 1 (use Redis for more)")
    sandboxed = [name for name, p in settings.portals.items() if portal_uses_sandbox(p)]
    if sandboxed:
        raise ConfigError(
            key,
            f"portals {sandboxed} deliver to the simulator inside the server: use 0, or run "
            "`forwarder sandbox` and point base_url at it",
        )


def _validate_sources(settings: Settings) -> None:
    names = {p for p in settings.portals}
    keys: set[str] = set()
    for i, source in enumerate(settings.sources):
        where = f"sources[{i}]"
        if source.portal not in names:
            raise ConfigError(f"{where}.portal", f"no [portals.{source.portal}] is configured")
        if len(source.write_key.reveal()) < 8:
            raise ConfigError(f"{where}.write_key", "must be at least 8 characters")
        if source.write_key.reveal() in keys:
            raise ConfigError(f"{where}.write_key", "is used by another source")
        keys.add(source.write_key.reveal())
        if source.kind == "browser" and not source.allowed_origins:
            raise ConfigError(f"{where}.allowed_origins", "a browser source needs allowed origins")


def _validate_portal_access(where: str, portal: PortalSettings) -> None:
    """Where the portal is and how the forwarder signs in to it."""
    real = portal.base_url != SANDBOX_BASE_URL
    if real and not portal.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.base_url", "must be an http(s) URL or 'sandbox'")
    oauth = portal.refresh_token is not None
    if portal.access_token is not None and portal.service_key is not None:
        raise ConfigError(
            f"{where}.service_key", "give either access_token or service_key, not both"
        )
    token = portal.access_token or portal.service_key
    if real and token is None and not oauth:
        raise ConfigError(
            f"{where}.access_token", "a real portal needs a token, a service key or OAuth keys"
        )
    if oauth and (portal.client_id is None or portal.client_secret is None):
        raise ConfigError(f"{where}.client_id", "OAuth mode needs client_id and client_secret")


def _validate_portal_limits(where: str, portal: PortalSettings) -> None:
    """The portal's envelopes and windows."""
    real = portal.base_url != SANDBOX_BASE_URL
    if not 0 < portal.limits.safety <= 1:
        raise ConfigError(f"{where}.limits.safety", "must be in (0, 1]")
    if portal.limits.time_scale != 1.0 and real and not _on_loopback(portal.base_url):
        raise ConfigError(
            f"{where}.limits.time_scale",
            "only a sandbox portal (built in, or on loopback) can be scaled",
        )
    if portal.limits.time_scale <= 0:
        raise ConfigError(f"{where}.limits.time_scale", "must be > 0")
    if portal.attribution.last_touch_window_s <= 0:
        raise ConfigError(f"{where}.attribution.last_touch_window_s", "must be > 0")
    if portal.limits.burst < 1:
        raise ConfigError(f"{where}.limits.burst", "must be >= 1")


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read, override, interpolate and validate the configuration.

    Args:
        path: TOML file; defaults to ``FORWARDER_CONFIG``; None means zero-config.
        env: environment to read overrides and ``${VAR}`` from (default ``os.environ``).

    Raises:
        ConfigError: naming the key and the problem.
    """
    env = os.environ if env is None else env
    path = path or env.get("FORWARDER_CONFIG") or None
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError("--config", f"file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from exc
    _apply_env(data, env)
    data = _interpolate(data, "", env)  # type: ignore[assignment]
    try:
        settings = msgspec.convert(data, Settings, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        key, reason = _error_key(exc)
        if (name := _failing_portal(data)) is not None:
            key = key.replace("portals[...]", f"portals.{name}", 1)
        if key.endswith(".api_version"):
            reason += ' (one of "2026-03", "2026-09", "v3")'
        raise ConfigError(key, reason) from exc
    if path is None and not settings.sources:
        settings = with_development_defaults(settings)
    _validate(settings)
    return settings


def with_development_defaults(settings: Settings, write_key: str | None = None) -> Settings:
    """Zero-config: one server source and one sandbox portal that maps events automatically."""
    key = write_key or "dev_" + _secrets.token_urlsafe(18)
    portal = PortalSettings(portal_id=12345678, base_url=SANDBOX_BASE_URL, unmapped_events="auto")
    source = SourceSettings(name="development", write_key=Secret(key), portal="sandbox")
    portals = {"sandbox": portal, **settings.portals}
    return msgspec.structs.replace(settings, sources=(source,), portals=portals, sandbox_mode=True)


def _on_loopback(url: str) -> bool:
    """A URL on this machine: a standalone sandbox (``forwarder sandbox``), never HubSpot."""
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def portal_uses_sandbox(portal: PortalSettings) -> bool:
    """True when deliveries of this portal go to the built-in simulator."""
    return portal.base_url == SANDBOX_BASE_URL


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL (SQLAlchemy's convention: ``sqlite:///relative/path``,
    ``sqlite:////absolute/path``); ``forwarder.db`` when the URL names none."""
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
    return Path(path or "forwarder.db")


def development_key(storage_url: str) -> str:
    """The zero-config write key, kept beside the SQLite file so it survives restarts."""
    path = sqlite_path(storage_url).with_suffix(".devkey")
    try:
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
    except OSError:
        pass
    key = "dev_" + _secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n", encoding="utf-8")
    path.chmod(0o600)
    return key


def secrets_of(settings: Settings) -> list[str]:
    """Every configured secret value (write keys, tokens, client secrets, admin token), for
    redaction in logs and responses."""
    values = [s.write_key.reveal() for s in settings.sources]
    for portal in settings.portals.values():
        for secret in (
            portal.access_token,
            portal.service_key,
            portal.client_secret,
            portal.refresh_token,
            portal.webhook_secret,
        ):
            if secret is not None:
                values.append(secret.reveal())
    if settings.server.admin_token is not None:
        values.append(settings.server.admin_token.reveal())
    values += [a.webhook_url.reveal() for a in settings.alerts]
    return values
