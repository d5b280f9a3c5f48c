"""Logs (structlog, secrets redacted before rendering) and Prometheus metrics."""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import msgspec
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from forwarder.tallies import QualityTally, RateTally

REDACTED = "***"
_SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "write_key",
        "writekey",
        "access_token",
        "service_key",
        "refresh_token",
        "token",
        "client_secret",
        "admin_token",
        "password",
        "secret",
        "webhook_secret",
    }
)


class Redactor:
    """Log processor: masks configured secret values anywhere and sensitive keys by name."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values masked now (a new tuple whenever one is added)."""
        return self._secrets

    def add(self, secret: str) -> None:
        """Also mask a secret learned at run time (an OAuth access token)."""
        if secret and secret not in self._secrets:
            self._secrets = (*self._secrets, secret)

    def scrub(self, value: Any) -> Any:
        """``value`` with every secret replaced (containers are copied only when needed)."""
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {
                k: REDACTED if str(k).lower() in _SENSITIVE_KEYS else self.scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        # In place: the event dict is this log call's own copy. Every log line passes here, so
        # the common cases (a known key, a number) are dictionary and type lookups.
        for key, value in event_dict.items():
            if _is_sensitive(key):
                event_dict[key] = REDACTED
            elif type(value) not in _PLAIN:
                event_dict[key] = self.scrub(value)
        return event_dict


_PLAIN = frozenset({int, float, bool, type(None)})
_NUMBERS = frozenset({int, float, bool})
_RESERVED = frozenset({"component", "event", "level", "timestamp"})


@functools.lru_cache(maxsize=1024)
def _is_sensitive(key: str) -> bool:
    return key.lower() in _SENSITIVE_KEYS


_json = msgspec.json.Encoder(enc_hook=repr)
_KEEP_OPEN: list[TextIO] = []
_WRITERS: list[LineWriter] = []


def _json_bytes(obj: Any, **_: Any) -> bytes:
    return _json.encode(obj)


def _json_text(obj: Any, **_: Any) -> str:
    return _json.encode(obj).decode()


class LineWriter:
    """A structlog logger writing rendered lines to a binary file: warnings and errors at once,
    info and debug lines gathered and written together at most ``flush_s`` later.

    A write is a system call; at thousands of requests per second, one per log line was a fifth
    of a request's cost. A daemon thread writes out what waits every ``flush_s``, so a crash
    loses at most that much of the info lines; ``flush_logs`` writes them at shutdown.
    """

    def __init__(self, file: Any, flush_s: float = 0.2, max_lines: int = 4096) -> None:
        self._file = file
        self._flush_s = flush_s
        self._max_lines = max_lines
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None

    def flush(self) -> None:
        """Write out what is buffered.

        The buffer is swapped under one lock and written under another, so a thread logging a
        line never waits for the file (a slow write stalled the event loop for tens of ms).
        """
        with self._writing:  # one writer at a time keeps the lines in order
            with self._lock:
                lines, self._lines = self._lines, []
            with contextlib.suppress(OSError, ValueError):  # closed at interpreter exit
                if lines:
                    lines.append(b"")
                    self._file.write(b"\n".join(lines))
                self._file.flush()

    def _buffered(self, message: bytes) -> None:
        with self._lock:
            self._lines.append(message)
            waiting = len(self._lines)
        if waiting >= self._max_lines:
            self._wake.set()  # the flusher writes them now
            if waiting >= 8 * self._max_lines:
                self.flush()  # it cannot keep up: the file is the limit, wait for it
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_every, name="log-flush", daemon=True
            )
            self._flusher.start()

    def _urgent(self, message: bytes) -> None:
        with self._lock:
            self._lines.append(message)
        self.flush()

    def _flush_every(self) -> None:
        while True:
            self._wake.wait(self._flush_s)
            self._wake.clear()
            if self._lines:
                self.flush()

    debug = info = msg = log = _buffered
    warning = warn = error = err = critical = fatal = exception = failure = _urgent


