"""Scripted faults: what the sandbox does instead of (or on top of) answering normally.

A ``FaultSpec`` targets a route by name (``events.send``, ``contacts.batch_upsert``...), a
group (``contacts`` matches every ``contacts.*``) or ``*``. It fires for the next ``count``
matching requests (``None`` = until cleared), or at random with ``errorRate``. With
``passFirst`` it first lets that many matching requests through, and the faults after it wait
their turn, so a list of them is a script that interleaves failures with successes
(``[{passFirst: 3, status: 503, count: 4}, {passFirst: 5, hang: true, count: 1}]``).
Faults apply after authentication and before rate limiting; an injected failure does not spend
any budget.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import msgspec

from forwarder.sandbox.limits import CompetingApp, Pattern

FAULT_STATUSES = frozenset({429, 423, 477, 500, 502, 503, 504, 521, 522, 523, 524})


class FaultSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """One scripted fault (JSON keys in camelCase: ``errorRate``, ``latencyMs``...)."""

    route: str = "*"
    """Route name, group prefix (``contacts``) or ``*``."""
    status: int | None = None
    """Fail with this status (429, 423, 477, 500, 502, 503, 504, 521-524)."""
    count: int | None = None
    """Fire for the next N matching requests; None = every matching request until cleared."""
    error_rate: float = 1.0
    """Probability that a matching request fires (1.0 = always)."""
    latency_ms: float = 0.0
    """Delay added before the request is answered (normally or with ``status``)."""
    hang: bool = False
    """Never answer (until ``hangS`` passes or the sandbox is reset): a client timeout."""
    hang_s: float = 300.0
    """Upper bound of a hang, in real seconds."""
    partial_failures: int = 0
    """On 207-capable batch routes, fail the first N inputs with a per-input error."""
    retry_after_s: float | None = None
    """``Retry-After`` header (seconds) on the injected failure; 423 defaults to 2."""
    policy_name: str = "TEN_SECONDLY_ROLLING"
    """``policyName`` of an injected 429."""
    pass_first: int = 0
    """Let this many matching requests through (answered normally) before firing; faults
    scripted after this one are not consulted meanwhile."""

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in FAULT_STATUSES:
            raise msgspec.ValidationError(f"status must be one of {sorted(FAULT_STATUSES)}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise msgspec.ValidationError("errorRate must be within [0, 1]")
        if self.pass_first < 0:
            raise msgspec.ValidationError("passFirst must be >= 0")


class CompetingAppSpec(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """Another app spending ``dailyShare`` of the account's day (and ``windowShare`` of windows)."""

    daily_share: float = 0.0
    window_share: float = 0.0
    pattern: Pattern = "reserve"
    """``reserve`` (the share is held), ``steady``, ``random`` or ``bursts`` (really spent)."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.daily_share <= 1.0 and 0.0 <= self.window_share <= 1.0):
            raise msgspec.ValidationError("dailyShare and windowShare must be within [0, 1]")


class FaultScript(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """The body of ``POST /_sandbox/faults``."""

    faults: list[FaultSpec] = msgspec.field(default_factory=list)
    competing_app: CompetingAppSpec | None = None
    replace: bool = False
    """Drop the faults already scripted first."""


@dataclass(frozen=True, slots=True)
class FaultAction:
    """What a fired fault asks for."""

    status: int | None
    latency_s: float
    hang_s: float | None
    partial_failures: int
    retry_after_s: float | None
    policy_name: str


class FaultPlan:
    """The active faults, in the order scripted; the first that matches a request fires."""

    def __init__(self, rng: random.Random) -> None:
        self._faults: list[FaultSpec] = []
        self._rng = rng
        self.fired = 0

    def script(self, script: FaultScript, competing: CompetingApp, now: float) -> None:
        """Apply a script: add (or replace) faults, set the competing app's shares."""
        if script.replace:
            self._faults.clear()
        self._faults.extend(script.faults)
        if script.competing_app is not None:
            competing.daily_share = script.competing_app.daily_share
            competing.window_share = script.competing_app.window_share
            competing.pattern = script.competing_app.pattern
            competing.restart(now)

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def active(self) -> list[FaultSpec]:
        """The faults still armed."""
        return list(self._faults)

    def take(self, route: str) -> FaultAction | None:
        """The fault that fires for this request of ``route``, if any (consumes a ``count``)."""
        if not self._faults:
            return None
        for fault in self._faults:
            if not _matches(fault.route, route):
                continue
            if fault.pass_first > 0:
                fault.pass_first -= 1
                return None  # a success in the script: later faults wait their turn
            if fault.error_rate < 1.0 and self._rng.random() >= fault.error_rate:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
            self.fired += 1
            return FaultAction(
                status=fault.status,
                latency_s=fault.latency_ms / 1000.0,
                hang_s=fault.hang_s if fault.hang else None,
                partial_failures=fault.partial_failures,
                retry_after_s=fault.retry_after_s,
                policy_name=fault.policy_name,
            )
        return None


def _matches(pattern: str, route: str) -> bool:
    return pattern in ("*", route) or route.startswith(pattern + ".")