def configure_logging(
    redactor: Redactor,
    *,
    fmt: str = "auto",
    stream: TextIO | None = None,
    level: int = logging.INFO,
) -> None:
    """Set up structlog once per process: JSON in production, console on a terminal."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    binary = getattr(stream, "buffer", None)
    renderer: Any
    factory: Any
    _FAST.clear()
    if fmt == "console":
        renderer, factory = structlog.dev.ConsoleRenderer(colors=False), None
    elif binary is not None:  # bytes straight to the file: no str round trip, no print()
        renderer = structlog.processors.JSONRenderer(serializer=_json_bytes)
        lines = LineWriter(binary)
        _WRITERS.append(lines)
        atexit.register(lines.flush)
        _FAST.update(writer=lines, redactor=redactor, level=level)

        def factory(*_: Any) -> LineWriter:
            return lines

        _KEEP_OPEN.append(stream)  # the text wrapper closes its buffer when collected
    else:
        renderer, factory = structlog.processors.JSONRenderer(serializer=_json_text), None
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory or structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    # uvicorn and httpx log through the stdlib; keep their noise out and secrets masked.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True


def flush_logs() -> None:
    """Write out buffered log lines now (at shutdown)."""
    for lines in _WRITERS:
        lines.flush()


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(component=name)


_FAST: dict[str, Any] = {}
"""Set by ``configure_logging`` when lines are JSON written by a ``LineWriter``."""


class InfoLine:
    """One info event logged at a high rate (the ingest request line), rendered directly.

    Through structlog's processor chain a line cost ~15 us, more than validating an event.
    When logs are JSON to a ``LineWriter`` this renders the same line (keys in structlog's
    order, the same ISO timestamp, the same redaction) in a few microseconds; otherwise it
    logs through structlog. The line is put together from JSON fragments: numbers rendered
    each time, strings (a path, a source name: few distinct values) redacted and rendered
    once and kept while the secrets to mask stay the same.
    """

    def __init__(self, component: str, event: str) -> None:
        self._component = component
        self._event = event
        self._log = get_logger(component)
        self._second = -1
        self._prefix = ""
        self._secrets: tuple[str, ...] | None = None
        self._head = b""
        self._tail = b""
        self._fragments: dict[tuple[str, Any], bytes] = {}
        self._keys: dict[str, bytes] = {}

    def __call__(self, **fields: Any) -> None:
        writer: LineWriter | None = _FAST.get("writer")
        if writer is None:
            self._log.info(self._event, **fields)
            return
        if _FAST["level"] > logging.INFO:
            return
        redactor: Redactor = _FAST["redactor"]
        if not _RESERVED.isdisjoint(fields):  # they would move or repeat a key: never here
            line: dict[str, Any] = {"component": self._component, **fields}
            line.update(event=self._event, level="info", timestamp=self._timestamp())
            writer.info(_json.encode(redactor(None, "info", line)))
            return
        if redactor.secrets is not self._secrets:
            self._start(redactor)
        parts = [self._head]
        for key, value in fields.items():
            if type(value) in _NUMBERS and not _is_sensitive(key):
                name = self._keys.get(key)
                if name is None:
                    name = self._keys[key] = b"," + _json.encode(key) + b":"
                parts += (name, _json.encode(value))
            else:
                parts.append(self._fragment(redactor, key, value))
        stamp = redactor.scrub(self._timestamp())
        parts += (self._tail, _json.encode(stamp), b"}")
        writer.info(b"".join(parts))

    def _start(self, redactor: Redactor) -> None:
        """Render the fixed parts for the secrets masked now."""
        self._secrets = redactor.secrets
        self._fragments.clear()
        head = redactor(None, "info", {"component": self._component})
        self._head = _json.encode(head)[:-1]
        tail = redactor(None, "info", {"event": self._event, "level": "info"})
        self._tail = b"," + _json.encode(tail)[1:-1] + b',"timestamp":'

    def _fragment(self, redactor: Redactor, key: str, value: Any) -> bytes:
        cacheable = type(value) is str and len(value) <= 256
        if cacheable and (found := self._fragments.get((key, value))) is not None:
            return found
        fragment = b"," + _json.encode(redactor(None, "info", {key: value}))[1:-1]
        if cacheable:
            if len(self._fragments) >= 1024:
                self._fragments.clear()
            self._fragments[(key, value)] = fragment
        return fragment

    def _timestamp(self) -> str:
        # The system clock, as structlog's TimeStamper reads it for every other log line.
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1e6):06d}Z"


class Metrics:
    """Every metric of the process, on its own registry (tests build one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.quality = QualityTally()
        self.rates = RateTally()
        """HubSpot requests per minute, for the shared rate history (flushed to the store)."""
        """Hourly attribution-quality counts, flushed to the store (not Prometheus)."""
        r = self.registry
        self.received = Counter(
            "forwarder_received_events", "Events received at ingest.", ["source"], registry=r
        )
        self.accepted = Counter(
            "forwarder_accepted_events", "Events stored durably.", ["source"], registry=r
        )
        self.discarded = Counter(
            "forwarder_discarded_events",
            "Events not stored or not delivered.",
            ["reason", "intentional"],
            registry=r,
        )
        self.requests = Counter(
            "forwarder_ingest_requests", "Ingest requests by status.", ["status"], registry=r
        )
        self.latency = Histogram(
            "forwarder_ingest_latency_seconds",
            "Ingest request latency.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.sent = Counter(
            "forwarder_sent_events", "Items delivered to HubSpot.", ["destination"], registry=r
        )
        self.errors = Counter(
            "forwarder_errors", "Errors by stage.", ["stage", "error_type"], registry=r
        )
        self.requests_to_hubspot = Counter(
            "forwarder_hubspot_requests", "Requests to HubSpot.", ["route", "status"], registry=r
        )
        self.hubspot_responses = Counter(
            "forwarder_hubspot_responses",
            "HubSpot's answers by portal, endpoint and status (0: no answer, a timeout).",
            ["portal", "endpoint", "status"],
            registry=r,
        )
        self.hubspot_rate_limited = Counter(
            "forwarder_hubspot_rate_limited",
            "429 answers by the policy HubSpot named (TEN_SECONDLY_ROLLING, SECONDLY, DAILY).",
            ["portal", "endpoint", "policy"],
            registry=r,
        )
        self.envelope_allowance = Gauge(
            "forwarder_rate_envelope_requests_per_window",
            "Requests per window the envelope allows itself now (HubSpot's Max, safety, AIMD).",
            ["portal", "envelope"],
            registry=r,
        )
        self.envelope_window = Gauge(
            "forwarder_rate_envelope_window_seconds",
            "The envelope's window, as HubSpot's Interval-Milliseconds declared it.",
            ["portal", "envelope"],
            registry=r,
        )
        self.envelope_rate = Gauge(
            "forwarder_rate_envelope_pace_per_second",
            "Requests per second pacing allows now (our share once other apps' spend is off).",
            ["portal", "envelope"],
            registry=r,
        )
        self.envelope_remaining = Gauge(
            "forwarder_rate_envelope_hubspot_remaining",
            "Requests left in the window by HubSpot's last X-HubSpot-RateLimit-Remaining.",
            ["portal", "envelope"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "forwarder_destination_breaker_state",
            "The destination's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["portal", "destination"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "forwarder_queue_depth",
            "Items waiting to be sent (pending or in flight; held ones not counted).",
            ["portal", "destination"],
            registry=r,
        )
        self.queue_age = Gauge(
            "forwarder_queue_oldest_age_seconds",
            "Seconds since the oldest waiting item was received (0: none waits).",
            ["portal", "destination"],
            registry=r,
        )
        self.items = Gauge(
            "forwarder_items", "Items by state.", ["portal", "destination", "state"], registry=r
        )
        self.conservation_drift = Gauge(
            "forwarder_conservation_drift",
            "accepted - (final + pending); anything but 0 is a bug.",
            registry=r,
        )
        self.paused = Gauge(
            "forwarder_destination_paused",
            "1 when a destination is paused (missing scopes, bad token).",
            ["portal", "destination"],
            registry=r,
        )
